"""Operation, byte and GEMM-shape analyses of the einsums of a cascade.

Operation counting rules (per einsum, ``Cascade.ops``):

* every operator of the right-hand side is counted once per point of the iteration space (the
  product of the sizes of all rank variables of the einsum), by kind: ``+``/``-`` -> ``add``,
  ``*`` -> ``mul``, ``/`` -> ``div``, ``max``/``min``/``relu`` -> ``max``, ``exp``, ``sqrt``;
* composite functions expand as stated in :data:`dataflow.expr.FUNCTION_COSTS`
  (``rsqrt`` = sqrt + div; ``sigmoid`` = exp + add + div; ``silu`` = sigmoid + mul; ``tanh`` =
  mul + exp + 2 add + div; ``gelu`` = 7 mul + 4 add + exp + div);
* if the einsum reduces any rank, the reduce operator costs one more op per point (``add`` for
  ``+``, ``max`` for ``max``/``min``), except that a right-hand side whose top operator is
  ``*`` reduced by ``+`` fuses into one ``mac`` per point (``Z[m,n] = A[m,k]*B[k,n]`` is
  M*N*K macs);
* constants, copies and unary minus cost nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .expr import OP_KINDS, Access, BinOp, node_cost
from .indexing import access_index_arrays

__all__ = ["Contraction", "einsum_ops", "einsum_bytes", "einsum_contraction",
           "summary_table", "touched_elements"]

#: Largest tensor (elements) for which touched elements of affine accesses are counted exactly
#: with a boolean mask; above it the count is an upper bound.
EXACT_COUNT_LIMIT_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Contraction:
    """A plain (batched) GEMM ``Z[batch, m, n] = sum_k A[batch, m, k] * B[batch, k, n]``.

    ``a``/``b`` are input tensor names (``a`` holds the ``m`` ranks: the first non-batch output
    rank is an ``m`` rank), ``out`` the output tensor; ``batch``, ``m``, ``n`` and ``k`` map
    rank variables to sizes (element counts).
    """

    a: str
    b: str
    batch: dict
    m: dict
    n: dict
    k: dict
    out: str = ""

    @property
    def B(self) -> int:
        """Batch count (product of batch rank sizes; 1 when there are none)."""
        return math.prod(self.batch.values())

    @property
    def M(self) -> int:
        """Rows of the output (product of m rank sizes; 1 when there are none)."""
        return math.prod(self.m.values())

    @property
    def N(self) -> int:
        """Columns of the output (product of n rank sizes; 1 when there are none)."""
        return math.prod(self.n.values())

    @property
    def K(self) -> int:
        """Reduction length (product of k rank sizes)."""
        return math.prod(self.k.values())


def einsum_ops(cascade, name: str) -> dict[str, int]:
    """Return the operations of einsum ``name`` by kind (zero counts omitted)."""
    einsum = cascade.einsum(name)
    per_point: Counter = Counter()
    for node in einsum.nodes():
        per_point.update(node_cost(node))
    if einsum.reduced_ranks():
        if einsum.is_mac():
            per_point["mul"] -= 1
            per_point["mac"] += 1
        else:
            per_point["add" if einsum.reduce_op == "+" else "max"] += 1
    points = cascade.points(name)
    return {kind: per_point[kind] * points for kind in OP_KINDS if per_point[kind]}


def _box_access(access: Access) -> bool:
    """True if the elements an access touches form a box (each index is a constant or one
    variable with coefficient +-1, no variable in two dimensions)."""
    used: set[str] = set()
    for index in access.indices:
        if len(index.terms) > 1:
            return False
        for var, coef in index.terms:
            if var in used or len(coef) != 1 or coef[0][0] != () or abs(coef[0][1]) != 1:
                return False
            used.add(var)
    return True


def _dense_access(access: Access, sizes: dict[str, int], space: dict[str, int]) -> bool:
    """True if every index of the access is a dense mixed-radix combination of its own
    variables (``m``, ``1-c``, ``m1*M0+m0``, ``RD-h*RD+d``): sorted by |coefficient|, each
    coefficient equals the product of the extents of the variables before it. Such an index
    visits a contiguous range once per point, so the access touches a box."""
    used: set[str] = set()
    for index in access.indices:
        coefs, _ = index.resolve(sizes)
        stride = 1
        for var, coef in sorted(coefs.items(), key=lambda vc: abs(vc[1])):
            if var in used or abs(coef) != stride:
                return False
            used.add(var)
            stride *= space[var]
    return True


def touched_elements(cascade, name: str, accesses, tensor: str) -> int:
    """Return the number of distinct elements of ``tensor`` that ``accesses`` (of einsum
    ``name``) touch over the iteration space. Exact for box-shaped accesses and, up to
    ``EXACT_COUNT_LIMIT_ELEMENTS`` elements, for any affine access; an upper bound above."""
    index = cascade._index[name]
    boxes = [cascade._boxes[index][a] for a in accesses]
    shape = cascade.shape(tensor)
    total = math.prod(shape)
    volumes = [math.prod(hi - lo + 1 for lo, hi in box) for box in boxes]
    space = cascade.iteration_space(name)
    all_boxes = all(_box_access(a) or _dense_access(a, cascade._sizes, space)
                    for a in accesses)
    if all_boxes and len(set(boxes)) == 1:
        return volumes[0]
    if total <= EXACT_COUNT_LIMIT_ELEMENTS:
        mask = np.zeros(shape, dtype=bool)
        for access, box in zip(accesses, boxes):
            if _box_access(access):
                mask[tuple(slice(lo, hi + 1) for lo, hi in box)] = True
            else:
                axes = access.variables()
                values = {v: np.arange(space[v]) for v in axes}
                mask[access_index_arrays(access, cascade._sizes, values, axes)] = True
        return int(mask.sum())
    estimate = 0
    for access, volume in zip(accesses, volumes):
        points = math.prod(space[v] for v in access.variables())
        estimate += min(points, volume)
    return min(estimate, total)


def einsum_tensor_bytes(cascade, name: str) -> dict[str, tuple[int, int]]:
    """Return tensor -> ``(read_bytes, write_bytes)`` of einsum ``name``: the bytes of the
    distinct elements of each tensor it reads and of the output elements it writes (a tensor
    both read and written by a recurrence has both)."""
    einsum = cascade.einsum(name)
    out: dict[str, tuple[int, int]] = {}
    for tensor in einsum.input_tensors:
        accesses = [a for a in einsum.inputs if a.tensor == tensor]
        elements = touched_elements(cascade, name, accesses, tensor)
        out[tensor] = (-(-elements * cascade.tensors[tensor].bits // 8), 0)
    o = einsum.output
    elements = touched_elements(cascade, name, [o], o.tensor)
    written = -(-elements * cascade.tensors[o.tensor].bits // 8)
    out[o.tensor] = (out.get(o.tensor, (0, 0))[0], written)
    return out


def einsum_bytes(cascade, name: str) -> tuple[int, int]:
    """Return ``(read_bytes, write_bytes)`` of einsum ``name``: per input tensor the bytes of
    the distinct elements read (ceil(elements * bits / 8)), summed; and the same for the
    elements of the output written."""
    per_tensor = einsum_tensor_bytes(cascade, name)
    return (sum(r for r, _ in per_tensor.values()), sum(w for _, w in per_tensor.values()))


def _view_variables(access: Access, sizes: dict[str, int]) -> list[str] | None:
    """The rank variables of an access that reads a *view* of its tensor, in order, or None.

    A view index is a sum of distinct rank variables with positive coefficients plus a
    constant: a plain rank ``m``, a slice ``t+64``, a split rank ``m1*M0+m0`` or a sliding
    window ``y*2+ky``. Each variable may appear once in the whole access. Such an access reads
    a regular sub-array (or an im2col-style expansion) of the tensor, which a GEMM engine
    streams like a plain operand.
    """
    seen: list[str] = []
    for index in access.indices:
        coefs, _ = index.resolve(sizes)
        for var, coef in coefs.items():
            if coef <= 0 or var in seen:
                return None
            seen.append(var)
    return seen


def einsum_contraction(cascade, name: str):
    """Return the :class:`~dataflow.cascade.Contraction` of einsum ``name`` or None (see
    ``Cascade.contraction``)."""
    einsum = cascade.einsum(name)
    expr = einsum.expr
    if einsum.reduce_op != "+" or not einsum.reduced_ranks():
        return None
    if not (isinstance(expr, BinOp) and expr.op == "*" and isinstance(expr.left, Access)
            and isinstance(expr.right, Access)):
        return None
    plain = []
    for access in (einsum.output, expr.left, expr.right):
        variables = _view_variables(access, cascade._sizes)
        if variables is None:
            return None
        plain.append(variables)
    out, a_vars, b_vars = plain
    a, b = expr.left.tensor, expr.right.tensor
    if any(v not in a_vars and v not in b_vars for v in out):
        return None          # an output rank that no operand has: a broadcast, not a GEMM
    if any(v not in out and not (v in a_vars and v in b_vars) for v in a_vars + b_vars):
        return None          # reduced in one operand only
    batch = [v for v in out if v in a_vars and v in b_vars]
    first = next((v for v in out if v not in batch), None)
    if first is not None and first in b_vars:
        a, b, a_vars, b_vars = b, a, b_vars, a_vars
    sizes = cascade.ranks
    return Contraction(
        a=a, b=b,
        batch={v: sizes[v] for v in batch},
        m={v: sizes[v] for v in out if v in a_vars and v not in b_vars},
        n={v: sizes[v] for v in out if v in b_vars and v not in a_vars},
        k={v: sizes[v] for v in a_vars if v in b_vars and v not in out},
        out=einsum.output_tensor)


def summary_table(cascade) -> str:
    """Return a fixed-width table of the cascade's einsums (points, ops by kind, total ops,
    read/write bytes, op/B, text) with a total row."""
    header = ["einsum", "points"] + list(OP_KINDS) + ["ops", "read_B", "write_B", "op/B",
                                                      "text"]
    rows = []
    totals: Counter = Counter()
    for einsum in cascade.einsums:
        ops = cascade.ops(einsum.name)
        read_bytes, write_bytes = cascade.einsum_bytes(einsum.name)
        total = sum(ops.values())
        totals.update(ops)
        totals.update({"points": cascade.points(einsum.name), "ops": total,
                       "read_B": read_bytes, "write_B": write_bytes})
        rows.append([einsum.name, str(cascade.points(einsum.name))]
                    + [str(ops.get(k, "")) for k in OP_KINDS]
                    + [str(total), str(read_bytes), str(write_bytes),
                       f"{total / (read_bytes + write_bytes):.3g}", einsum.text])
    moved = totals["read_B"] + totals["write_B"]
    rows.append(["total", str(totals["points"])] + [str(totals[k] or "") for k in OP_KINDS]
                + [str(totals["ops"]), str(totals["read_B"]), str(totals["write_B"]),
                   f"{totals['ops'] / moved:.3g}" if moved else "", ""])
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    lines = [f"cascade {cascade.name}: ranks "
             + ", ".join(f"{r}={s}" for r, s in cascade.ranks.items())]
    for row in [header] + rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in
                                             zip(row[1:-1], widths[1:-1])] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
