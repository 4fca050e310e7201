"""archsim's public entry points: :func:`simulate`, :func:`map`, :func:`serve`, :func:`coe`.

The CLI, the golden regression, sweeps and notebooks all come through here. A design's
family is picked in one place (:mod:`archsim.dispatch`, with
:func:`archsim.families.family_for`), where the family's problem is handed to a mapper;
the families score, the mappers search:

============  =====================================  ===============================================
family        workload                               mapping (``mapper=``; default first)
============  =====================================  ===============================================
``graph``     a :class:`dataflow.Cascade`, or a      :class:`archsim.Mapping` from ``greedy``,
              model name + ``model_graph`` options   ``opb``, ``ilp-binding``, ``ilp``, ``belady``,
                                                     ``xla``, ``exhaustive``, ``rl``
``spatial``   an encoder model name + ``seq``,       the design's spatial policy (no mapper)
              ``batch``, ``scope``, ``layers``
``rdu``       a cascade (one socket's shard), or a   sections from ``ilp``, ``greedy``, ``dp``
              model name + ``phase``, ``batch``,     (``fusion="unfused"``: one einsum each);
              ``seq``, ``kv``, ``dtype``, ...        ``tiers="ilp"``: the tier-placement ILP
============  =====================================  ===============================================

Example::

    import archsim
    import dataflow

    cascade = dataflow.model_graph("llama2-7b", "decode", 8, 512, layers=2)
    result = archsim.simulate("npu", cascade)          # greedy mapping
    print(result.cycles, result.seconds)
"""
from __future__ import annotations

from pathlib import Path

from archsim.dispatch import load, map, simulate
from archsim.families import family_for
from archsim.spec import Design

__all__ = ["simulate", "map", "serve", "coe", "family_for", "load"]


def serve(design: Design | str | Path, model, **options):
    """Continuous-batching serving of ``model`` on ``design``
    (:func:`archsim.experiments.serving.run.serve`; same options). Returns a ``ServeRun``."""
    from archsim.experiments.serving.run import serve as run_serve

    return run_serve(design, model, **options)


def coe(design: str = "sn40l", **options):
    """Composition of Experts on an RDU node vs a DGX baseline
    (:func:`archsim.experiments.coe.simulate_coe`; same options). Returns a ``CoeResult``."""
    from archsim.experiments.coe import simulate_coe

    return simulate_coe(design, **options)
