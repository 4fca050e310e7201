"""One call from (design, model, dataset, batch ...) to a serving result: what ``archsim serve``,
``archsim validate neupims`` and the notebooks use."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archsim.errors import UserError
from archsim.serving.batching import ServingResult, simulate_serving
from archsim.serving.iteration import IterationModel
from archsim.serving.trace import build_trace, parse_dataset
from archsim.spec import Design, load_design


#: Requests simulated when a synthetic or fixed dataset is given no count.
DEFAULT_REQUESTS = 1000


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

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the result's fields plus ``config``."""
        d = self.result.to_dict()
        d["config"] = dict(self.config)
        return d


def serve(design: Design | str, model, *, dataset: str = "sharegpt", batch: int = 256,
          requests: int | None = None, qps: float | None = None, devices: int | None = None,
          tp: int | None = None, pp: int | None = None, seed: int = 0,
          interleave: bool | None = None, fidelity: str = "analytical", dtype: str = "fp16",
          max_prefill_tokens: int | None = None, progress: bool = False,
          overrides: tuple[str, ...] = ()) -> ServeRun:
    """Simulate continuous batching of ``requests`` requests of ``dataset`` on ``design``.

    Returns a :class:`ServeRun` (throughput in tokens/s, TTFT/TBT in s, energy in J ...).
    """
    if not isinstance(design, Design):
        design = load_design(design, overrides)
    if batch < 1:
        raise UserError(f"--batch must be positive, found {batch}")
    tp, pp = split_devices(devices, tp, pp)
    spec = parse_dataset(dataset)
    if requests is None and spec.kind != "file":
        requests = DEFAULT_REQUESTS
    trace = build_trace(spec, requests, qps, seed)
    model_s = IterationModel(design, model, tp=tp, pp=pp, dtype=dtype, interleave=interleave,
                             fidelity=fidelity)
    kv = model_s.kv_capacity_tokens()
    result = simulate_serving(trace, model_s, max_batch=batch, kv_capacity_tokens=kv,
                              max_prefill_tokens=max_prefill_tokens, progress=progress)
    config = {
        "design": design.name, "design_hash": design.hash, "model": model_s.cfg.name,
        "dataset": spec.describe(), "batch": batch, "requests": len(trace), "qps": qps,
        "devices": tp * pp, "tp": tp, "pp": pp, "seed": seed, "dtype": dtype,
        "fidelity": fidelity, "kv_capacity_tokens": kv,
        "sub_batch_interleaving": getattr(model_s, "interleave", False),
    }
    return ServeRun(result=result, config=config)
