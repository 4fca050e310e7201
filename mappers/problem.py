"""One mapping problem for every mapper: a graph, a design, and what may be decided.

A :class:`MappingProblem` is built from a cascade (or a model graph) and a design
([COSMA] ../shared/reference/mappers.md):

* **operators** -- the einsums, one per step, in a topological order the mapper chooses (within
  ``window`` steps of program order); each has a unit and a compute time in cycles from the
  evaluator's unit model with its operands in the scratchpad;
* **tensors** -- sizes in bytes, producer, consumers; graph inputs start off chip, graph outputs
  must end off chip;
* **memory levels** -- the units' scratchpad (``fast``: a byte budget, at most its capacity) and
  the level behind it (``slow``), with their bandwidths.

An operator runs only with its inputs and output resident in the scratchpad. A
:class:`MemorySchedule` decides the order, the *buffers* (a tensor resident over a run of steps,
at an offset), which buffers start with a load from off chip and which tensors are spilled.
Traffic is counted as in COSMA: **compulsory** bytes are the first load of every graph input and
the store of every graph output; **non-compulsory** bytes are everything else -- reloads of
inputs, the spill (one store) and every reload of an intermediate. :meth:`MappingProblem.evaluate`
checks a schedule and counts its traffic; :meth:`MappingProblem.to_mapping` turns it into an
:class:`archsim.mapping.Mapping` whose ``memory`` plan the one evaluator scores (the loads,
spills and stores become traffic of the tasks).

Budgets ([COSMA]): ``MR`` = the largest operator's inputs + output (the least any schedule can
use), ``MP`` = the least peak over the orders the mappers may choose with no spills (found by the
peak-memory ILP, with offsets), ``MH`` = (MR + MP) / 2.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from archsim.errors import MappingError, UserError
from mappers.offsets import assign_offsets
from mappers.peak import peak_memory_schedule
from mappers.schedule import Buffer, MemorySchedule, OperatorInfo, ScheduleCost, TensorInfo

if TYPE_CHECKING:  # pragma: no cover
    from dataflow import Cascade

    from archsim.mapping import Mapping
    from archsim.spec import Design

BUDGET_NAMES = ("MR", "MH", "MP")
_BUDGET_TEXT = {"MR": "the largest operator's inputs and output",
                "MP": "the least spill-free peak", "MH": "halfway between MR and MP"}


class MappingProblem:
    """See module docstring. ``budget_bytes``: scratchpad bytes the schedule may use (default
    the scratchpad's capacity; ``"MR"``/``"MH"``/``"MP"`` or a byte count); ``window``: how far
    (in steps) an operator may move from program order (default: everywhere for up to 12
    operators, else 2); ``binding``: unit per einsum (default the unit that runs it fastest)."""

    def __init__(self, cascade: "Cascade", design: "Design", *, budget_bytes=None,
                 window: int | None = None, binding: dict[str, str] | None = None):
        self.cascade = cascade
        self.design = design
        names = cascade.topological_order()
        self.index = {n: i for i, n in enumerate(names)}
        self.fast, self.slow = _levels(design)
        self.capacity_bytes = design.memories[self.fast].capacity_bytes
        bw = design.bandwidth_bytes_per_cycle
        self.fast_bytes_per_cycle = bw[self.fast]
        self.slow_bytes_per_cycle = bw[self.slow]
        #: rate of a load or store between the two levels (the slower one bounds it, as in
        #: the engine, where such a phase moves its bytes on both)
        self.load_bytes_per_cycle = min(self.fast_bytes_per_cycle, self.slow_bytes_per_cycle)
        inputs, outputs = set(cascade.inputs()), set(cascade.outputs())
        for rep in cascade.repeats:          # a repeat's carried tensors cross instances
            for out, inp in rep.carry:
                outputs.add(out)
                inputs.add(inp)
        ops = []
        for e in cascade.einsums:
            ins = tuple(dict.fromkeys(t for t in e.input_tensors if t != e.output_tensor))
            ops.append((e.name, ins, e.output_tensor))
        self.binding = dict(binding or {})
        self.ops: list[OperatorInfo] = []
        for name, ins, out in ops:
            unit, cyc = self._unit_cost(name, self.binding.get(name))
            self.ops.append(OperatorInfo(name, ins, out, unit, cyc))
        self.binding = {o.name: o.unit for o in self.ops}
        producer: dict[str, int] = {}
        consumers: dict[str, list[int]] = {}
        later_writer: dict[int, int] = {}      # a tensor written by several einsums (slices)
        for i, o in enumerate(self.ops):
            if o.output in producer:
                consumers.setdefault(o.output, []).append(i)
                later_writer[i] = max([producer[o.output]] + [
                    j for j in consumers[o.output] if j < i and self.ops[j].output == o.output])
            producer.setdefault(o.output, i)
            for t in o.inputs:
                consumers.setdefault(t, []).append(i)
        self.tensors: dict[str, TensorInfo] = {}
        for t in cascade.tensors:
            if t not in producer and t not in consumers:
                continue
            self.tensors[t] = TensorInfo(
                t, int(cascade.tensor_bytes(t)), producer.get(t), tuple(consumers.get(t, ())),
                t not in producer or t in inputs and t not in producer,
                t in outputs or not consumers.get(t))
        n = len(self.ops)
        self.window = window if window is not None else (n if n <= 12 else 2)
        self._peak_schedule: MemorySchedule | None = None
        self.preds: list[set[int]] = [set() for _ in range(n)]
        writers: dict[str, list[int]] = {}
        for i, o in enumerate(self.ops):
            writers.setdefault(o.output, []).append(i)
        for i, o in enumerate(self.ops):
            for t in o.inputs:
                for w in writers.get(t, ()):         # every slice written before it is read
                    if w < i:
                        self.preds[i].add(w)
            if i in later_writer:                    # slices of one tensor in program order
                self.preds[i].add(later_writer[i])
        self._ancestors = _closure(self.preds)
        succs: list[set[int]] = [set() for _ in range(n)]
        for i, ps in enumerate(self.preds):
            for p in ps:
                succs[p].add(i)
        self._descendants = _closure(succs)
        self.budget_name = None
        self.budget_bytes = self.capacity_bytes
        if budget_bytes is not None:
            self.set_budget(budget_bytes)

    # ------------------------------------------------------------------ construction helpers
    def _unit_cost(self, einsum: str, unit: str | None) -> tuple[str, float]:
        from archsim.families.graph import plan_einsum

        design = self.design
        placement = {t: self.fast for t in self.cascade.tensors}
        bw = design.bandwidth_bytes_per_cycle
        cands = [unit] if unit else list(design.unit_models)
        best, reasons = None, []
        for u in cands:
            if u not in design.unit_models:
                raise MappingError(f"binding of {einsum!r}: unknown unit {u!r}")
            model = design.unit_models[u]
            why = model.unsupported_reason(self.cascade, einsum)
            if why:
                reasons.append(f"{u}: {why}")
                continue
            try:
                plan = plan_einsum(design, self.cascade, einsum, u, placement,
                                   self.capacity_bytes)
            except MappingError as exc:
                reasons.append(f"{u}: {exc}")
                continue
            t = plan.alone_cycles(bw)
            if best is None or t < best[1]:
                best = (u, t)
        if best is None:
            raise MappingError(f"no unit of {design.name} can run einsum {einsum!r}: "
                               + "; ".join(reasons))
        return best

    # ------------------------------------------------------------------ sizes and budgets
    @property
    def n(self) -> int:
        """Number of operators (= steps)."""
        return len(self.ops)

    def working_set_bytes(self, i: int) -> int:
        """Bytes operator ``i`` needs resident: its inputs and output."""
        return sum(self.tensors[t].size for t in self.ops[i].uses)

    def min_budget_bytes(self) -> int:
        """M_R: the largest operator's working set."""
        return max((self.working_set_bytes(i) for i in range(self.n)), default=0)

    def set_budget(self, budget) -> None:
        """Set the scratchpad budget: ``MR``, ``MH``, ``MP`` or bytes (int or digits)."""
        name = None
        if isinstance(budget, str) and budget.upper() in BUDGET_NAMES:
            name = budget.upper()
            value = self.named_budget(name)
        else:
            try:
                value = int(budget)
            except (TypeError, ValueError):
                raise UserError(f"--budget {budget!r}: expected MR, MH, MP or a number of "
                                f"bytes") from None
        if value <= 0:
            raise UserError(f"--budget must be positive, found {value}")
        if value > self.capacity_bytes:
            what = f" ({name}: {_BUDGET_TEXT[name]})" if name else ""
            raise MappingError(f"budget {value} bytes{what} exceeds the capacity of "
                               f"{self.fast!r} ({self.capacity_bytes} bytes)")
        self.budget_name, self.budget_bytes = name, value
        self.check_budget()

    def check_budget(self) -> None:
        """Raise MappingError when the budget cannot hold the largest operator (M_R)."""
        mr = self.min_budget_bytes()
        if self.budget_bytes < mr:
            big = max(range(self.n), key=self.working_set_bytes)
            raise MappingError(
                f"budget {self.budget_bytes} bytes is infeasible: operator "
                f"{self.ops[big].name!r} alone needs {mr} bytes resident (its inputs and "
                f"output; M_R)")

    def named_budget(self, name: str) -> int:
        """Bytes of budget ``MR``, ``MP`` or ``MH`` (see module docstring)."""
        name = name.upper()
        mr = self.min_budget_bytes()
        if name == "MR":
            return mr
        mp = self.peak_optimal_bytes()
        if name == "MP":
            return mp
        if name == "MH":
            return (mr + mp) // 2
        raise UserError(f"unknown budget {name!r}; expected MR, MH or MP")

    def peak_optimal_bytes(self) -> int:
        """M_P (cached): the least arena of a spill-free schedule over the allowed orders."""
        return int(self.peak_optimal_schedule().solver["arena_bytes"])

    def peak_optimal_schedule(self) -> MemorySchedule:
        """The spill-free schedule of least arena (computed once, then cached)."""
        if self._peak_schedule is None:
            self._peak_schedule = peak_memory_schedule(self)
        return self._peak_schedule

    @property
    def cached_peak_schedule(self) -> MemorySchedule | None:
        """The peak-optimal schedule if :meth:`peak_optimal_schedule` has run, else None
        (never computes it)."""
        return self._peak_schedule

    # ------------------------------------------------------------------ orders
    def step_range(self, i: int) -> tuple[int, int]:
        """Steps operator ``i`` may take: within ``window`` of program order and after its
        ancestors, before its descendants."""
        lo = max(i - self.window, len(self._ancestors[i]))
        hi = min(i + self.window, self.n - 1 - len(self._descendants[i]))
        return lo, max(lo, hi)

    def is_valid_order(self, order: Sequence[int]) -> bool:
        """True for a permutation that respects dependences."""
        if sorted(order) != list(range(self.n)):
            return False
        pos = {o: t for t, o in enumerate(order)}
        return all(pos[p] < pos[i] for i in range(self.n) for p in self.preds[i])

    def spill_free_buffers(self, order: Sequence[int]) -> list[Buffer]:
        """Buffers of a schedule with no spills: every tensor resident from its creation (or,
        for an input, its first use) to its last use."""
        pos = {o: t for t, o in enumerate(order)}
        out = []
        for t, info in self.tensors.items():
            steps = [pos[c] for c in info.consumers]
            if info.producer is not None:
                a = pos[info.producer]
                b = max(steps + [a])
                out.append(Buffer(t, a, b, loaded=False))
            elif steps:
                out.append(Buffer(t, min(steps), max(steps), loaded=True))
        return out

    def peak_bytes(self, order: Sequence[int]) -> int:
        """Peak scratchpad bytes of ``order`` with no spills."""
        occ = np.zeros(self.n + 1, dtype=np.int64)
        for b in self.spill_free_buffers(order):
            occ[b.start] += self.tensors[b.tensor].size
            occ[b.end + 1] -= self.tensors[b.tensor].size
        return int(np.cumsum(occ)[:self.n].max(initial=0))

    # ------------------------------------------------------------------ checking and costing
    def evaluate(self, sched: MemorySchedule, *, need_offsets: bool = False) -> ScheduleCost:
        """Check ``sched`` and count its traffic. Raises MappingError saying what is wrong."""
        n = self.n
        try:
            order = [self.index[e] for e in sched.order]
        except KeyError as exc:
            raise MappingError(f"schedule names unknown einsum {exc.args[0]!r}") from None
        if sorted(order) != list(range(n)):
            raise MappingError("schedule order must list every einsum exactly once")
        pos = {o: t for t, o in enumerate(order)}
        for i in range(n):
            for p in self.preds[i]:
                if pos[p] > pos[i]:
                    raise MappingError(f"order runs {self.ops[i].name!r} before "
                                       f"{self.ops[p].name!r}, whose output it reads")
        by_tensor: dict[str, list[Buffer]] = {}
        for b in sched.buffers:
            if b.tensor not in self.tensors:
                raise MappingError(f"buffer of unknown tensor {b.tensor!r}")
            if not 0 <= b.start <= b.end < n:
                raise MappingError(f"buffer of {b.tensor!r}: steps {b.start}..{b.end} outside "
                                   f"0..{n - 1}")
            by_tensor.setdefault(b.tensor, []).append(b)
        occ = np.zeros(n + 1, dtype=np.int64)
        reload = spill = 0
        loads = Counter()
        for t, bufs in by_tensor.items():
            info = self.tensors[t]
            bufs.sort(key=lambda b: b.start)
            for a, b in zip(bufs, bufs[1:]):
                if a.end >= b.start:
                    raise MappingError(f"buffers of {t!r} overlap at step {b.start}")
            for b in bufs:
                occ[b.start] += info.size
                occ[b.end + 1] -= info.size
                if info.producer is not None:
                    ps = pos[info.producer]
                    if b.start < ps:
                        raise MappingError(f"{t!r} is resident at step {b.start}, before "
                                           f"{self.ops[info.producer].name!r} creates it")
                    b_loaded = b.start != ps
                    if b.loaded != b_loaded:
                        b.loaded = b_loaded
                if b.loaded:
                    loads[t] += 1
            if info.producer is not None and loads[t] and t not in sched.spilled \
                    and not info.is_output:
                raise MappingError(f"{t!r} is reloaded but never spilled")
            if info.producer is not None and not any(not b.loaded for b in bufs):
                raise MappingError(f"{t!r} is never created: no buffer starts at step "
                                   f"{pos[info.producer]} where its producer runs")
        for i in range(n):
            t_step = pos[i]
            for t in self.ops[i].uses:
                if not any(b.start <= t_step <= b.end for b in by_tensor.get(t, ())):
                    raise MappingError(f"{self.ops[i].name!r} runs at step {t_step} but "
                                       f"{t!r} is not resident")
        occupancy = np.cumsum(occ)[:n]
        peak = int(occupancy.max(initial=0))
        if peak > self.budget_bytes:
            step = int(np.argmax(occupancy))
            raise MappingError(f"resident tensors need {peak} bytes at step {step} "
                               f"({sched.order[step]!r}), more than the budget of "
                               f"{self.budget_bytes}")
        arena = None
        if all(b.offset is not None for b in sched.buffers):
            arena = _check_offsets(sched.buffers, self.tensors, self.budget_bytes)
        elif need_offsets:
            raise MappingError("some buffers have no offset")
        compulsory = 0
        for t, info in self.tensors.items():
            if info.is_input and info.producer is None:
                compulsory += info.size if loads[t] else 0
                reload += info.size * max(loads[t] - 1, 0)
            else:
                reload += info.size * loads[t]
                if info.is_output:
                    compulsory += info.size
                elif t in sched.spilled:
                    spill += info.size
        return ScheduleCost(reload + spill, compulsory, reload, spill, peak,
                            occupancy.tolist(), arena)

    # ------------------------------------------------------------------ to the evaluator
    def to_mapping(self, sched: MemorySchedule) -> "Mapping":
        """The :class:`archsim.mapping.Mapping` of ``sched``: binding, order, every tensor
        homed in the scratchpad, and the ``memory`` plan (buffers, loads, spills) the
        evaluator charges as traffic."""
        from archsim.mapping import Mapping

        cost = self.evaluate(sched)
        if any(b.offset is None for b in sched.buffers):
            assign_offsets(self, sched)
            cost = self.evaluate(sched, need_offsets=True)
        memory = {
            "level": self.fast, "backing": self.slow, "budget_bytes": int(self.budget_bytes),
            "buffers": [[b.tensor, b.start, b.end, int(b.offset), bool(b.loaded)]
                        for b in sorted(sched.buffers, key=lambda b: (b.start, b.tensor))],
            "spilled": sorted(sched.spilled),
            "outputs": sorted(t for t, i in self.tensors.items() if i.is_output),
        }
        info = {"non_compulsory_bytes": cost.non_compulsory_bytes,
                "compulsory_bytes": cost.compulsory_bytes, "peak_bytes": cost.peak_bytes,
                "arena_bytes": cost.arena_bytes, "budget": self.budget_name or "bytes",
                "budget_bytes": int(self.budget_bytes), "window": self.window}
        if sched.solver:
            info["solver"] = dict(sched.solver)
        mapping = Mapping(binding=dict(self.binding), order=list(sched.order),
                          placement={t: self.fast for t in self.cascade.tensors},
                          mapper=sched.mapper, info=info, memory=memory)
        # the mapper's own figure of what it optimised, over the whole workload (a repeated
        # body's moves once per instance, as the evaluator runs them)
        total, compulsory = self.workload_traffic_bytes(mapping)
        info["compulsory_bytes_all_instances"] = compulsory
        est = dict((sched.solver or {}).get("estimate") or {})
        if "cycles" not in est:
            est = {"non_compulsory_bytes": total - compulsory}
        info["estimate"] = est
        return mapping

    def workload_traffic_bytes(self, mapping: "Mapping") -> tuple[int, int]:
        """(all off-chip bytes, the compulsory ones) that ``mapping``'s memory plan moves over
        the whole workload: each einsum's loads and stores times how often it runs. The
        compulsory bytes are each graph input's first load and each output's store."""
        cas = self.cascade
        mult = {e: cas.multiplicity(e) for e in mapping.order}
        moves = mapping.memory_moves(cas)
        total = sum((ld + st) * mult[e] for e, (ld, st) in moves.items())
        compulsory = 0
        first_load: dict[str, int] = {}
        for t, a, _b, _o, loaded in mapping.memory_buffers():
            if loaded and (t not in first_load or a < first_load[t]):
                first_load[t] = a
        for t, info in self.tensors.items():
            if info.is_input and info.producer is None and t in first_load:
                compulsory += info.size * mult[mapping.order[first_load[t]]]
            if info.is_output and info.producer is not None:
                compulsory += info.size * mult[self.ops[info.producer].name]
        return int(total), int(compulsory)

    def names(self, order: Iterable[int]) -> list[str]:
        """Einsum names of operator indices."""
        return [self.ops[i].name for i in order]


def _levels(design: "Design") -> tuple[str, str]:
    spms = Counter(m.scratchpad for m in design.unit_models.values() if m.scratchpad)
    if not spms:
        raise MappingError(f"design {design.name!r} has no unit with a scratchpad to map "
                           f"tensors into")
    fast = spms.most_common(1)[0][0]
    slow = design.memories[fast].backing
    if slow is None:
        raise MappingError(f"scratchpad {fast!r} of {design.name} has no backing memory")
    return fast, slow


def _closure(graph: list[set[int]]) -> list[set[int]]:
    """Transitive closure of ``graph`` (node -> direct neighbours), nodes in topological
    order of the neighbour relation's reverse (indices: program order)."""
    n = len(graph)
    out: list[set[int]] = [set() for _ in range(n)]
    order = range(n) if all(all(j < i for j in g) for i, g in enumerate(graph)) \
        else range(n - 1, -1, -1)
    for i in order:
        for j in graph[i]:
            out[i].add(j)
            out[i] |= out[j]
    return out


def _check_offsets(buffers: Sequence[Buffer], tensors, budget: int) -> int:
    """Check that co-resident buffers do not overlap in the arena; returns the arena size."""
    arena = 0
    events = sorted(buffers, key=lambda b: b.start)
    for b in events:
        size = tensors[b.tensor].size
        if b.offset < 0 or b.offset + size > budget:
            raise MappingError(f"buffer of {b.tensor!r} at offset {b.offset} (+{size}) leaves "
                               f"the budget of {budget} bytes")
        arena = max(arena, b.offset + size)
    for i, a in enumerate(events):
        sa = tensors[a.tensor].size
        for b in events[i + 1:]:
            if b.start > a.end:
                break
            sb = tensors[b.tensor].size
            if a.overlaps(b) and a.offset < b.offset + sb and b.offset < a.offset + sa:
                raise MappingError(f"buffers of {a.tensor!r} and {b.tensor!r} overlap in "
                                   f"memory at steps {max(a.start, b.start)}..")
    return arena


def interval_bytes(problem: MappingProblem, buffers: Sequence[Buffer]) -> list[int]:
    """Scratchpad bytes resident at each step."""
    occ = np.zeros(problem.n + 1, dtype=np.int64)
    for b in buffers:
        occ[b.start] += problem.tensors[b.tensor].size
        occ[b.end + 1] -= problem.tensors[b.tensor].size
    return np.cumsum(occ)[:problem.n].tolist()


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling of a / b."""
    return -(-a // b) if b else math.inf
