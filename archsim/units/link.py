"""Link unit: the device-to-device link that tensor- and expert-parallel collectives run on.

A design with an ``interconnect`` section gets a unit ``link`` of this kind (a design file may
also declare one, reading ``interconnect`` or ``network``). It runs only the collective
einsums a model graph writes (role ``allreduce`` or ``alltoall``, tag ``degree`` = devices):
the einsum's operand is the device's partial (all-reduce) or its outgoing tokens
(all-to-all). Timing is :func:`archsim.core.physics.allreduce` with the section's
``allreduce`` algorithm (ring by default, one-shot, or the faster of the two) or
:func:`archsim.core.physics.all_to_all`, over the section's ``bandwidth_bytes_per_s`` and
``latency_s`` per step; the unit also reads the operand from its
home and writes the result to its home (the copy a collective library makes), and spends
``energy_pj_per_byte`` on every byte it sends. The serving models and the RDU family time
their collectives with the same functions, so a collective costs the same in every path.
"""
from __future__ import annotations

from typing import Literal

from archsim.core import physics
from archsim.core.physics import whole_cycles
from archsim.errors import MappingError
from archsim.units.base import (
    COLLECTIVE_ROLES,
    Phase,
    PlanContext,
    TaskPlan,
    Traffic,
    UnitModel,
    UnitSpec,
    collective_of,
)


class LinkSpec(UnitSpec):
    """Design-file entry of a link unit (``kind: link``)."""

    kind: Literal["link"]
    links: Literal["interconnect", "network"] = "interconnect"


class Link(UnitModel):
    """Collectives over the design's ``interconnect`` (or ``network``); see module docstring."""

    kind = "link"
    spec_class = LinkSpec

    def __init__(self, name, spec, design):
        super().__init__(name, spec, design)
        self.section = getattr(design, spec.links)
        if self.section is None:
            raise MappingError(f"unit {name!r} (kind link) reads the design's {spec.links!r} "
                               f"section, which {design.name} does not have")

    def own_unsupported_reason(self, cascade, einsum: str) -> str | None:
        """A link runs collectives only (a role in COLLECTIVE_ROLES, any degree)."""
        role = cascade.tag(einsum, "role")
        if role not in COLLECTIVE_ROLES:
            return (f"a link runs collectives only ({', '.join(COLLECTIVE_ROLES)}); "
                    f"this einsum's role is {role!r}")
        return None

    def collective_seconds(self, role: str, nbytes: float, degree: int
                           ) -> tuple[float, float, float, str]:
        """(bandwidth s, latency s, bytes sent per device, algorithm) of one collective of
        ``nbytes`` per device over ``degree`` devices."""
        bw, lat = self.section.bandwidth_bytes_per_s, self.section.latency_s
        if role == "allreduce":
            return physics.allreduce(nbytes, degree, bw, lat, self.section.allreduce)
        return (*physics.all_to_all(nbytes, degree, bw, lat), "all_to_all")

    def plan(self, ctx: PlanContext) -> TaskPlan:
        """Cost of one collective einsum (see module docstring)."""
        cas, e = ctx.cascade, ctx.einsum
        reason = self.unsupported_reason(cas, e)
        if reason:
            raise MappingError(f"einsum {e!r} cannot run on link {self.name!r}: {reason}")
        role = cas.tag(e, "role")
        coll = collective_of(cas, e)
        degree = coll[1] if coll else 1
        traffic = Traffic()
        nbytes = 0.0
        for tensor, (r, w) in cas.einsum_tensor_bytes(e).items():
            home = ctx.placement[tensor]
            if r:
                traffic.read(home, r)
                nbytes += r
            if w:
                traffic.write(home, w)
        bw_s, lat_s, moved, algorithm = self.collective_seconds(role, nbytes, degree)
        clk = self.design.clock_hz
        link_cycles = (bw_s + lat_s) * clk
        reads, writes = traffic.as_ints()
        return TaskPlan(
            phases=[Phase(role, link_cycles, traffic.totals())],
            compute_cycles=whole_cycles(link_cycles),
            ops={},
            read_bytes=reads,
            write_bytes=writes,
            unit_energy_pj=moved * self.section.energy_pj_per_byte,
            useful_cycles=bw_s * clk,
            details={"degree": degree, "algorithm": algorithm, "sent_bytes": moved,
                     "latency_cycles": lat_s * clk, "links": self.spec.links},
        )


def design_link(design, links: str = "interconnect") -> Link:
    """The design's link unit reading section ``links`` (``interconnect`` or ``network``):
    the one the design file declares (or :func:`archsim.spec.load_design` adds), else one
    built for the section. Raises MappingError when the design has no such section."""
    for name, model in design.unit_models.items():
        if model.kind == "link" and model.spec.links == links:
            return model
    return Link(links, LinkSpec(kind="link", links=links), design)
