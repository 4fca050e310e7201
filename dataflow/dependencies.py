"""Dependency analysis of a cascade: who writes and reads what, forward (program-order)
dependencies, loop-carried dependencies and recurrence groups, and the execution schedule.

A read of tensor T by einsum v depends on every writer u of T whose written elements overlap
the elements v reads (per-dimension index ranges). With u before v it is a *forward*
dependency (an edge of ``Cascade.dag``); with u at or after v it is *loop-carried*, allowed only
inside a recurrence: a strongly connected group of einsums in which every dependency advances
along one rank r (the writer writes ``T[r+c]`` and the reader reads ``T[r+c']`` with c > c'
for carried reads, c >= c' for forward ones). Such a group runs as a loop over r.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from .errors import CascadeError

__all__ = ["Recurrence", "DependencyAnalysis", "analyze_dependencies"]


@dataclass(frozen=True)
class Recurrence:
    """A group of einsums that runs as a loop over ``rank`` (increasing), each iteration
    running the einsums in program order restricted to one value of the rank. ``tensors`` are
    the tensors carried from one iteration to the next."""

    einsums: tuple[str, ...]
    rank: str
    tensors: tuple[str, ...]


class DependencyAnalysis:
    """The dependencies of einsums (a sequence) given the inclusive per-dimension index
    ranges of each access (``boxes[i][access]``) and the size values (``sizes``: size name ->
    int). Attributes: ``writers``/``readers`` (tensor -> einsum positions), ``forward`` and
    ``carried`` ((writer, reader) -> tensors), ``schedule`` (list of (positions, loop rank or
    None) in execution order). Raises CascadeError on a read before any write, on a read of
    elements a later einsum writes outside a recurrence, and on a cycle that does not
    advance along a rank."""

    def __init__(self, einsums, boxes, sizes: dict[str, int]) -> None:
        self.einsums = einsums
        self._boxes = boxes
        self._sizes = sizes
        writers: dict[str, list[int]] = {}
        readers: dict[str, list[int]] = {}
        for i, einsum in enumerate(self.einsums):
            writers.setdefault(einsum.output_tensor, []).append(i)
            for tensor in einsum.input_tensors:
                readers.setdefault(tensor, []).append(i)
        self.writers, self.readers = writers, readers

        forward: dict[tuple[int, int], list[str]] = {}
        carried: dict[tuple[int, int], list[str]] = {}   # (writer, reader) with writer >= reader
        for tensor, reader_ids in readers.items():
            for v in reader_ids:
                einsum = self.einsums[v]
                reads = [a for a in einsum.inputs if a.tensor == tensor]
                has_earlier = False
                for u in writers.get(tensor, ()):
                    out_box = self._boxes[u][self.einsums[u].output]
                    if not any(overlap(out_box, self._boxes[v][a]) for a in reads):
                        continue
                    if u < v:
                        has_earlier = True
                        forward.setdefault((u, v), []).append(tensor)
                    else:
                        carried.setdefault((u, v), []).append(tensor)
                if tensor in writers and not has_earlier:
                    written_by = ", ".join(f"einsums[{u}]" for u in writers[tensor])
                    raise CascadeError(
                        f"einsums[{v}] '{einsum.text}': reads {tensor} before any einsum "
                        f"writes the elements it reads (written by {written_by}; an init "
                        f"einsum writing them must come earlier)", einsum_index=v)
        self.forward = forward
        self.carried = carried
        self.schedule = self._find_recurrences()

    def _find_recurrences(self) -> list[tuple[tuple[int, ...], str | None]]:
        """Return the execution schedule: a list of (einsum ids, loop rank or None)."""
        n = len(self.einsums)
        if not self.carried:
            return [((i,), None) for i in range(n)]
        succ: dict[int, set[int]] = {i: set() for i in range(n)}
        for (u, v) in list(self.forward) + list(self.carried):
            if u != v:
                succ[u].add(v)
        components = strongly_connected(n, succ)
        comp_of = {i: c for c, members in enumerate(components) for i in members}
        for (u, v), tensors in self.carried.items():
            if comp_of[u] != comp_of[v]:
                raise CascadeError(
                    f"einsums[{v}] '{self.einsums[v].text}': reads elements of {tensors[0]} "
                    f"that a later einsum writes (einsums[{u}] '{self.einsums[u].text}'); "
                    f"move it after that einsum", einsum_index=v)
        groups = []
        for members in components:
            members = tuple(sorted(members))
            cyclic = len(members) > 1 or (members[0], members[0]) in self.carried
            groups.append((members, self._loop_rank(members) if cyclic else None))
        # Topological order of the condensation, ties broken by program order.
        indeg = {c: 0 for c in range(len(components))}
        csucc: dict[int, set[int]] = {c: set() for c in range(len(components))}
        for u, targets in succ.items():
            for v in targets:
                if comp_of[u] != comp_of[v] and comp_of[v] not in csucc[comp_of[u]]:
                    csucc[comp_of[u]].add(comp_of[v])
                    indeg[comp_of[v]] += 1
        heap = [(groups[c][0][0], c) for c in indeg if indeg[c] == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            _, c = heapq.heappop(heap)
            order.append(groups[c])
            for d in csucc[c]:
                indeg[d] -= 1
                if indeg[d] == 0:
                    heapq.heappush(heap, (groups[d][0][0], d))
        return order

    def _loop_rank(self, members: tuple[int, ...]) -> str:
        """Return the rank a recurrence group advances along, or raise CascadeError."""
        # The loop rank must index every member and be reduced by none (a member reducing it
        # would see only one value of it per iteration).
        common = [v for v in self.einsums[members[0]].rank_vars()
                  if all(v in self.einsums[i].rank_vars()
                         and v not in self.einsums[i].reduced_ranks() for i in members)]
        member_set = set(members)
        deps = [(u, v, t, True) for (u, v), ts in self.carried.items()
                if u in member_set and v in member_set for t in ts]
        deps += [(u, v, t, False) for (u, v), ts in self.forward.items()
                 if u in member_set and v in member_set for t in ts]
        for rank in common:
            if all(self._advances(u, v, tensor, rank, strict) for u, v, tensor, strict in deps):
                return rank
        names = " -> ".join(repr(self.einsums[i].text) for i in members + members[:1])
        first = members[0]
        raise CascadeError(
            f"einsums[{first}] '{self.einsums[first].text}': dependency cycle {names} does not "
            f"advance along any rank (a recurrence must write e.g. T[r+1] and read T[r])",
            einsum_index=first)

    def _advances(self, u: int, v: int, tensor: str, rank: str, strict: bool) -> bool:
        """True if every read of ``tensor`` by einsum ``v`` at iteration r of ``rank`` only
        needs elements einsum ``u`` wrote at iterations < r (``strict``) or <= r."""
        out = self.einsums[u].output
        out_forms = [i.resolve(self._sizes) for i in out.indices]
        for access in self.einsums[v].inputs:
            if access.tensor != tensor:
                continue
            if not overlap(self._boxes[u][out], self._boxes[v][access]):
                continue
            ok = False
            for (wc, wk), (rc, rk) in zip(out_forms, (i.resolve(self._sizes)
                                                        for i in access.indices)):
                if wc.get(rank) == 1 and rc.get(rank) == 1 and \
                        {k: c for k, c in wc.items() if k != rank} == \
                        {k: c for k, c in rc.items() if k != rank}:
                    shift = wk - rk
                    if shift > 0 or (shift == 0 and not strict):
                        ok = True
                        break
            if not ok:
                return False
        return True


def analyze_dependencies(einsums, boxes, sizes: dict[str, int]) -> DependencyAnalysis:
    """Return the :class:`DependencyAnalysis` of ``einsums`` (see there)."""
    return DependencyAnalysis(einsums, boxes, sizes)


def overlap(box_a, box_b) -> bool:
    """True if two per-dimension inclusive ranges intersect in every dimension."""
    return all(a_lo <= b_hi and b_lo <= a_hi for (a_lo, a_hi), (b_lo, b_hi) in zip(box_a, box_b))


def strongly_connected(n: int, succ: dict[int, set[int]]) -> list[list[int]]:
    """Return the strongly connected components of a graph over 0..n-1 (iterative Tarjan)."""
    index_of: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for root in range(n):
        if root in index_of:
            continue
        work = [(root, iter(sorted(succ[root])))]
        index_of[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index_of:
                    index_of[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(succ[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index_of[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index_of[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components
