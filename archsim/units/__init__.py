"""Unit models: timing and energy of the blocks a design is built from.

A unit kind is registered here with :func:`register_unit`; a design file selects it with
``kind: <name>``. See docs/extending.md, "Adding a unit", for the recipe.
"""
from __future__ import annotations

from archsim.units.base import (
    Phase,
    PlanContext,
    StrictModel,
    TaskPlan,
    Traffic,
    UnitModel,
    UnitSpec,
)
from archsim.units.systolic import SystolicArray
from archsim.units.link import Link
from archsim.units.logic_pim import LogicPim
from archsim.units.pim import BankPim
from archsim.units.pe_array import PeArray
from archsim.units.pcu import Pcu
from archsim.units.roofline import GpuRoofline
from archsim.units.vector import VectorUnit

UNIT_KINDS: dict[str, type[UnitModel]] = {}


def register_unit(model: type[UnitModel]) -> type[UnitModel]:
    """Make a unit model available to design files under ``kind: model.kind``."""
    if not model.kind:
        raise ValueError(f"{model.__name__} has no kind")
    UNIT_KINDS[model.kind] = model
    return model


register_unit(SystolicArray)
register_unit(VectorUnit)
register_unit(GpuRoofline)
register_unit(BankPim)
register_unit(LogicPim)
register_unit(PeArray)
register_unit(Pcu)
register_unit(Link)

__all__ = [
    "Phase", "PlanContext", "StrictModel", "TaskPlan", "Traffic", "UnitModel", "UnitSpec",
    "SystolicArray", "VectorUnit", "GpuRoofline", "BankPim", "LogicPim", "PeArray", "Pcu", "Link", "UNIT_KINDS", "register_unit",
]
