"""The mapping: how a workload runs on a design.

A :class:`Mapping` says which unit runs each einsum (``binding``), in what order einsums issue
(``order``; each unit runs its einsums in this order), where each tensor lives (``placement``,
a memory level: its *home*) and, optionally, the tiling a unit uses for an einsum (``tiling``,
unit-specific keys, e.g. ``{M: 512, N: 1024, K: 256, order: nmk}`` for a systolic array).
Every mapper produces one; the evaluator scores it. Mappings round-trip through JSON.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<mapping>") -> "Mapping":
        """Inverse of :meth:`to_dict`; missing or mistyped keys raise MappingError."""
        if not isinstance(d, dict):
            raise MappingError(f"{source}: expected a mapping object")
        unknown = set(d) - {"mapper", "order", "binding", "placement", "tiling", "info"}
        if unknown:
            raise MappingError(f"{source}: unknown keys {sorted(unknown)}; expected mapper, "
                               "order, binding, placement, tiling, info")
        for key, typ in (("order", list), ("binding", dict), ("placement", dict)):
            if not isinstance(d.get(key), typ):
                raise MappingError(f"{source}: {key}: expected a {typ.__name__}")
        return cls(binding=dict(d["binding"]), order=list(d["order"]),
                   placement=dict(d["placement"]), tiling=dict(d.get("tiling", {})),
                   mapper=str(d.get("mapper", "manual")), info=dict(d.get("info", {})))

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
        for level, peak, step in self.peak_resident_bytes(cascade, design):
            cap = design.memories[level].capacity_bytes
            if peak > cap:
                raise MappingError(
                    f"tensors placed in {level!r} need {peak} bytes while {self.order[step]!r} "
                    f"runs, more than its capacity of {cap} bytes")

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
        """Memory level -> bytes of tensors homed there that are live at each order step."""
        n = len(self.order)
        diff = {m: np.zeros(n + 1, dtype=np.int64) for m in design.memories}
        for t, (a, b) in self.live_intervals(cascade).items():
            level = self.placement.get(t)
            if level not in diff:
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
