"""Vector (SIMD) unit: element-wise and reduction einsums.

Timing: the unit has ``lanes`` lanes; an operation of kind ``k`` occupies a lane for
``cycles_per_op.k`` cycles (1 for a fully pipelined operation, more for an iterative divider or
a transcendental unit shared between lanes). An einsum with ``ops[k]`` operations of each kind
takes ``ceil(sum_k ops[k] * cycles_per_op[k] / lanes) + pipeline_latency_cycles`` cycles when
memory keeps up. Operands stream through the unit's scratchpad: each input element the einsum
touches is read once from its home level, each output element written once (broadcast operands,
such as a per-row maximum, are assumed to stay in the unit's registers while they are reused).
"""
from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from archsim.core.physics import whole_cycles
from archsim.errors import MappingError
from archsim.units.base import (
    Phase,
    PlanContext,
    StrictModel,
    TaskPlan,
    Traffic,
    UnitModel,
    UnitSpec,
)

OP_KINDS: tuple[str, ...] = ("mac", "add", "mul", "max", "exp", "div", "sqrt")


class OpCycles(StrictModel):
    """Lane cycles per operation, by kind (1 = one result per lane per cycle)."""

    mac: PositiveFloat
    add: PositiveFloat
    mul: PositiveFloat
    max: PositiveFloat
    exp: PositiveFloat
    div: PositiveFloat
    sqrt: PositiveFloat


class OpEnergy(StrictModel):
    """Energy per operation, by kind."""

    mac_pj: NonNegativeFloat
    add_pj: NonNegativeFloat
    mul_pj: NonNegativeFloat
    max_pj: NonNegativeFloat
    exp_pj: NonNegativeFloat
    div_pj: NonNegativeFloat
    sqrt_pj: NonNegativeFloat


class VectorUnitSpec(UnitSpec):
    """Design-file entry of a vector unit (``kind: vector_unit``)."""

    kind: Literal["vector_unit"]
    lanes: PositiveInt
    scratchpad: str
    cycles_per_op: OpCycles
    pipeline_latency_cycles: NonNegativeInt = 0
    energy: OpEnergy


def unknown_ops_reason(cascade, einsum: str) -> str | None:
    """None when every operation kind of ``einsum`` has a cost (:data:`OP_KINDS`), else why
    not."""
    unknown = set(cascade.ops(einsum)) - set(OP_KINDS)
    if unknown:
        return f"no cost for operation kinds {sorted(unknown)}"
    return None


def require_supported(unit: UnitModel, ctx: PlanContext, what: str) -> None:
    """Raise MappingError when ``unit`` cannot run ``ctx.einsum`` (``what``: e.g. "PCUs")."""
    reason = unit.unsupported_reason(ctx.cascade, ctx.einsum)
    if reason:
        raise MappingError(f"einsum {ctx.einsum!r} cannot run on {what} {unit.name!r}: {reason}")


def staged_traffic(ctx: PlanContext, unit: str, spm: str, lanes: int) -> Traffic:
    """Traffic of an einsum streamed through scratchpad ``spm``: every operand is staged in
    from its home and read there, every result written there and drained to its home.

    Raises MappingError when the double-buffered staging of one ``lanes``-wide vector per
    staged operand does not fit in ``ctx.staging_bytes``."""
    cas = ctx.cascade
    traffic = Traffic()
    staged_el_bytes = 0.0
    for tensor, (r, w) in cas.einsum_tensor_bytes(ctx.einsum).items():
        home = ctx.placement[tensor]
        el = cas.tensors[tensor].bits / 8
        if r:
            traffic.move(home, spm, r)  # stage in
            traffic.read(spm, r)        # lanes read the operand
        if w:
            traffic.write(spm, w)       # lanes write the result
            traffic.move(spm, home, w)  # drain
        if home != spm:
            staged_el_bytes += el * ((r > 0) + (w > 0))
    need = int(2 * lanes * staged_el_bytes)
    if need > ctx.staging_bytes:
        raise MappingError(
            f"einsum {ctx.einsum!r} on {unit!r}: staging needs {need} bytes in "
            f"{spm!r} but only {ctx.staging_bytes} are free")
    return traffic


class VectorUnit(UnitModel):
    """Timing and energy of any einsum on a SIMD vector unit."""

    kind = "vector_unit"
    spec_class = VectorUnitSpec

    def peak_ops_per_cycle(self) -> float:
        """Peak single-cycle operations per unit cycle (= lanes)."""
        return float(self.spec.lanes)

    def own_unsupported_reason(self, cascade, einsum: str) -> str | None:
        """A vector unit runs every einsum whose operation kinds it has costs for."""
        return unknown_ops_reason(cascade, einsum)

    def plan(self, ctx: PlanContext) -> TaskPlan:
        """Cost of streaming the einsum's operands through the lanes once."""
        cas = ctx.cascade
        require_supported(self, ctx, "vector unit")
        spec = self.spec
        ops = cas.ops(ctx.einsum)
        lane_cycles = sum(n * getattr(spec.cycles_per_op, k) for k, n in ops.items())
        stream_unit_cycles = whole_cycles(lane_cycles / spec.lanes)
        unit_cycles = stream_unit_cycles + (spec.pipeline_latency_cycles if lane_cycles else 0)
        scale = self.cycle_scale
        spm = spec.scratchpad

        traffic = staged_traffic(ctx, self.name, spm, spec.lanes)

        phases = [Phase("stream", stream_unit_cycles * scale, traffic.totals())]
        if unit_cycles > stream_unit_cycles:
            phases.append(Phase("pipeline drain", spec.pipeline_latency_cycles * scale, {}))
        energy = sum(n * getattr(spec.energy, f"{k}_pj") for k, n in ops.items())
        reads, writes = traffic.as_ints()
        return TaskPlan(
            phases=phases,
            compute_cycles=whole_cycles(unit_cycles * scale),
            ops=dict(ops),
            read_bytes=reads,
            write_bytes=writes,
            unit_energy_pj=energy,
            useful_cycles=lane_cycles / spec.lanes * scale,
            details={"lane_cycles": lane_cycles, "unit_compute_cycles": unit_cycles},
        )
