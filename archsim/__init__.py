"""archsim: cycle-approximate simulation and mapping of LLM/DNN accelerators.

Three inputs; every family behind one :func:`archsim.api.simulate`::

    import archsim, dataflow
    cascade = dataflow.load_cascade("attention")
    result = archsim.simulate("npu", cascade)        # greedy mapping by default
    print(result.cycles, result.units["sa"].utilization)
"""
from __future__ import annotations

from archsim.version import __version__
from archsim.errors import DesignError, MappingError, UserError, WorkloadError
from archsim.api import simulate
from archsim.mapping import Mapping
from archsim.result import CombinedResult, GraphResult, Result
from archsim.spec import Design, builtin_designs, load_design

__all__ = [
    "__version__", "simulate", "Mapping", "Result", "GraphResult", "CombinedResult", "Design",
    "load_design", "builtin_designs",
    "UserError", "DesignError", "MappingError", "WorkloadError",
]
