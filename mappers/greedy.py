"""Greedy baseline mapper: each einsum on the unit that runs it fastest, in program order.

Placement: cascade inputs and outputs live in the outermost memory behind the units'
scratchpad (e.g. HBM); an intermediate tensor stays in the scratchpad when it fits in
``resident_fraction`` of it for its whole lifetime (first come, first served), else it goes to
the outermost memory; the tensors a repeated body carries from one instance to the next share
a level (the outermost when they disagree). The rest of the scratchpad is left for the units' tile buffers.
Binding: for each einsum, in program order, every unit that supports it is asked for a plan and
the one with the shortest stand-alone time (compute and traffic at full bandwidth) wins; ties go
to the unit listed first in the design. The chosen tiling is recorded in the mapping.
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from archsim.errors import MappingError
from archsim.evaluator import plan_einsum
from archsim.mapping import Mapping

if TYPE_CHECKING:  # pragma: no cover
    from dataflow import Cascade

    from archsim.spec import Design


def default_placement(cascade: "Cascade", design: "Design", order: list[str],
                      resident_fraction: float = 0.5) -> dict[str, str]:
    """Tensor -> memory level, by the rule in the module docstring."""
    spms = Counter(m.scratchpad for m in design.unit_models.values() if m.scratchpad)
    if not spms:
        main = next(iter(design.memories))
        return {t: main for t in cascade.tensors}
    spm = spms.most_common(1)[0][0]
    main = design.outermost_memory(spm)
    placement = {t: main for t in cascade.tensors}
    if spm == main:
        return placement
    budget = resident_fraction * design.memories[spm].capacity_bytes
    probe = Mapping(binding={}, order=order, placement=placement)
    live = probe.live_intervals(cascade)
    occupancy = np.zeros(len(order), dtype=np.int64)
    io = set(cascade.inputs()) | set(cascade.outputs())
    for t in cascade.tensors:
        if t in io or t not in live:
            continue
        a, b = live[t]
        size = cascade.tensor_bytes(t)
        if occupancy[a:b + 1].max(initial=0) + size <= budget:
            occupancy[a:b + 1] += size
            placement[t] = spm
    # a repeated body's carried tensors share a level (the outer one if they disagree)
    for rep in cascade.repeats:
        for out, inp in rep.carry:
            if placement[out] != placement[inp]:
                placement[out] = placement[inp] = main
    return placement


def greedy_mapping(cascade: "Cascade", design: "Design", *,
                   resident_fraction: float = 0.5) -> Mapping:
    """Map ``cascade`` on ``design`` greedily (see module docstring)."""

    order = cascade.topological_order()
    placement = default_placement(cascade, design, order, resident_fraction)
    probe = Mapping(binding={e: "" for e in order}, order=order, placement=placement)
    resident = probe.resident_bytes(cascade, design)
    bw = design.bandwidth_bytes_per_cycle
    binding: dict[str, str] = {}
    tiling: dict[str, dict] = {}
    estimate = 0.0
    for step, e in enumerate(order):
        best = None
        reasons = []
        for uname, model in design.unit_models.items():
            why = model.unsupported_reason(cascade, e)
            if why:
                reasons.append(f"{uname}: {why}")
                continue
            spm = model.scratchpad
            staging = (design.memories[spm].capacity_bytes - resident[spm][step]) if spm else 0
            try:
                plan = plan_einsum(design, cascade, e, uname, placement, staging)
            except MappingError as exc:
                reasons.append(f"{uname}: {exc}")
                continue
            t = plan.alone_cycles(bw)
            if best is None or t < best[0]:
                best = (t, uname, plan)
        if best is None:
            raise MappingError(f"no unit of {design.name} can run einsum {e!r}: "
                               + "; ".join(reasons))
        t, uname, plan = best
        binding[e] = uname
        if "tiling" in plan.details:
            tiling[e] = dict(plan.details["tiling"])
        estimate += t
    return Mapping(binding=binding, order=order, placement=placement, tiling=tiling,
                   mapper="greedy", info={"serial_estimate_cycles": round(estimate, 3)})
