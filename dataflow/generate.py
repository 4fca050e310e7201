"""Random, valid-by-construction cascades for benchmarks and property tests."""

from __future__ import annotations

import random

from .affine import IndexExpr
from .cascade import Cascade
from .einsum import Einsum, Tensor
from .errors import CascadeError
from .expr import Access, BinOp, Call, Const

__all__ = ["random_cascade"]

#: Upper bound kept on |value| of every generated tensor when inputs lie in [-1, 1], so that
#: evaluating a random cascade never overflows to inf (and so never produces NaN). Einsums
#: whose bound would exceed it are wrapped in ``tanh`` or read fresh inputs instead.
VALUE_BOUND = 1.0e4


class _Builder:
    """State of one random cascade under construction."""

    def __init__(self, rng: random.Random, ranks: dict[str, int], max_tensor_ranks: int):
        self.rng = rng
        self.ranks = ranks
        self.pool = list(ranks)
        self.max_tensor_ranks = max_tensor_ranks
        self.tensors: dict[str, Tensor] = {}
        self.bound: dict[str, float] = {}
        self.produced: list[str] = []
        self.einsums: list[Einsum] = []
        self.n_inputs = 0

    def access(self, name: str) -> Access:
        """Return a plain access of tensor ``name`` in its rank order."""
        return Access(name, tuple(IndexExpr.var(r) for r in self.tensors[name].ranks))

    def fresh(self, ranks: tuple[str, ...]) -> str:
        """Declare a new input tensor with ``ranks``; return its name."""
        name = f"I{self.n_inputs}"
        self.n_inputs += 1
        self.tensors[name] = Tensor(name, tuple(ranks), self.rng.choice((8, 16, 16, 32)))
        self.bound[name] = 1.0
        return name

    def random_ranks(self) -> tuple[str, ...]:
        """Return 1..max_tensor_ranks distinct ranks from the pool."""
        count = self.rng.randint(1, min(self.max_tensor_ranks, len(self.pool)))
        return tuple(self.rng.sample(self.pool, count))

    def operand(self) -> str:
        """A recently produced tensor (usually) or a fresh input."""
        if self.produced and self.rng.random() < 0.8:
            return self.produced[-self.rng.randint(1, min(8, len(self.produced)))]
        return self.fresh(self.random_ranks())

    def find_produced(self, rank_set: set[str]) -> str | None:
        """Return a recently produced tensor with exactly ``rank_set``, or None."""
        for name in reversed(self.produced[-16:]):
            if set(self.tensors[name].ranks) == rank_set:
                return name
        return None

    def emit(self, out_ranks: tuple[str, ...], expr, reduce_op: str, bound: float) -> None:
        """Append an einsum writing a new tensor ``T<i>`` whose |values| are <= bound."""
        name = f"T{len(self.einsums)}"
        self.tensors[name] = Tensor(name, tuple(out_ranks), self.rng.choice((8, 16, 16, 32)))
        self.bound[name] = bound
        out = Access(name, tuple(IndexExpr.var(r) for r in out_ranks))
        self.einsums.append(Einsum(name, out, expr, reduce_op))
        self.produced.append(name)

    # ------------------------------------------------------------------ einsum kinds
    def contraction(self) -> None:
        """Append a GEMM-like product reduced over one shared rank."""
        a = self.operand()
        a_ranks = self.tensors[a].ranks
        k = self.rng.choice(a_ranks)
        others = [r for r in self.pool if r not in a_ranks]
        new = []
        if others and (len(a_ranks) == 1 or self.rng.random() < 0.7):
            new = [self.rng.choice(others)]
        batch = [r for r in a_ranks if r != k and self.rng.random() < 0.2]
        out_ranks = tuple([r for r in a_ranks if r != k] + new)
        if not out_ranks or len(out_ranks) > self.max_tensor_ranks:
            return self.unary()
        b_ranks = batch + [k] + new
        self.rng.shuffle(b_ranks)
        b = self.find_produced(set(b_ranks)) or self.fresh(tuple(b_ranks))
        size_k = self.ranks[k]
        if self.bound[a] * self.bound[b] * size_k > VALUE_BOUND:
            a, b = self.fresh(a_ranks), self.fresh(tuple(b_ranks))
        bound = self.bound[a] * self.bound[b] * size_k
        self.emit(out_ranks, BinOp("*", self.access(a), self.access(b)), "+", bound)

    def binary(self) -> None:
        """Append an element-wise einsum of two operands (the second may broadcast)."""
        x = self.operand()
        x_ranks = self.tensors[x].ranks
        candidates = [t for t in self.produced[-16:]
                      if set(self.tensors[t].ranks) <= set(x_ranks)]
        if candidates and self.rng.random() < 0.7:
            y = self.rng.choice(candidates)
        else:
            y = self.fresh(tuple(self.rng.sample(x_ranks, self.rng.randint(1, len(x_ranks)))))
        bx, by = self.bound[x], self.bound[y]
        ax, ay = self.access(x), self.access(y)
        kind = self.rng.choice(("+", "-", "*", "max", "min", "div"))
        if kind in "+-*":
            expr, bound = BinOp(kind, ax, ay), (bx * by if kind == "*" else bx + by)
        elif kind == "div":
            expr = BinOp("/", ax, BinOp("+", Const(1), BinOp("*", ay, ay)))
            bound = bx
        else:
            expr, bound = Call(kind, (ax, ay)), max(bx, by)
        if bound > VALUE_BOUND:
            expr, bound = Call("tanh", (expr,)), 1.0
        self.emit(x_ranks, expr, "+", bound)

    def unary(self) -> None:
        """Append an element-wise function of one operand (sometimes transposing)."""
        x = self.operand()
        x_ranks = list(self.tensors[x].ranks)
        bx = self.bound[x]
        ax = self.access(x)
        kind = self.rng.choice(("relu", "sigmoid", "tanh", "silu", "gelu", "exp", "rsqrt",
                                "scale"))
        if kind == "exp" and bx > 5:
            kind = "tanh"
        if kind == "rsqrt":
            expr, bound = Call("rsqrt", (BinOp("+", BinOp("*", ax, ax), Const(1)),)), 1.0
        elif kind == "scale":
            expr, bound = BinOp("-", BinOp("*", Const(0.5), ax), Const(1)), 0.5 * bx + 1
        elif kind == "exp":
            expr, bound = Call("exp", (ax,)), 2.7183 ** bx
        else:
            expr = Call(kind, (ax,))
            bound = 1.0 if kind in ("sigmoid", "tanh") else max(bx, 0.3)
        if self.rng.random() < 0.3:
            self.rng.shuffle(x_ranks)       # a transposing element-wise einsum
        self.emit(tuple(x_ranks), expr, "+", bound)

    def reduction(self) -> None:
        """Append a +/max/min reduction over one rank of an operand."""
        x = self.operand()
        x_ranks = self.tensors[x].ranks
        if len(x_ranks) < 2:
            return self.unary()
        rank = self.rng.choice(x_ranks)
        op = self.rng.choice(("+", "max", "min"))
        bound = self.bound[x] * (self.ranks[rank] if op == "+" else 1)
        if bound > VALUE_BOUND:
            op, bound = "max", self.bound[x]
        self.emit(tuple(r for r in x_ranks if r != rank), self.access(x), op, bound)


