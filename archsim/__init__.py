"""archsim: cycle-approximate simulation and mapping of LLM/DNN accelerators.

Three inputs; every family behind one :func:`archsim.api.simulate`::

    import archsim, dataflow
    cascade = dataflow.load_cascade("attention")
    result = archsim.simulate("npu", cascade)        # greedy mapping by default
    print(result.cycles, result.units["sa"].utilization)
"""
from __future__ import annotations

__version__ = "0.2.0"

from archsim.errors import DesignError, MappingError, UserError, WorkloadError  # noqa: E402
from archsim.api import simulate  # noqa: E402
from archsim.mapping import Mapping  # noqa: E402
from archsim.result import Result  # noqa: E402
from archsim.spec import Design, builtin_designs, load_design  # noqa: E402

__all__ = [
    "__version__", "simulate", "Mapping", "Result", "Design", "load_design", "builtin_designs",
    "UserError", "DesignError", "MappingError", "WorkloadError",
]
