"""Model families: each answers for the designs it claims.

:mod:`archsim.families.base` defines the :class:`~archsim.families.base.Family` protocol;
``graph``, ``spatial`` and ``rdu`` implement it. This package is the registry:
:func:`family_for` is the one place that decides which family answers for a design.
"""
from __future__ import annotations

from archsim.families.base import Family
from archsim.families.graph import FAMILY as graph
from archsim.families.rdu import FAMILY as rdu
from archsim.families.spatial import FAMILY as spatial

__all__ = ["Family", "families", "family_named", "family_for"]


def families() -> tuple[Family, ...]:
    """The families, in the order they are asked to claim a design (most specific first)."""
    return (rdu, spatial, graph)


def family_named(name: str) -> Family:
    """The family called ``name`` (KeyError naming the families otherwise)."""
    for fam in families():
        if fam.name == name:
            return fam
    raise KeyError(f"unknown model family {name!r}; families: "
                   f"{', '.join(f.name for f in families())}")


def family_for(design, workload=None) -> Family:
    """The family that answers for ``workload`` on ``design`` -- the only place that decides
    which model a design gets."""
    for fam in families():
        if fam.claims(design, workload):
            return fam
    raise AssertionError("the graph family claims every design")  # pragma: no cover
