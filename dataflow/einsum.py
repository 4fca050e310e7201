"""Tensors and einsums: the building blocks of a cascade."""

from __future__ import annotations

from dataclasses import dataclass, field

from .affine import is_rank_name
from .errors import CascadeError
from .expr import Access, BinOp, Expr, expr_accesses, iter_nodes

__all__ = ["Tensor", "Einsum", "Repeat", "REDUCE_OPS"]

#: Reduction operators: ranks on the right-hand side but not in the output are reduced with one.
REDUCE_OPS = ("+", "max", "min")


@dataclass(frozen=True)
class Tensor:
    """A tensor declaration.

    ``ranks`` names the rank of each dimension (lowercase). ``bits`` is the element width in
    bits. ``extents`` optionally overrides the extent of a rank *for this tensor* with an
    integer or an expression over rank sizes, e.g. ``{"m1": "M1+1"}`` for running state that
    is indexed ``m1`` and ``m1+1``; without an override a dimension's extent is its rank's size.
    """

    name: str
    ranks: tuple = ()
    bits: int = 16
    extents: dict | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        where = f"tensors.{self.name}"
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise CascadeError(f"tensor name must be an identifier, found {self.name!r}",
                               key_path=("tensors",))
        ranks = tuple(self.ranks) if isinstance(self.ranks, (list, tuple)) else None
        if ranks is None:
            raise CascadeError(f"{where}.ranks: expected a list of rank names, "
                               f"found {self.ranks!r}", key_path=("tensors", self.name, "ranks"))
        for rank in ranks:
            if not is_rank_name(rank):
                raise CascadeError(f"{where}.ranks: expected lowercase rank names, found "
                                   f"{rank!r}", key_path=("tensors", self.name, "ranks"))
        if len(set(ranks)) != len(ranks):
            raise CascadeError(f"{where}.ranks: each rank may appear once, found "
                               f"{list(ranks)}", key_path=("tensors", self.name, "ranks"))
        object.__setattr__(self, "ranks", ranks)
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or self.bits <= 0:
            raise CascadeError(f"{where}.bits: expected a positive integer, found "
                               f"{self.bits!r}", key_path=("tensors", self.name, "bits"))
        if self.extents is not None:
            if not isinstance(self.extents, dict):
                raise CascadeError(f"{where}.extents: expected a mapping rank -> extent, "
                                   f"found {self.extents!r}",
                                   key_path=("tensors", self.name, "extents"))
            for rank, extent in self.extents.items():
                if rank not in ranks:
                    raise CascadeError(
                        f"{where}.extents.{rank}: {rank!r} is not a rank of {self.name} "
                        f"(ranks: {', '.join(ranks)})",
                        key_path=("tensors", self.name, "extents", rank))
                ok_int = isinstance(extent, int) and not isinstance(extent, bool) and extent > 0
                if not ok_int and not isinstance(extent, str):
                    raise CascadeError(
                        f"{where}.extents.{rank}: expected a positive integer or a size "
                        f"expression such as 'M1+1', found {extent!r}",
                        key_path=("tensors", self.name, "extents", rank))
            object.__setattr__(self, "extents", dict(self.extents) or None)

    def __hash__(self) -> int:
        return hash((self.name, self.ranks, self.bits,
                     tuple(sorted((self.extents or {}).items(), key=str))))


@dataclass(frozen=True)
class Einsum:
    """One einsum: ``output = reduce_op over absent ranks of expr``.

    ``name`` is unique within a cascade (by default the output tensor's name; later writers of
    the same tensor are ``RM#2``, ``RM#3``, ...). ``reduce_op`` (``+``, ``max`` or ``min``)
    reduces the rank variables that appear on the right-hand side but not in the output.
    ``text`` is the canonical text, computed on construction; ``parse_einsum(e.text,
    name=e.name) == e``.
    """

    name: str
    output: Access
    expr: Expr
    reduce_op: str = "+"
    text: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.output, Access):
            raise CascadeError(f"einsum output must be an Access, found {self.output!r}")
        if self.reduce_op not in REDUCE_OPS:
            raise CascadeError(f"reduce_op must be one of {', '.join(REDUCE_OPS)}, found "
                               f"{self.reduce_op!r}")
        if not self.name:
            object.__setattr__(self, "name", self.output.tensor)
        if not isinstance(self.name, str):
            raise CascadeError(f"einsum name must be a string, found {self.name!r}")
        inputs = expr_accesses(self.expr)
        seen: dict[str, None] = {}
        for var in self.output.variables():
            seen.setdefault(var, None)
        out_vars = tuple(seen)
        for access in inputs:
            for var in access.variables():
                seen.setdefault(var, None)
        object.__setattr__(self, "_inputs", inputs)
        object.__setattr__(self, "_vars", tuple(seen))
        object.__setattr__(self, "_reduced", tuple(v for v in seen if v not in out_vars))
        rhs = str(self.expr)
        if self.reduce_op != "+":
            rhs = f"{self.reduce_op}({rhs})"
        object.__setattr__(self, "text", f"{self.output} = {rhs}")

    @property
    def inputs(self) -> tuple[Access, ...]:
        """The distinct tensor accesses of the right-hand side, in order of appearance."""
        return self._inputs

    @property
    def input_tensors(self) -> tuple[str, ...]:
        """The names of the tensors read, unique, in order of appearance."""
        return tuple(dict.fromkeys(a.tensor for a in self._inputs))

    @property
    def output_tensor(self) -> str:
        """The name of the tensor written."""
        return self.output.tensor

    def rank_vars(self) -> tuple[str, ...]:
        """Return every rank variable of the einsum (its iteration space): output variables
        first, then right-hand-side variables, in order of appearance."""
        return self._vars

    def reduced_ranks(self) -> tuple[str, ...]:
        """Return the rank variables reduced by ``reduce_op`` (on the right, not the left)."""
        return self._reduced

    def is_recurrence(self) -> bool:
        """True if the einsum reads the tensor it writes (e.g. ``RM[m1+1,p] = max(RM[m1,p],
        LM[m1,p])``)."""
        return self.output.tensor in self.input_tensors

    def is_mac(self) -> bool:
        """True if the right-hand side is a product that is reduced with ``+`` over at least
        one rank (each point then costs one multiply-accumulate)."""
        return (self.reduce_op == "+" and bool(self._reduced)
                and isinstance(self.expr, BinOp) and self.expr.op == "*")

    def nodes(self):
        """Yield the right-hand side's expression nodes in pre-order."""
        return iter_nodes(self.expr)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Repeat:
    """A run of einsums that stands for ``count`` identical instances executed one after
    another (e.g. the layers of a transformer).

    The body is the einsums from ``first`` to ``last`` in program order. Every instance has the
    shapes and the operations of the body but its own weights (the body's input tensors); the
    cascade holds one instance, and analyses and the evaluator multiply the body by ``count``
    (:meth:`Cascade.multiplicity`). The einsums after the body read the last instance's output.
    ``carry`` lists ``(output, input)`` tensor pairs: instance i+1 reads, where the body reads
    ``input``, what instance i wrote to ``output`` (a layer's residual stream). A mapping must
    keep both in one memory level so that every instance costs the same.
    """

    name: str
    first: str
    last: str
    count: int
    carry: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "carry", tuple(tuple(pair) for pair in self.carry))
