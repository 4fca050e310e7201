"""Right-hand-side expression trees of einsums and the per-operator cost table.

Nodes are frozen dataclasses: :class:`Access` (a tensor read such as ``QK[m,p]``),
:class:`Const` (a number, ``inf`` or ``-inf``), :class:`Neg` (unary minus), :class:`BinOp`
(``+ - * /``) and :class:`Call` (a function: ``exp``, ``sqrt``, ``rsqrt``, ``relu``,
``sigmoid``, ``silu``, ``gelu``, ``tanh``, and element-wise two-argument ``max``/``min``).
``str(node)`` is the canonical text form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Union

from .affine import IndexExpr
from .errors import CascadeError
from .index_text import parse_index

__all__ = ["Access", "Const", "Neg", "BinOp", "Call", "Expr", "FUNCTIONS", "OP_KINDS",
           "FUNCTION_COSTS", "iter_nodes", "expr_accesses"]

#: Operation kinds counted by ``Cascade.ops`` (``add`` includes subtraction, ``max`` includes
#: ``min`` and ``relu``).
OP_KINDS = ("mac", "add", "mul", "max", "exp", "div", "sqrt")

#: Cost of one function application, by operation kind. Composite functions are expanded:
#: ``rsqrt(x) = 1/sqrt(x)``; ``sigmoid(x) = 1/(1+exp(-x))`` (the sign flip is free);
#: ``silu(x) = x*sigmoid(x)``; ``tanh(x) = (exp(2x)-1)/(exp(2x)+1)`` (one mul for 2x, one exp
#: shared by both halves, two adds, one div); ``gelu`` is the tanh approximation
#: ``0.5*x*(1+tanh(c*(x+0.044715*x^3)))``: x^3 (2 mul), *0.044715 (1 mul), +x (1 add), *c (1
#: mul), tanh (1 mul, 1 exp, 2 add, 1 div), 1+ (1 add), *0.5 and *x (2 mul) = 7 mul, 4 add,
#: 1 exp, 1 div.
FUNCTION_COSTS: dict[str, dict[str, int]] = {
    "exp": {"exp": 1},
    "sqrt": {"sqrt": 1},
    "rsqrt": {"sqrt": 1, "div": 1},
    "relu": {"max": 1},
    "sigmoid": {"exp": 1, "add": 1, "div": 1},
    "silu": {"exp": 1, "add": 1, "div": 1, "mul": 1},
    "tanh": {"mul": 1, "exp": 1, "add": 2, "div": 1},
    "gelu": {"mul": 7, "add": 4, "exp": 1, "div": 1},
    "max": {"max": 1},
    "min": {"max": 1},
}

#: Number of arguments of each element-wise function. (One-argument ``max``/``min``/``sum``
#: wrapping a whole right-hand side is a reduction, not a function call.)
FUNCTIONS: dict[str, int] = {"exp": 1, "sqrt": 1, "rsqrt": 1, "relu": 1, "sigmoid": 1,
                             "silu": 1, "gelu": 1, "tanh": 1, "max": 2, "min": 2}

#: Cost of a binary operator, by kind.
BINOP_KINDS = {"+": "add", "-": "add", "*": "mul", "/": "div"}

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass(frozen=True)
class Access:
    """A tensor access ``tensor[i0, i1, ...]``; indices are :class:`IndexExpr` (strings are
    parsed for convenience, so ``Access("A", ("m", "k"))`` works)."""

    tensor: str
    indices: tuple = ()

    def __post_init__(self) -> None:
        if not isinstance(self.tensor, str) or not self.tensor.isidentifier():
            raise CascadeError(f"tensor name must be an identifier, found {self.tensor!r}")
        if any(not isinstance(i, IndexExpr) for i in self.indices) or \
                not isinstance(self.indices, tuple):
            fixed = tuple(i if isinstance(i, IndexExpr) else parse_index(str(i))
                          for i in self.indices)
            object.__setattr__(self, "indices", fixed)

    @property
    def plain(self) -> bool:
        """True when every index is a single rank variable (``A[m,k]``)."""
        return all(i.plain is not None for i in self.indices)

    def variables(self) -> tuple[str, ...]:
        """Return the rank variables used by the indices, unique, in order of appearance."""
        seen: dict[str, None] = {}
        for index in self.indices:
            for var in index.variables():
                seen.setdefault(var, None)
        return tuple(seen)

    def __str__(self) -> str:
        text = self.__dict__.get("_text")
        if text is None:
            text = f"{self.tensor}[{','.join(str(i) for i in self.indices)}]"
            object.__setattr__(self, "_text", text)
        return text


@dataclass(frozen=True)
class Const:
    """A numeric constant (float; ``inf`` and ``-inf`` allowed, NaN not)."""

    value: float

    def __post_init__(self) -> None:
        value = float(self.value)
        if math.isnan(value):
            raise CascadeError("a constant cannot be NaN")
        object.__setattr__(self, "value", value)

    def __str__(self) -> str:
        value = self.value
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return repr(value)


@dataclass(frozen=True)
class Neg:
    """Unary minus of ``arg`` (costs nothing: a sign flip)."""

    arg: "Expr"

    def __str__(self) -> str:
        inner = str(self.arg)
        if isinstance(self.arg, BinOp) or (isinstance(self.arg, Const) and self.arg.value < 0):
            inner = f"({inner})"
        return "-" + inner


@dataclass(frozen=True)
class BinOp:
    """A binary operator ``left op right`` with ``op`` in ``+ - * /``."""

    op: str
    left: "Expr"
    right: "Expr"

    def __post_init__(self) -> None:
        if self.op not in _PRECEDENCE:
            raise CascadeError(f"unknown operator {self.op!r} (operators: + - * /)")

    def __str__(self) -> str:
        prec = _PRECEDENCE[self.op]
        left, right = str(self.left), str(self.right)
        if isinstance(self.left, BinOp) and _PRECEDENCE[self.left.op] < prec:
            left = f"({left})"
        if isinstance(self.right, BinOp) and _PRECEDENCE[self.right.op] <= prec:
            right = f"({right})"
        return f"{left} {self.op} {right}"


@dataclass(frozen=True)
class Call:
    """An element-wise function application ``func(args...)``; see ``FUNCTIONS``."""

    func: str
    args: tuple

    def __post_init__(self) -> None:
        if self.func not in FUNCTIONS:
            raise CascadeError(f"unknown function {self.func!r} "
                               f"(functions: {', '.join(FUNCTIONS)})")
        if len(self.args) != FUNCTIONS[self.func]:
            raise CascadeError(f"function {self.func}() takes {FUNCTIONS[self.func]} "
                               f"argument(s), found {len(self.args)}")
        object.__setattr__(self, "args", tuple(self.args))

    def __str__(self) -> str:
        return f"{self.func}({', '.join(str(a) for a in self.args)})"


Expr = Union[Access, Const, Neg, BinOp, Call]


def iter_nodes(expr: Expr) -> Iterator[Expr]:
    """Yield every node of ``expr`` in pre-order (left to right)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Neg):
            stack.append(node.arg)
        elif isinstance(node, BinOp):
            stack.append(node.right)
            stack.append(node.left)
        elif isinstance(node, Call):
            stack.extend(reversed(node.args))


def expr_accesses(expr: Expr) -> tuple[Access, ...]:
    """Return the distinct accesses of ``expr`` in order of first appearance."""
    seen: dict[Access, None] = {}
    for node in iter_nodes(expr):
        if isinstance(node, Access):
            seen.setdefault(node, None)
    return tuple(seen)


def node_cost(node: Expr) -> dict[str, int]:
    """Return the operations one evaluation of ``node`` itself costs (children excluded)."""
    if isinstance(node, BinOp):
        return {BINOP_KINDS[node.op]: 1}
    if isinstance(node, Call):
        return FUNCTION_COSTS[node.func]
    return {}
