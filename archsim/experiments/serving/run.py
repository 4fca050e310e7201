"""One call from (design, model, dataset, batch ...) to a serving result: what ``archsim serve``,
``archsim validate neupims`` and the notebooks use."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archsim.errors import UserError
from archsim.experiments.serving.batching import ServingResult, simulate_serving
from archsim.experiments.serving.iteration import IterationModel
from archsim.experiments.serving.trace import build_trace, parse_dataset
from archsim.spec import Design, load_design


#: Requests simulated when a synthetic or fixed dataset is given no count.
DEFAULT_REQUESTS = 1000


def split_xpu_devices(devices: int | None, tp: int | None, ep: int | None,
                      node: int | None) -> tuple[int, int]:
    """(tp, ep) of an xPU design: ``devices`` = tp x ep; by default tensor parallelism within a
    node (``node`` devices, None: unbounded) and expert parallelism across nodes."""
    if devices is None:
        return tp or 1, ep or 1
    if devices < 1:
        raise UserError(f"--devices must be positive, found {devices}")
    if tp is None and ep is None:
        tp = min(devices, node) if node else devices
        ep = devices // tp
    elif tp is None:
        tp = devices // ep
    elif ep is None:
        ep = devices // tp
    if tp < 1 or ep < 1 or tp * ep != devices:
        raise UserError(f"--tp {tp} x --ep {ep} = {tp * ep} devices, but --devices is {devices}")
    return tp, ep


def split_devices(devices: int | None, tp: int | None, pp: int | None) -> tuple[int, int]:
    """(tp, pp) for ``devices`` devices: the given degrees, or all devices tensor-parallel.
    Without ``devices`` the degrees given (default 1) decide it."""
    if devices is None:
        return tp or 1, pp or 1
    if devices < 1:
        raise UserError(f"--devices must be positive, found {devices}")
    if tp is None and pp is None:
        return devices, 1
    if tp is None:
        tp = devices // pp
    if pp is None:
        pp = devices // tp
    if tp < 1 or pp < 1 or tp * pp != devices:
        raise UserError(f"--tp {tp} x --pp {pp} = {tp * pp} devices, but --devices is {devices}")
    return tp, pp


@dataclass
class ServeRun:
    """A serving simulation's result and the configuration that produced it."""

    result: ServingResult
    config: dict[str, Any]
    identity: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the result's fields plus ``config`` and ``identity``."""
        d = self.result.to_dict()
        d["config"] = dict(self.config)
        d["identity"] = dict(self.identity)
        return d


def serve(design: Design | str, model, *, dataset: str = "sharegpt", batch: int = 256,
          requests: int | None = None, qps: float | None = None, devices: int | None = None,
          tp: int | None = None, pp: int | None = None, seed: int = 0,
          interleave: bool | None = None, fidelity: str = "analytical", dtype: str = "fp16",
          max_prefill_tokens: int | None = None, progress: bool = False,
          overrides: tuple[str, ...] = (), ep: int | None = None, placement: str | None = None,
          expert_coprocessing: bool | None = None,
          attention_coprocessing: bool | None = None) -> ServeRun:
    """Simulate continuous batching of ``requests`` requests of ``dataset`` on ``design``.

    NPU designs split ``devices`` into ``tp`` x ``pp``; xPU designs (Duplex style) into ``tp``
    (within a node) x ``ep`` (nodes, expert parallelism), with ``placement`` and the
    co-processing switches overriding the design's policy.
    Returns a :class:`ServeRun` (throughput in tokens/s, TTFT/TBT in s, energy in J ...).
    """
    if not isinstance(design, Design):
        design = load_design(design, overrides)
    if batch < 1:
        raise UserError(f"--batch must be positive, found {batch}")
    xpu_style = design.serving is not None and design.serving.style == "xpu"
    if xpu_style:
        if pp not in (None, 1):
            raise UserError(f"design {design.name}: pipeline parallelism is not modelled on "
                            f"xPU designs; use --tp within a node and --ep across nodes")
        if interleave not in (None, False):
            raise UserError(f"design {design.name}: sub-batch interleaving is an NPU + PIM "
                            f"policy (NeuPIMs); this design co-processes instead")
        node = design.interconnect.devices_per_node if design.interconnect else None
        tp, ep = split_xpu_devices(devices, tp, ep, node)
        pp = 1
    else:
        if ep not in (None, 1):
            raise UserError(f"design {design.name}: expert parallelism (--ep) is modelled on "
                            f"xPU designs only")
        bad = [n for n, v in (("placement", placement), ("expert co-processing",
               expert_coprocessing), ("attention co-processing", attention_coprocessing))
               if v is not None]
        if bad:
            raise UserError(f"design {design.name}: {', '.join(bad)} apply to xPU + PIM designs "
                            f"(serving.xpu)")
        tp, pp = split_devices(devices, tp, pp)
        ep = 1
    spec = parse_dataset(dataset)
    if requests is None and spec.kind != "file":
        requests = DEFAULT_REQUESTS
    trace = build_trace(spec, requests, qps, seed)
    if xpu_style:
        from archsim.experiments.serving.coprocessing import CoProcessingModel

        model_s = CoProcessingModel(design, model, tp=tp, ep=ep, dtype=dtype,
                                    placement=placement, fidelity=fidelity,
                                    expert_coprocessing=expert_coprocessing,
                                    attention_coprocessing=attention_coprocessing)
    else:
        model_s = IterationModel(design, model, tp=tp, pp=pp, dtype=dtype,
                                 interleave=interleave, fidelity=fidelity)
    kv = model_s.kv_capacity_tokens()
    result = simulate_serving(trace, model_s, max_batch=batch, kv_capacity_tokens=kv,
                              max_prefill_tokens=max_prefill_tokens, progress=progress)
    config = {
        "design": design.name, "design_hash": design.hash, "model": model_s.cfg.name,
        "dataset": spec.describe(), "batch": batch, "requests": len(trace), "qps": qps,
        "devices": tp * pp * ep, "tp": tp, "pp": pp, "ep": ep, "seed": seed, "dtype": dtype,
        "fidelity": fidelity, "kv_capacity_tokens": kv,
        "sub_batch_interleaving": getattr(model_s, "interleave", False),
    }
    if xpu_style:
        config.update(placement=model_s.placement, expert_coprocessing=model_s.expert_cop,
                      attention_coprocessing=model_s.attention_cop)
    from archsim.core.identity import identity, model_workload_hash

    workload = model_workload_hash(
        model_s.cfg, dtype=dtype, max_batch=batch,
        requests=[(r.arrival_s, r.input_tokens, r.output_tokens) for r in trace])
    return ServeRun(result=result, config=config,
                    identity=identity(design, family="graph", workload_hash=workload))