def random_cascade(n_einsums: int, seed: int, max_rank_size: int = 512, *,
                   n_ranks: int = 6, min_rank_size: int = 1, max_tensor_ranks: int = 3,
                   name: str | None = None) -> Cascade:
    """Return a random valid cascade of ``n_einsums`` einsums, deterministic for ``seed``.

    The program mixes GEMM-like contractions (~35%), element-wise einsums with one or two
    operands (~45%) and reductions with ``+``/``max``/``min`` (~20%) over a pool of ``n_ranks``
    ranks ``r0, r1, ...`` with sizes drawn from ``[min_rank_size, max_rank_size]``. Each einsum
    reads one or two recently produced tensors or fresh inputs (``I0, I1, ...``) and writes a
    new tensor ``T<i>`` of 1..``max_tensor_ranks`` ranks with 8, 16 or 32 bits. Values stay
    below ``VALUE_BOUND`` in magnitude for inputs in [-1, 1], so NumPy evaluation is finite.
    """
    if isinstance(n_einsums, bool) or not isinstance(n_einsums, int) or n_einsums < 1:
        raise CascadeError(f"random_cascade: n_einsums must be a positive integer, found "
                           f"{n_einsums!r}")
    if not 1 <= min_rank_size <= max_rank_size:
        raise CascadeError(f"random_cascade: need 1 <= min_rank_size <= max_rank_size, found "
                           f"{min_rank_size} and {max_rank_size}")
    if n_ranks < 3 or max_tensor_ranks < 1:
        raise CascadeError(f"random_cascade: need n_ranks >= 3 and max_tensor_ranks >= 1, "
                           f"found {n_ranks} and {max_tensor_ranks}")
    rng = random.Random(seed)
    ranks = {f"r{i}": rng.randint(min_rank_size, max_rank_size) for i in range(n_ranks)}
    builder = _Builder(rng, ranks, max_tensor_ranks)
    kinds = (builder.contraction, builder.binary, builder.unary, builder.reduction)
    weights = (0.35, 0.3, 0.15, 0.2)
    while len(builder.einsums) < n_einsums:
        rng.choices(kinds, weights)[0]()
    return Cascade(name or f"random-{n_einsums}-{seed}", ranks, builder.tensors,
                   builder.einsums)
