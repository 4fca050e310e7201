"""GPU roofline unit: an einsum takes the longer of its compute at the achieved FLOP rate and
its memory traffic at the memory's achieved bandwidth.

A GPU is modelled at the granularity its kernels are: every einsum is one kernel that reads
its operands from and writes its result to ``memory`` (HBM); on-chip caches and shared memory
are inside the kernel. ``compute_efficiency`` is the fraction of peak FLOP/s a kernel achieves
(the design file states its source); the memory's achieved bandwidth is set on the memory
level (``efficiency``). Einsums whose operations are not multiply-accumulates (softmax,
norms, activations) run on the vector pipes at ``vector_flops_per_s``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeFloat, PositiveFloat

from archsim.core.physics import whole_cycles
from archsim.errors import MappingError
from archsim.units.base import Phase, PlanContext, StrictModel, TaskPlan, Traffic, UnitModel, UnitSpec


class RooflineEnergy(StrictModel):
    """Energy per FLOP of the GPU's datapath."""

    flop_pj: NonNegativeFloat


class GpuRooflineSpec(UnitSpec):
    """Design-file entry of a GPU roofline unit (``kind: gpu_roofline``)."""

    kind: Literal["gpu_roofline"]
    memory: str
    matrix_flops_per_s: PositiveFloat
    vector_flops_per_s: PositiveFloat
    compute_efficiency: PositiveFloat = 1.0
    energy: RooflineEnergy


class GpuRoofline(UnitModel):
    """Roofline timing of any einsum on a GPU (see module docstring)."""

    kind = "gpu_roofline"
    spec_class = GpuRooflineSpec
    #: A fusion group (``Mapping.fusion``) on a GPU is one kernel: FlashAttention keeps the
    #: scores and probabilities in SMEM, a GEMM epilogue applies an element-wise consumer to
    #: the accumulator tile, so the group's intermediates never reach HBM.
    fuses = True

    @property
    def memory(self) -> str:
        """Memory level every kernel reads and writes."""
        return self.spec.memory

    def peak_ops_per_cycle(self) -> float:
        """Peak matrix FLOPs per reference cycle."""
        return self.spec.matrix_flops_per_s / self.design.clock_hz

    def own_unsupported_reason(self, cascade, einsum: str) -> str | None:
        """A GPU runs every einsum."""
        return None

    def flops(self, cascade, einsum: str) -> tuple[float, bool]:
        """(FLOPs of the einsum, whether they run on the matrix units)."""
        ops = cascade.ops(einsum)
        matrix = cascade.contraction(einsum) is not None
        flops = 2 * ops.get("mac", 0) + sum(n for k, n in ops.items() if k != "mac")
        return float(flops), matrix

    def plan(self, ctx: PlanContext) -> TaskPlan:
        """One kernel: operands from ``memory``, compute at the achieved rate."""
        cas, spec = ctx.cascade, self.spec
        if spec.memory not in self.design.memories:
            raise MappingError(f"unit {self.name!r}: memory {spec.memory!r} is not in the design")
        flops, matrix = self.flops(cas, ctx.einsum)
        rate = (spec.matrix_flops_per_s if matrix else spec.vector_flops_per_s)
        seconds = flops / (rate * spec.compute_efficiency)
        cycles = seconds * self.design.clock_hz
        traffic = Traffic()
        for tensor, (r, w) in cas.einsum_tensor_bytes(ctx.einsum).items():
            if tensor in ctx.on_chip:        # kept in SMEM/registers by its fused kernel
                continue
            home = ctx.placement[tensor]
            if r:
                traffic.move(home, spec.memory, r)
                traffic.read(spec.memory, r)
            if w:
                traffic.write(spec.memory, w)
                traffic.move(spec.memory, home, w)
        reads, writes = traffic.as_ints()
        return TaskPlan(
            phases=[Phase("kernel", cycles, traffic.totals())],
            compute_cycles=whole_cycles(cycles),
            ops=dict(cas.ops(ctx.einsum)),
            read_bytes=reads, write_bytes=writes,
            unit_energy_pj=flops * spec.energy.flop_pj,
            # utilization is measured against the matrix peak
            useful_cycles=flops / self.peak_ops_per_cycle() if matrix else 0.0,
            details={"flops": flops, "matrix": matrix},
        )
