"""Spatial PE arrays (FuseMax, FLAT): a 2D or 1D grid of processing elements.

Every PE applies one einsum's per-point operations to the points mapped on it. How long a point
takes depends on how the PE issues its operations (``issue``):

``sequential``
    one datapath runs the point's operations one after another: cycles per point = sum over
    kinds of ``count * cycles_per_op``. FuseMax's PEs (fusemax.md "Architecture": MAC, add and
    max; e^x as 6 sequential MACs) work this way: e^(a-b) costs 1 subtract + 6 MACs = 7.
``pipelined``
    each operation kind has its own pipelined functional unit and consecutive points overlap:
    cycles per point = max over kinds of ``count * cycles_per_op``. FLAT's 1D PEs (an adder, a
    max unit, a 1-cycle exponent unit and a divider) run e^(a-b) at one point per cycle.

The array's throughput for an einsum is ``PEs / cycles_per_point`` points per cycle. Energy is
per operation (``energy``), as in the Accelergy tables of fusemax.md. As a unit of the general
evaluator (``archsim simulate --cascade ...`` on a spatial design) a PE array behaves like a
vector unit with ``rows * cols`` lanes; attention and encoder layers use the fused tile model
of :mod:`archsim.families.spatial` instead.
"""
from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from archsim.core.physics import whole_cycles
from archsim.units.vector import OpCycles, OpEnergy, VectorUnit
from archsim.units.base import UnitSpec

ISSUE_MODES = ("sequential", "pipelined")


class PeArraySpec(UnitSpec):
    """Design-file entry of a PE array (``kind: pe_array``); a 1D array has ``rows: 1``."""

    kind: Literal["pe_array"]
    rows: PositiveInt
    cols: PositiveInt
    issue: Literal["sequential", "pipelined"]
    scratchpad: str
    cycles_per_op: OpCycles
    pipeline_latency_cycles: int = 0
    energy: OpEnergy

    @property
    def lanes(self) -> int:
        """Number of PEs (rows x cols)."""
        return self.rows * self.cols


class PeArray(VectorUnit):
    """Timing and energy of a 2D or 1D PE array (see module docstring)."""

    kind = "pe_array"
    spec_class = PeArraySpec

    @property
    def pes(self) -> int:
        """Number of processing elements."""
        return self.spec.rows * self.spec.cols

    def point_cycles(self, per_point_ops: dict[str, float]) -> float:
        """Cycles one PE spends per point of an einsum whose points each perform
        ``per_point_ops`` (kind -> count), under the array's issue mode."""
        costs = [n * getattr(self.spec.cycles_per_op, k) for k, n in per_point_ops.items() if n]
        if not costs:
            return 0.0
        return float(sum(costs) if self.spec.issue == "sequential" else max(costs))

    def point_energy_pj(self, per_point_ops: dict[str, float]) -> float:
        """Energy in pJ of the operations of one point."""
        return float(sum(n * getattr(self.spec.energy, f"{k}_pj")
                         for k, n in per_point_ops.items()))

    def lane_cycles(self, ops: dict[str, int], points: int) -> float:
        """PE-cycles of an einsum with ``ops`` (kind -> total count) over ``points`` points."""
        if points <= 0:
            return 0.0
        return self.point_cycles({k: n / points for k, n in ops.items()}) * points

    def plan(self, ctx):
        """As a vector unit, but a point's cost follows the issue mode."""
        plan = super().plan(ctx)
        cas = ctx.cascade
        lane = self.lane_cycles(cas.ops(ctx.einsum), cas.points(ctx.einsum))
        unit_cycles = whole_cycles(lane / self.pes)
        scale = self.cycle_scale
        plan.phases[0] = type(plan.phases[0])("stream", unit_cycles * scale, plan.phases[0].bytes)
        plan.compute_cycles = whole_cycles((unit_cycles + (
            self.spec.pipeline_latency_cycles if lane else 0)) * scale)
        plan.useful_cycles = lane / self.pes * scale
        plan.details = {"pe_cycles": lane, "unit_compute_cycles": unit_cycles}
        return plan
