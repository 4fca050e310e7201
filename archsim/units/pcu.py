"""Pattern compute units (SambaNova RDU): an array of ``count`` PCUs, each a pipeline of
``stages`` stages over ``lanes`` lanes.

A PCU's body runs in one of two modes ([sn40l] sn40l.md "Chip"):

``systolic``
    an output-stationary systolic array of ``lanes x stages`` multiply-accumulators, for
    plain (batched) GEMMs. An output tile is ``lanes x stages``; a GEMM with M rows and N
    columns fills it to ``fill(M, a) * fill(N, b)`` with ``fill(x, w) = x / (ceil(x/w) w)``,
    taking whichever orientation (M on lanes or on stages) fills it better. Decode GEMVs
    (M = 1) therefore run at 1/6 of peak. A contraction runs in whichever mode is faster
    (a norm's sum of squares, M = N = 1, is a SIMD reduction).
``simd``
    a pipelined SIMD: ``lanes`` points enter per cycle; each stage applies one ALU operation
    (``mac add mul max``), so a point with up to ``stages`` ALU operations takes one pass; the
    tail applies transcendentals (``exp div sqrt``), one per lane per cycle. A point costs
    ``max(ceil(alu / stages), tail, 1)`` lane cycles. Reductions use the cross-lane tree.

:meth:`Pcu.einsum_cycles` gives an einsum's cycles on one PCU; the RDU section model
(:mod:`archsim.families.rdu`) divides them over the PCUs a stage is allotted. As a unit of the general
evaluator (``archsim simulate --cascade ...`` on an RDU design) the whole array runs each
einsum as one unfused kernel, operands staged through its scratchpad (the PMUs).
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import NonNegativeFloat, PositiveInt

from archsim.core.physics import whole_cycles
from archsim.units.base import Phase, PlanContext, TaskPlan, UnitModel, UnitSpec
from archsim.units.vector import require_supported, staged_traffic, unknown_ops_reason

ALU_KINDS = ("mac", "add", "mul", "max")
TAIL_KINDS = ("exp", "div", "sqrt")


class PcuSpec(UnitSpec):
    """Design-file entry of a PCU array (``kind: pcu``)."""

    kind: Literal["pcu"]
    count: PositiveInt
    lanes: PositiveInt
    stages: PositiveInt
    scratchpad: str
    energy_pj_per_flop: NonNegativeFloat = 0.0


def _fill(x: int, w: int) -> float:
    """Fraction of ``ceil(x / w)`` passes of width ``w`` that ``x`` items fill."""
    return x / (math.ceil(x / w) * w) if x > 0 else 0.0


class Pcu(UnitModel):
    """Timing of einsums on PCUs (see module docstring)."""

    kind = "pcu"
    spec_class = PcuSpec

    @property
    def macs_per_cycle(self) -> int:
        """Peak multiply-accumulates per cycle of one PCU (``lanes x stages``)."""
        return self.spec.lanes * self.spec.stages

    @property
    def peak_flops_per_s(self) -> float:
        """Peak FLOP/s of the whole array (2 FLOPs per MAC)."""
        return 2.0 * self.macs_per_cycle * self.spec.count * self.clock_hz

    def systolic_utilization(self, m: int, n: int) -> float:
        """Fraction of the ``lanes x stages`` array a GEMM with ``m`` rows and ``n`` columns
        keeps busy (the better of the two orientations)."""
        a, b = self.spec.lanes, self.spec.stages
        return max(_fill(m, a) * _fill(n, b), _fill(m, b) * _fill(n, a))

    def einsum_cycles(self, cascade, einsum: str) -> tuple[float, str]:
        """(cycles on one PCU in this unit's clock, mode) of ``einsum``: ``systolic`` for a
        plain GEMM, ``simd`` otherwise (see module docstring)."""
        ops = cascade.ops(einsum)
        points = cascade.points(einsum)
        simd = 0.0
        if points > 0:
            alu = sum(ops.get(k, 0) for k in ALU_KINDS) / points
            tail = sum(ops.get(k, 0) for k in TAIL_KINDS) / points
            per_point = max(whole_cycles(alu / self.spec.stages), whole_cycles(tail), 1)
            simd = points * per_point / self.spec.lanes
        c = cascade.contraction(einsum)
        if c is not None:
            util = self.systolic_utilization(c.M, c.N)
            systolic = c.B * c.M * c.N * c.K / (self.macs_per_cycle * util)
            if systolic <= simd:
                return systolic, "systolic"
        return simd, "simd"

    def own_unsupported_reason(self, cascade, einsum: str) -> str | None:
        """PCUs run every einsum whose operation kinds are known."""
        return unknown_ops_reason(cascade, einsum)

    def plan(self, ctx: PlanContext) -> TaskPlan:
        """Cost of one einsum spread over all PCUs, operands staged through the PMUs."""
        cas = ctx.cascade
        require_supported(self, ctx, "PCUs")
        one, mode = self.einsum_cycles(cas, ctx.einsum)
        unit_cycles = whole_cycles(one / self.spec.count)
        traffic = staged_traffic(ctx, self.name, self.spec.scratchpad,
                                 self.spec.lanes * self.spec.count)
        ops = cas.ops(ctx.einsum)
        flops = 2 * ops.get("mac", 0) + sum(v for k, v in ops.items() if k != "mac")
        scale = self.cycle_scale
        reads, writes = traffic.as_ints()
        useful = ops.get("mac", 0) / self.macs_per_cycle if mode == "systolic" else one
        return TaskPlan(
            phases=[Phase("stream", unit_cycles * scale, traffic.totals())],
            compute_cycles=whole_cycles(unit_cycles * scale),
            ops=dict(ops),
            read_bytes=reads,
            write_bytes=writes,
            unit_energy_pj=flops * self.spec.energy_pj_per_flop,
            useful_cycles=useful / self.spec.count * scale,
            details={"mode": mode, "pcu_cycles": one, "unit_compute_cycles": unit_cycles},
        )
