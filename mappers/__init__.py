"""Mappers: strategies that propose a :class:`archsim.mapping.Mapping` for the one evaluator.

``get_mapper(name)`` returns a callable ``(cascade, design) -> Mapping``.
"""
from __future__ import annotations

from typing import Callable

from archsim.errors import UserError
from mappers.greedy import default_placement, greedy_mapping

MAPPERS: dict[str, Callable] = {
    "greedy": greedy_mapping,
}


def get_mapper(name: str) -> Callable:
    """The mapper registered as ``name``."""
    try:
        return MAPPERS[name]
    except KeyError:
        raise UserError(f"unknown mapper {name!r}; available: {', '.join(MAPPERS)}") from None


__all__ = ["MAPPERS", "get_mapper", "greedy_mapping", "default_placement"]
