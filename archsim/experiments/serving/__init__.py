"""Hardware-independent half of ``archsim serve``: request traces and an iteration-level
(continuous) batching simulator.

- :mod:`archsim.experiments.serving.trace`: request lengths (synthetic ShareGPT/Alpaca, fixed, or a trace
  file) and arrival times (Poisson at a given QPS, from the file, or closed loop).
- :mod:`archsim.experiments.serving.batching`: :func:`simulate_serving` runs a trace through a
  :class:`StepModel` (the hardware model, one call per iteration) and returns a
  :class:`ServingResult` (throughput, TTFT/TBT percentiles, energy, unit utilization).
"""
from __future__ import annotations

from archsim.experiments.serving.batching import (
    ServingRequests,
    ServingResult,
    ServingTimeline,
    StepCost,
    StepModel,
    plot_serving,
    simulate_serving,
)
from archsim.experiments.serving.trace import (
    DATASETS,
    DatasetSpec,
    TraceError,
    TraceRequest,
    build_trace,
    parse_dataset,
    synthetic_lengths,
)

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "ServingRequests",
    "ServingResult",
    "ServingTimeline",
    "StepCost",
    "StepModel",
    "TraceError",
    "TraceRequest",
    "build_trace",
    "parse_dataset",
    "plot_serving",
    "simulate_serving",
    "synthetic_lengths",
]
