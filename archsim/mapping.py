"""The mapping: how a workload runs on a design.

A :class:`Mapping` says which unit runs each einsum (``binding``), in what order einsums issue
(``order``; each unit runs its einsums in this order), where each tensor lives (``placement``,
a memory level: its *home*) and, optionally, the tiling a unit uses for an einsum (``tiling``,
unit-specific keys, e.g. ``{M: 512, N: 1024, K: 256, order: nmk}`` for a systolic array).
Every mapper produces one; the evaluator scores it. Mappings round-trip through JSON.

A memory mapper (``mappers.ilp``, ``mappers.greedy.belady_schedule`` ...) adds a ``memory`` plan:
every tensor is homed in the scratchpad ``level``, which holds it only over its *buffers*
(``[tensor, start step, end step, offset, loaded]``); a buffer that starts with ``loaded`` is a
load from ``backing``; ``spilled`` tensors and ``outputs`` are stored to ``backing`` by the
task that produces them (write-back as soon as the tensor exists, so evicting it later costs
nothing). The evaluator charges those moves to the tasks: a load phase before the task, a
store phase after it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from archsim.errors import MappingError

if TYPE_CHECKING:  # pragma: no cover
    from dataflow import Cascade

    from archsim.spec import Design


@dataclass
class Mapping:
    """Binding, order, placement and tiling of a cascade on a design (see module docstring)."""

    binding: dict[str, str]
    order: list[str]
    placement: dict[str, str]
    tiling: dict[str, dict[str, Any]] = field(default_factory=dict)
    mapper: str = "manual"
    info: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] | None = None
    fusion: list[list[str]] = field(default_factory=list)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-serialisable)."""
        return {
            "mapper": self.mapper,
            "order": list(self.order),
            "binding": dict(self.binding),
            "placement": dict(self.placement),
            "tiling": {k: dict(v) for k, v in self.tiling.items()},
            "info": dict(self.info),
            **({"memory": self.memory} if self.memory is not None else {}),
            **({"fusion": [list(g) for g in self.fusion]} if self.fusion else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<mapping>") -> "Mapping":
        """Inverse of :meth:`to_dict`; missing or mistyped keys raise MappingError."""
        if not isinstance(d, dict):
            raise MappingError(f"{source}: expected a mapping object")
        unknown = set(d) - {"mapper", "order", "binding", "placement", "tiling", "info",
                            "memory", "fusion"}
        if unknown:
            raise MappingError(f"{source}: unknown keys {sorted(unknown)}; expected mapper, "
                               "order, binding, placement, tiling, info, memory, fusion")
        fusion = d.get("fusion", [])
        if not isinstance(fusion, list) or not all(
                isinstance(g, list) and all(isinstance(e, str) for e in g) for g in fusion):
            raise MappingError(f"{source}: fusion: expected a list of lists of einsum names")
        if "memory" in d and not isinstance(d["memory"], dict):
            raise MappingError(f"{source}: memory: expected an object")
        for key, typ in (("order", list), ("binding", dict), ("placement", dict)):
            if not isinstance(d.get(key), typ):
                raise MappingError(f"{source}: {key}: expected a {typ.__name__}")
        return cls(binding=dict(d["binding"]), order=list(d["order"]),
                   placement=dict(d["placement"]), tiling=dict(d.get("tiling", {})),
                   mapper=str(d.get("mapper", "manual")), info=dict(d.get("info", {})),
                   memory=d.get("memory"), fusion=[list(g) for g in fusion])

    def save(self, path: str | Path) -> None:
        """Write as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Mapping":
        """Read a mapping JSON file."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise MappingError(f"{path}: mapping file not found") from None
        except json.JSONDecodeError as exc:
            raise MappingError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        return cls.from_dict(data, str(path))

    # ------------------------------------------------------------------ checks
    def check(self, cascade: "Cascade", design: "Design") -> None:
        """Raise MappingError saying why, if this mapping cannot run ``cascade`` on ``design``."""
        names = [e.name for e in cascade.einsums]
        known = set(names)
        for e in self.binding:
            if e not in known:
                raise MappingError(f"binding names unknown einsum {e!r}")
        for e in names:
            if e not in self.binding:
                raise MappingError(f"einsum {e!r} is not bound to a unit")
            unit = self.binding[e]
            if unit not in design.units:
                raise MappingError(f"einsum {e!r} is bound to unknown unit {unit!r}; "
                                   f"units of {design.name}: {', '.join(design.units)}")
            why = design.unit_models[unit].unsupported_reason(cascade, e)
            if why:
                raise MappingError(f"einsum {e!r} cannot run on {unit!r}: {why}")
        if sorted(self.order) != sorted(names):
            missing = known - set(self.order)
            extra = [e for e in self.order if e not in known]
            dup = {e for e in self.order if self.order.count(e) > 1}
            raise MappingError("order must list every einsum exactly once"
                               + (f"; missing {sorted(missing)}" if missing else "")
                               + (f"; unknown {extra}" if extra else "")
                               + (f"; repeated {sorted(dup)}" if dup else ""))
        pos = {e: i for i, e in enumerate(self.order)}
        dag = cascade.dag()
        for u, v in dag.edges():
            if pos[u] > pos[v]:
                raise MappingError(f"order runs {v!r} before {u!r}, whose output it reads")
        for t in cascade.tensors:
            if t not in self.placement:
                raise MappingError(f"tensor {t!r} has no placement (memory level)")
            if self.placement[t] not in design.memories:
                raise MappingError(f"tensor {t!r} is placed in unknown memory "
                                   f"{self.placement[t]!r}; memories: {', '.join(design.memories)}")
        for t in self.placement:
            if t not in cascade.tensors:
                raise MappingError(f"placement names unknown tensor {t!r}")
        for rep in cascade.repeats:
            for out, inp in rep.carry:
                if self.placement[out] != self.placement[inp]:
                    raise MappingError(
                        f"repeated body {rep.name!r} carries {out!r} into {inp!r}: both must "
                        f"live in one memory level (placed in {self.placement[out]!r} and "
                        f"{self.placement[inp]!r}), or the instances would cost differently")
        if self.memory is not None:
            self._check_memory(cascade, design)
        self._check_fusion(cascade, design)
        for level, peak, step in self.peak_resident_bytes(cascade, design):
            cap = design.memories[level].capacity_bytes
            if peak > cap:
                raise MappingError(
                    f"tensors placed in {level!r} need {peak} bytes while {self.order[step]!r} "
                    f"runs, more than its capacity of {cap} bytes")

    # ------------------------------------------------------------------ fusion
    def fused_tensors(self, cascade: "Cascade") -> dict[str, frozenset[str]]:
        """Einsum -> the tensors it touches that its fusion group keeps on chip: written in
        the group, read only in the group, not a cascade output and not carried between
        repeated instances. Einsums outside every group map to the empty set."""
        out = {e.name: frozenset() for e in cascade.einsums}
        outputs = set(cascade.outputs())
        carried = {t for rep in cascade.repeats for pair in rep.carry for t in pair}
        for group in self.fusion:
            members = set(group)
            inner = set()
            for e in group:
                t = cascade.einsum(e).output_tensor
                if t in outputs or t in carried:
                    continue
                if set(cascade.consumers(t)) <= members and cascade.consumers(t):
                    inner.add(t)
            for e in group:
                touched = set(cascade.einsum(e).input_tensors) | {cascade.einsum(e).output_tensor}
                out[e] = frozenset(touched & inner)
        return out

    def _check_fusion(self, cascade: "Cascade", design: "Design") -> None:
        seen: dict[str, int] = {}
        dag = cascade.dag()
        for i, group in enumerate(self.fusion):
            if len(group) < 2:
                raise MappingError(f"fusion group {i} {group}: a group fuses two or more einsums")
            for e in group:
                if e not in self.binding:
                    raise MappingError(f"fusion group {i} names unknown einsum {e!r}")
                if e in seen:
                    raise MappingError(f"einsum {e!r} is in fusion groups {seen[e]} and {i}")
                seen[e] = i
            units = {self.binding[e] for e in group}
            if len(units) > 1:
                raise MappingError(f"fusion group {i} {group} spans units {sorted(units)}: a "
                                   f"fused group is one kernel on one unit")
            (unit,) = units
            model = design.unit_models[unit]
            if not getattr(model, "fuses", False):
                raise MappingError(
                    f"fusion group {i}: unit {unit!r} ({model.kind}) does not fuse einsums; "
                    f"only gpu_roofline units keep a fused group's intermediates in the "
                    f"kernel (a scratchpad unit keeps them on chip by placement or a memory plan)")
            sub = dag.subgraph(group).to_undirected()
            if not nx.is_connected(sub):
                raise MappingError(f"fusion group {i} {group} is not connected: a fused "
                                   f"kernel passes each einsum's result to the next")

    def memory_buffers(self) -> list[tuple[str, int, int, int, bool]]:
        """The memory plan's buffers as (tensor, start, end, offset, loaded)."""
        if self.memory is None:
            return []
        return [(str(t), int(a), int(b), int(o), bool(ld))
                for t, a, b, o, ld in self.memory.get("buffers", [])]

    def _check_memory(self, cascade: "Cascade", design: "Design") -> None:
        mem = self.memory
        for key in ("level", "backing", "budget_bytes", "buffers"):
            if key not in mem:
                raise MappingError(f"memory plan: missing {key!r}")
        level, backing = mem["level"], mem["backing"]
        for lv in (level, backing):
            if lv not in design.memories:
                raise MappingError(f"memory plan: unknown memory {lv!r}; memories: "
                                   f"{', '.join(design.memories)}")
        cap = design.memories[level].capacity_bytes
        if int(mem["budget_bytes"]) > cap:
            raise MappingError(f"memory plan: budget {mem['budget_bytes']} bytes exceeds "
                               f"{level!r} ({cap} bytes)")
        n = len(self.order)
        bufs = self.memory_buffers()
        for t, a, b, o, _ in bufs:
            if t not in cascade.tensors:
                raise MappingError(f"memory plan: buffer of unknown tensor {t!r}")
            if not 0 <= a <= b < n:
                raise MappingError(f"memory plan: buffer of {t!r} at steps {a}..{b} outside "
                                   f"0..{n - 1}")
            size = cascade.tensor_bytes(t)
            if o < 0 or o + size > int(mem["budget_bytes"]):
                raise MappingError(f"memory plan: buffer of {t!r} at offset {o} (+{size}) "
                                   f"leaves the budget of {mem['budget_bytes']} bytes")
        by_name = {e.name: e for e in cascade.einsums}
        for step, e in enumerate(self.order):
            ein = by_name[e]
            for t in (*ein.input_tensors, ein.output_tensor):
                if not any(x == t and a <= step <= b for x, a, b, _, _ in bufs):
                    raise MappingError(f"memory plan: {e!r} runs at step {step} but {t!r} is "
                                       f"not resident in {level!r}")
        bufs.sort(key=lambda r: r[1])
        for i, (t, _, b, o, _) in enumerate(bufs):
            st = cascade.tensor_bytes(t)
            for u, c, _, q, _ in bufs[i + 1:]:
                if c > b:
                    break
                if o < q + cascade.tensor_bytes(u) and q < o + st:
                    raise MappingError(f"memory plan: buffers of {t!r} and {u!r} overlap in "
                                       f"{level!r} at step {c}")

    def memory_moves(self, cascade: "Cascade") -> dict[str, tuple[float, float]]:
        """Einsum -> (bytes loaded into the scratchpad before it runs, bytes stored to the
        backing memory after it runs) under the memory plan (empty without one)."""
        if self.memory is None:
            return {}
        moves = {e: [0.0, 0.0] for e in self.order}
        created: dict[str, int] = {}
        for t, a, b, _, loaded in self.memory_buffers():
            if loaded:
                moves[self.order[a]][0] += cascade.tensor_bytes(t)
            elif t not in created:
                created[t] = a
        for t in self.memory.get("spilled", []):
            step = created.get(t)
            if step is not None:                   # stored by the task that creates it
                moves[self.order[step]][1] += cascade.tensor_bytes(t)
        producer = {e.output_tensor: e.name for e in cascade.einsums}
        for t in self.memory.get("outputs", []):
            if t in producer:
                moves[producer[t]][1] += cascade.tensor_bytes(t)
        return {e: (v[0], v[1]) for e, v in moves.items()}

    # ------------------------------------------------------------------ liveness
    def live_intervals(self, cascade: "Cascade") -> dict[str, tuple[int, int]]:
        """Tensor -> (first, last) order position during which it occupies its home.

        Cascade inputs are live from the start, cascade outputs to the end.
        """
        pos = {e: i for i, e in enumerate(self.order)}
        n = len(self.order)
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for e in cascade.einsums:
            i = pos[e.name]
            for t in (*e.input_tensors, e.output_tensor):
                first[t] = min(first.get(t, i), i)
                last[t] = max(last.get(t, i), i)
        for t in cascade.inputs():
            first[t] = 0
        for t in cascade.outputs():
            last[t] = n - 1
        return {t: (first[t], last[t]) for t in first}

    def resident_bytes(self, cascade: "Cascade", design: "Design") -> dict[str, list[int]]:
        """Memory level -> bytes of tensors homed there that are live at each order step
        (for the memory plan's level: the bytes of its buffers)."""
        n = len(self.order)
        diff = {m: np.zeros(n + 1, dtype=np.int64) for m in design.memories}
        planned = self.memory["level"] if self.memory is not None else None
        for t, a, b, _, _ in self.memory_buffers():
            size = cascade.tensor_bytes(t)
            diff[planned][a] += size
            diff[planned][b + 1] -= size
        for t, (a, b) in self.live_intervals(cascade).items():
            level = self.placement.get(t)
            if level not in diff or level == planned:
                continue
            size = cascade.tensor_bytes(t)
            diff[level][a] += size
            diff[level][b + 1] -= size
        return {m: np.cumsum(d[:n]).tolist() for m, d in diff.items()}

    def peak_resident_bytes(self, cascade: "Cascade", design: "Design"):
        """(level, peak bytes, step of the peak) for every memory level."""
        res = []
        for level, row in self.resident_bytes(cascade, design).items():
            if row:
                step = max(range(len(row)), key=row.__getitem__)
                res.append((level, row[step], step))
        return res

    # ------------------------------------------------------------------ display
    def describe(self, cascade: "Cascade") -> str:
        """Human-readable table of the mapping."""
        by_name = {e.name: e for e in cascade.einsums}
        lines = [f"mapping ({self.mapper}):", "  #  unit        einsum"]
        for i, e in enumerate(self.order):
            tile = self.tiling.get(e)
            ttxt = ("   tiles " + " ".join(f"{k}={v}" for k, v in tile.items())) if tile else ""
            lines.append(f"  {i:<2} {self.binding[e]:<11} {by_name[e].text}{ttxt}")
        lines.append("  placement: " + ", ".join(f"{t}@{m}" for t, m in self.placement.items()))
        return "\n".join(lines)
