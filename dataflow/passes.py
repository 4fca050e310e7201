"""Pass counting: how many times the fibers of a rank of a tensor are traversed.

Definition (shared/reference/fusemax.md, "Pass counting"): a *pass* is one traversal of a
fiber of a rank of a tensor; each dependency that forces a whole fiber to be consumed (reduced
over the full rank) before elements along that rank are traversed again adds a pass. 3-pass
attention makes three passes over each M fiber of QK (max, then exp and sum, then divide and
multiply by V); FuseMax's 1-pass cascade makes one.

:func:`passes` derives the count from the cascade's dependencies alone (no per-cascade cases,
no tensor names):

* **Parts of the rank.** A rank may be traversed through split indices: if some access reads a
  dimension of rank ``m`` at ``m1*M0+m0``, then ``{m1, m0}`` together traverse ``m``. The
  *parts* of the rank are the rank itself and every such group of variables. An einsum
  *iterates* the rank when its iteration space contains any part variable.
* **Data lineage.** Values flow from ``tensor`` to the einsums that read it and on along the
  forward dependencies (edges of ``Cascade.dag``). Loop-carried reads inside a recurrence are
  not followed: a running state carried along ``m1`` is consumed in the same traversal.
* **State of a value.** Each einsum output in the lineage gets ``(pass, reduced)``: the pass
  in which it is produced and the part variables it has been reduced over (transitively,
  within that pass). ``tensor`` itself enters as ``(1, {})``. A reduction over ``m0`` alone
  is a local one; a value is *whole* when ``reduced`` contains the rank itself or every
  variable of one of its split groups (a ``max`` over ``m0`` followed by a ``max`` over
  ``m1`` is whole). Reading the final element of a recurrence's running state (``RNV[f,M1,p]``
  after a loop over ``m1``) counts as a reduction over the loop rank.
* **Rule.** For an einsum that iterates the rank, an input that is whole must be complete
  before the traversal can start, so it is available only in the next pass: ``pass = max
  over inputs of (input pass + 1 if the input is whole else input pass)``. An einsum that does
  not iterate the rank starts no traversal: its pass is the largest input pass and whole
  inputs stay whole. ``reduced`` of the output is the part variables the einsum reduces plus
  those of its inputs from the same pass (values of an earlier pass are already complete).
* The result is the largest pass of any einsum in the lineage, at least 1 (a fiber that is
  only written is traversed once).

Examples: attention 3-pass 3 (QK -> GM whole -> SN, SD whole -> A), with division deferral 2,
2-pass (split M) 2, FuseMax 1-pass 1; a GEMM 1. Within a tile the 1-pass cascade reads the
``m0`` fibers of ``BQK`` twice (local max, then exp), so ``passes(c, "BQK", "m0") == 2``.
"""

from __future__ import annotations

from .affine import size_name
from .errors import CascadeError

__all__ = ["passes", "rank_parts"]


def rank_parts(cascade, rank: str) -> list[frozenset]:
    """Return the variable groups that traverse ``rank``: ``{rank}`` first, then each set of
    variables indexing a dimension of ``rank`` through a split or affine index (``{m1, m0}``
    for ``K[e,m1*M0+m0]``), in order of first appearance."""
    groups = [frozenset([rank])]
    for einsum in cascade.einsums:
        for access in (einsum.output,) + einsum.inputs:
            dims = cascade.tensors[access.tensor].ranks
            for dim_rank, index in zip(dims, access.indices):
                if dim_rank != rank or index.plain == rank:
                    continue
                group = frozenset(index.variables())
                if group and group not in groups:
                    groups.append(group)
    return groups


def _reads_final_state(cascade, writer, reader, tensor: str, loop: str,
                       sizes: dict[str, int]) -> bool:
    """True if ``reader`` reads the element of ``tensor`` that recurrence member ``writer``
    writes last along its loop rank ``loop`` (a constant index equal to the largest one)."""
    extents = {v: cascade.ranks[v] for v in writer.rank_vars()}
    for dim, index in enumerate(writer.output.indices):
        if loop not in index.variables():
            continue
        last = index.value_range(sizes, extents)[1]
        for access in reader.inputs:
            if access.tensor != tensor:
                continue
            read = access.indices[dim]
            if not read.variables() and read.resolve(sizes)[1] == last:
                return True
    return False


def passes(cascade, tensor: str, rank: str) -> int:
    """Return the number of passes over the ``rank`` fibers of ``tensor`` in ``cascade`` (an
    int >= 1), as defined in this module's docstring (fusemax.md, "Pass counting").

    ``rank`` must be a rank of ``tensor`` or a rank that the cascade splits into ranks of
    ``tensor`` (``passes(c, "BQK", "m")`` when BQK has ranks m1, m0 and K is read at
    ``m1*M0+m0``). Raises CascadeError for an unknown tensor or rank, or a rank the tensor
    does not have.
    """
    if tensor not in cascade.tensors:
        raise CascadeError(f"passes: cascade {cascade.name!r} has no tensor {tensor!r} "
                           f"(tensors: {', '.join(cascade.tensors)})")
    if rank not in cascade.ranks:
        raise CascadeError(f"passes: cascade {cascade.name!r} has no rank {rank!r} (ranks: "
                           f"{', '.join(cascade.ranks)})")
    groups = rank_parts(cascade, rank)
    parts = frozenset().union(*groups)
    tensor_ranks = cascade.tensors[tensor].ranks
    if not parts & set(tensor_ranks):
        split = " or its parts " + ", ".join(sorted(parts - {rank})) if len(groups) > 1 else ""
        raise CascadeError(f"passes: tensor {tensor} has no rank {rank!r}{split} (ranks of "
                           f"{tensor}: {', '.join(tensor_ranks) or 'none, a scalar'})")

    def whole(reduced: frozenset) -> bool:
        return any(group <= reduced for group in groups)

    sizes = {size_name(r): s for r, s in cascade.ranks.items()}
    loop_of = {name: rec.rank for rec in cascade.recurrences() for name in rec.einsums}
    graph = cascade.dag()
    state: dict[str, tuple[int, frozenset]] = {}      # einsum -> (pass, reduced parts)
    for einsum in cascade.einsums:                    # program order is topological
        incoming = [(1, frozenset())] if tensor in einsum.input_tensors else []
        for pred in graph.predecessors(einsum.name):
            if pred not in state:
                continue                              # not derived from ``tensor``
            number, reduced = state[pred]
            loop = loop_of.get(pred)
            if loop in parts and any(
                    _reads_final_state(cascade, cascade.einsum(pred), einsum, t, loop, sizes)
                    for t in graph.edges[pred, einsum.name]["tensors"]):
                reduced = reduced | {loop}
            incoming.append((number, reduced))
        if not incoming:
            continue
        if parts & set(einsum.rank_vars()):
            incoming = [(n + 1, frozenset()) if whole(r) else (n, r) for n, r in incoming]
        number = max(n for n, _ in incoming)
        reduced = frozenset(parts & set(einsum.reduced_ranks()))
        reduced = reduced.union(*(r for n, r in incoming if n == number))
        state[einsum.name] = (number, reduced)
    return max([1] + [n for n, _ in state.values()])
