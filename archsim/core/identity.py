"""What a result is a result *of*: its family, model version, inputs and archsim version.

archsim has three model families, each a set of formulas with its own version:

* ``graph``   -- the event-driven evaluator and its unit models, and the serving models built
  on them (NPU, NPU+PIM, GPU, Duplex-style xPU + PIM);
* ``spatial`` -- the spatial attention arrays (FuseMax, FLAT, unfused);
* ``rdu``     -- the dataflow RDU section model and Composition of Experts (SN40L).

:data:`MODEL_VERSIONS` holds each family's version. **Bump a family's number in the same
commit as any change of one of its formulas** (anything that can move a figure of a result):
it is part of every result's identity and of the sweep cache key, so a resumed sweep re-runs
the points a changed model would answer differently. ``archsim regress --update`` refuses to
record a changed golden figure while its family's version is the one the golden was recorded
with, which makes the bump hard to forget.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archsim.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from dataflow import Cascade

    from archsim.spec import Design

FAMILIES = ("graph", "spatial", "rdu")

#: Model version of each family (see the module docstring: bump on every formula change).
MODEL_VERSIONS: dict[str, int] = {
    # 1: first versioned release (0.2.0): the memory plan's spill is stored by its
    #    producer's task (write-back at creation), no longer after its first buffer's last use
    # 2: tensor-parallel all-reduces run on the design's link unit (archsim.units.link: the
    #    faster of ring and one-shot over ``interconnect``) instead of as a copy on the vector
    #    unit; the serving models time theirs the same way (they used a ring only)
    # 3: fusion is a mapping decision (Mapping.fusion); greedy fuses on GPU units: each
    #    attention as one FlashAttention-style kernel, element-wise consumers into their
    #    producer's kernel; a fused group is one kernel whose intermediates skip HBM
    "graph": 3,
    "spatial": 1,
    "rdu": 1,
}


def model_version(family: str) -> str:
    """``family-N``: the family and its model version, as results and cache keys carry it."""
    if family not in MODEL_VERSIONS:
        raise KeyError(f"unknown model family {family!r}; families: {', '.join(FAMILIES)}")
    return f"{family}-{MODEL_VERSIONS[family]}"


def cascade_hash(cascade: "Cascade") -> str:
    """First 12 hex digits of the SHA-256 of the cascade's content (ranks, tensors, einsums)."""
    canon = {
        "ranks": sorted(cascade.ranks.items()),
        "tensors": sorted((t.name, list(t.ranks), t.bits, sorted((t.extents or {}).items()))
                          for t in cascade.tensors.values()),
        "einsums": [(e.name, e.text) for e in cascade.einsums],
        "tags": sorted((k, sorted(v.items())) for k, v in cascade.tags.items()),
        "repeats": [(r.name, r.first, r.last, r.count) for r in cascade.repeats],
    }
    return data_hash(canon)


def data_hash(data: Any) -> str:
    """First 12 hex digits of the SHA-256 of ``data`` as canonical JSON (sorted keys): the
    workload hash of a workload given by values, e.g. a model's configuration with its batch
    and lengths, or a serving trace."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def model_workload_hash(model_config: Any, **shape: Any) -> str:
    """The workload hash of a model (a :class:`dataflow.ModelConfig`) run with ``shape``
    (batch, lengths, scope, a request trace ...)."""
    from dataclasses import asdict

    return data_hash({"model": asdict(model_config), **shape})


def portable_source(source: str) -> str:
    """How a design's source appears in results: ``builtin:NAME`` for a built-in design (the
    same on every machine and checkout), else the path as it was given."""
    from archsim.spec import builtin_designs_dir

    p = Path(source)          # "<design>" (data without a file) has no suffix
    if p.suffix in (".yaml", ".yml") and p.resolve().parent == builtin_designs_dir().resolve():
        return f"builtin:{p.stem}"
    return source


def identity(design: "Design", *, family: str,
             workload_hash: str | None = None, **extra: Any) -> dict[str, Any]:
    """The identity block of a result: ``family``, ``model_version``, ``archsim_version``,
    ``design``, ``design_hash``, ``design_source`` (portable), ``overrides`` and, when given,
    ``workload_hash`` and ``extra`` fields (e.g. the baseline family of a comparison)."""
    out: dict[str, Any] = {
        "family": family,
        "model_version": model_version(family),
        "archsim_version": __version__,
        "design": design.name,
        "design_hash": design.hash,
        "design_source": portable_source(design.source),
        "overrides": list(design.overrides),
    }
    if workload_hash is not None:
        out["workload_hash"] = workload_hash
    out.update(extra)
    return out
