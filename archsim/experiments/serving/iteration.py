"""Cost of one serving iteration on a device (or a TP x PP group of devices), in closed form.

The serving loop (:mod:`archsim.experiments.serving.batching`) asks for thousands of iterations with
different batches, so an iteration is not run through the event engine; it is costed per
*operator class* with the same unit models the evaluator uses, and combined by the design's
serving policy (``serving:`` block of the design file):

* **Weight GEMMs** (roles :data:`~dataflow.transformer.WEIGHT_ROLES`) of one layer, with
  shapes taken from the model graph (:func:`dataflow.transformer.model_cascade` of one
  device's shard): on the systolic arrays, each GEMM takes the longer of its compute
  (:func:`~archsim.units.systolic.gemm_compute_cycles`) and its traffic (weights once, plus
  activations) at the HBM's achieved bandwidth. Memoized per token count.
* **Decode attention** (QK^T and attention x V per request): on PIM (GEMVs from
  :class:`~archsim.units.hbm.HbmModel`; each request's KV lives in one channel; requests are
  dealt to channels longest first, as NeuPIMs' greedy channel load balancing does) or on the
  NPU (the KV cache streams from HBM; the arrays' GEMV fold time bounds it from below).
  KV layout on PIM (../shared/reference/neupims.md): a bank row holds a slice of one token's
  keys (all KV heads of the device side by side), so QK^T is one GEMV per query head of a
  GQA group with one dot product per KV head; V is stored transposed (a bank row holds one
  value dimension over consecutive tokens), so attention x V is one GEMV per query head.
* **Softmax, norms, residuals, activations**: on the vector unit, operation counts per token
  from the model graph, softmax 5 operations per score (max, subtract, exp, sum, divide).
* **Prefill attention** on the NPU arrays (GEMMs per head; causal masking not modelled).
* **Tensor parallelism**: two all-reduces per layer on the design's link unit
  (:mod:`archsim.units.link`: ring or one-shot over ``interconnect``, the faster);
  **pipeline parallelism**: the batch is split into ``pp`` micro-batches that stream through
  ``pp`` stages of ``layers / pp`` layers; an iteration takes the ``pp`` micro-batch stage
  times plus the activation hops.

Policies per layer (``A`` = decode attention chain, ``N`` = the NPU's GEMMs and vector work,
which run side by side on their separate units, plus the all-reduces):
  * attention on the NPU: ``N + A``;
  * blocked PIM (one row buffer): ``N + A`` (the NPU cannot reach DRAM while the PIM works);
  * dual row buffers, no interleaving: the QKV and output projections overlap attention
    head-group by head-group (``max(qkv + proj, A) + min(...) / head groups``), the rest is
    serial;
  * sub-batch interleaving (NeuPIMs): two sub-batches balanced by attention load;
    ``max(N1, A2) + max(N2, A1)`` per layer (on, off, or ``auto``: per iteration the faster);
  * GPU roofline: every operator in turn at the roofline.
Energy (reported by component: ``compute`` = arrays, vector unit or GPU datapath; ``dram`` =
HBM bytes at the memory's energy per byte plus PIM commands at the DRAM's energy per command;
``link`` = interconnect bytes): static power is not modelled.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from archsim.core.physics import roofline_time
from archsim.errors import UserError
from archsim.experiments.serving.batching import StepCost
from archsim.spec import Design
from archsim.units.systolic import gemm_compute_cycles

SOFTMAX_OPS_PER_SCORE = {"max": 1, "add": 2, "exp": 1, "div": 1}


@dataclass(frozen=True)
class LayerShapes:
    """One device's share of a model layer, from the model graph.

    ``gemms``: (role, K, N) of each weight GEMM of a layer (tokens x K times K x N);
    ``expert``: (K, N) GEMMs of one expert (MoE layers), with ``experts`` and ``top_k``;
    ``lm_head``: (K, N) of the LM head; ``vector_ops_per_token``: vector-unit operations of a
    layer per token by kind (attention and softmax excluded, averaged over the repeated body).
    ``body_layers``: layers the ``gemms`` cover (the model graph's repeated body: ``moe_every``
    layers of a model with alternating dense and MoE layers, e.g. GLaM), so a layer's dense
    GEMMs are ``gemms`` / ``body_layers`` on average.
    """

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    element_bytes: int
    gemms: tuple[tuple[str, int, int], ...]
    expert_gemms: tuple[tuple[int, int], ...] = ()
    experts: int = 0
    top_k: int = 0
    moe_every: int = 1
    lm_head: tuple[int, int] | None = None
    vector_ops_per_token: dict[str, float] = field(default_factory=dict)
    body_layers: int = 1

    @property
    def group(self) -> int:
        """Query heads per KV head (GQA group)."""
        return self.heads // self.kv_heads

    @property
    def kv_dim(self) -> int:
        """Key (or value) elements per token per layer on this device."""
        return self.kv_heads * self.head_dim

    @property
    def weight_bytes_per_layer(self) -> float:
        """Weight bytes of one layer on this device (all experts of an MoE layer)."""
        dense = sum(k * n for _, k, n in self.gemms) / self.body_layers
        moe = sum(k * n for k, n in self.expert_gemms) * self.experts / self.moe_every
        return (dense + moe) * self.element_bytes


def layer_shapes(model, tp: int = 1, dtype: str = "fp16") -> LayerShapes:
    """Read a layer's GEMM shapes and vector work off the model graph of one decode token."""
    from dataflow.models import load_model
    from dataflow.transformer import DTYPES, WEIGHT_ROLES, Request, model_cascade

    cfg = load_model(model) if isinstance(model, str) else model
    cas = model_cascade(cfg, [Request(1, 1)], tp=tp, dtype=dtype)
    inputs = set(cas.inputs())
    gemms, experts, lm_head = [], {}, None
    vec: dict[str, float] = {}
    body = set()
    body_layers = 1
    for rep in cas.repeats:
        body |= set(cas.repeat_body(rep))
        body_layers = max(cfg.layers // rep.count, 1)
    for e in cas.einsums:
        role = cas.tag(e.name, "role", "other")
        con = cas.contraction(e.name)
        if role in WEIGHT_ROLES and con is not None:
            w = con.b if con.b in inputs else con.a
            elems = math.prod(cas.shape(w))
            K = con.K
            N = elems // K
            if role == "lm_head":
                lm_head = (K, N)
            elif role == "expert":
                experts.setdefault(cas.tag(e.name, "expert"), []).append((K, N))
            elif e.name in body:
                gemms.append((role, K, N))
            continue
        if e.name in body and role not in ("attention", "softmax"):
            for k, n in cas.ops(e.name).items():
                vec[k] = vec.get(k, 0.0) + n
    heads = max(cfg.heads // tp, 1)
    kv_heads = max(cfg.kv_heads // tp, 1)
    first_expert = next(iter(experts.values()), [])
    return LayerShapes(
        layers=cfg.layers, hidden=cfg.hidden, heads=heads, kv_heads=kv_heads,
        head_dim=cfg.head_dim, element_bytes=DTYPES[dtype] // 8, gemms=tuple(gemms),
        expert_gemms=tuple(first_expert), experts=cfg.experts if experts else 0,
        top_k=cfg.top_k if experts else 0, moe_every=getattr(cfg, "moe_every", 1) or 1,
        lm_head=lm_head, vector_ops_per_token={k: v / body_layers for k, v in vec.items()},
        body_layers=body_layers)


def pim_attention_request(pim, shapes: LayerShapes, ctx, fidelity: str = "analytical"):
    """(seconds, energy pJ) of one layer's decode attention GEMVs of requests with KV lengths
    ``ctx`` (scalar or array), each request's KV cache in one channel of a bank-level PIM
    (NeuPIMs' layout, see the module docstring): QK^T as one GEMV per query head of a GQA
    group over ``ctx`` rows of all KV heads' keys, attention x V as one GEMV per query head
    over the transposed values. ``pim``: the :class:`~archsim.units.pim.BankPim` unit."""
    s = shapes
    hbm = pim.hbm
    tck = hbm.spec.organization.tck_s
    qk = hbm.pim_gemv_cycles(ctx, s.kv_dim, s.head_dim, fidelity=fidelity)
    av = hbm.pim_gemv_cycles(np.full(np.shape(ctx), s.head_dim), ctx, ctx, fidelity=fidelity)
    seconds = (s.group * np.asarray(qk, dtype=float) + s.heads * np.asarray(av, dtype=float)) * tck
    energy = (s.group * np.asarray(pim.gemv_energy_pj(ctx, s.kv_dim, s.head_dim), dtype=float)
              + s.heads * np.asarray(pim.gemv_energy_pj(
                  np.full(np.shape(ctx), s.head_dim), ctx, ctx), dtype=float))
    if np.ndim(seconds) == 0:
        return float(seconds), float(energy)
    return seconds, energy


def kv_tokens_beside_weights(m, parallel: str) -> int:
    """Tokens of KV cache that fit in a device's DRAM next to its weights, for a serving model
    ``m`` (``hbm``, ``weight_bytes_per_device()``, ``kv_bytes_per_token()``).

    Raises:
        UserError: the weights alone do not fit (``parallel`` describes the split).
    """
    weights = m.weight_bytes_per_device()
    free = m.hbm.capacity_bytes - weights
    if free <= 0:
        raise UserError(
            f"{m.cfg.name} does not fit on {m.design.name}: {weights / 2**30:.1f} GiB of weights "
            f"per device ({parallel}) but {m.hbm.capacity_bytes / 2**30:.1f} GiB of {m.hbm_name}; "
            f"use more devices")
    return int(free // m.kv_bytes_per_token())


def link_allreduce(design: Design, devices: int, nbytes: float) -> tuple[float, float]:
    """(seconds, bytes each device sends) of an all-reduce of ``nbytes`` over ``devices``
    devices on the design's link unit (:mod:`archsim.units.link`: the faster of a ring and a
    one-shot exchange over ``interconnect``), as the graph family times it."""
    from archsim.units.link import design_link

    bw_s, latency_s, moved, _ = design_link(design).collective_seconds("allreduce", nbytes,
                                                                       devices)
    return bw_s + latency_s, moved


def lpt_makespan(times: np.ndarray, bins: int) -> float:
    """Longest-processing-time-first assignment of ``times`` to ``bins``: the largest load."""
    if times.size == 0:
        return 0.0
    if times.size <= bins:
        return float(times.max())
    loads = [0.0] * bins
    for t in np.sort(times)[::-1].tolist():
        low = heapq.heappop(loads)
        heapq.heappush(loads, low + t)
    return max(loads)


class IterationModel:
    """The :class:`~archsim.experiments.serving.batching.StepModel` of a design running a model.

    Args:
        design: a design with a ``serving`` policy block, or with one ``gpu_roofline`` unit.
        model: a model name, config path or :class:`~dataflow.models.ModelConfig`.
        tp, pp: tensor- and pipeline-parallel degrees (devices = tp x pp).
        dtype: weights, activations and KV cache element type.
        interleave: sub-batch interleaving ``True`` (on), ``False`` (off) or ``"auto"``
            (per iteration, whichever the latency model says is faster, as NeuPIMs' scheduler
            decides with its latency estimator); None: the design's policy.
        fidelity: ``analytical`` or ``command`` (PIM GEMV times from the command-level DRAM
            model, memoized per context length).
    """

    def __init__(self, design: Design, model, *, tp: int = 1, pp: int = 1,
                 dtype: str = "fp16", interleave: bool | None = None,
                 fidelity: str = "analytical"):
        from dataflow.models import load_model

        self.design = design
        self.cfg = load_model(model) if isinstance(model, str) else model
        if tp < 1 or pp < 1:
            raise UserError(f"tp and pp must be positive, found tp={tp} pp={pp}")
        if self.cfg.layers % pp:
            raise UserError(f"{self.cfg.name}: {self.cfg.layers} layers do not split into "
                            f"{pp} pipeline stages")
        if (tp > 1 or pp > 1) and design.interconnect is None:
            raise UserError(f"design {design.name} has no interconnect block; it cannot run "
                            f"tp={tp} pp={pp}")
        if fidelity not in ("analytical", "command"):
            raise UserError(f"fidelity must be analytical or command, found {fidelity!r}")
        self.tp, self.pp, self.fidelity = tp, pp, fidelity
        self.shapes = layer_shapes(self.cfg, tp, dtype)
        self.layers_per_stage = self.cfg.layers // pp
        gpus = [n for n, u in design.units.items() if u.kind == "gpu_roofline"]
        if design.serving is None and len(gpus) == 1:
            self.kind = "gpu"
            self.gpu = design.unit_models[gpus[0]]
            self.hbm_name = self.gpu.memory
        elif design.serving is not None:
            pol = design.serving
            self.sa = design.unit_models[pol.npu]
            self.vu = design.unit_models[pol.vector]
            if self.sa.kind != "systolic_array":
                raise UserError(f"design {design.name}: serving.npu must be a systolic_array "
                                f"unit, found {self.sa.kind}")
            att = design.unit_models[pol.attention]
            self.pim = att if att.kind == "bank_pim" else None
            if self.pim is None and pol.attention != pol.npu:
                raise UserError(f"design {design.name}: serving.attention must be a bank_pim "
                                f"unit or the npu unit, found {att.kind}")
            self.interleave = pol.sub_batch_interleaving if interleave is None else interleave
            if self.interleave not in (True, False, "auto"):
                raise UserError(f"sub-batch interleaving must be on, off or auto, found "
                                f"{self.interleave!r}")
            if self.interleave is True and (self.pim is None or self.pim.blocked):
                raise UserError(f"design {design.name}: sub-batch interleaving needs a PIM with "
                                f"dual row buffers")
            if self.pim is None or self.pim.blocked:
                self.interleave = False     # "auto" has nothing to choose from
            self.kind = "pim" if self.pim is not None else "npu"
            self.hbm_name = design.outermost_memory(self.sa.scratchpad)
        else:
            raise UserError(f"design {design.name} has no serving block (npu, vector, attention "
                            f"units) and no single gpu_roofline unit; it cannot serve")
        self.hbm = design.memories[self.hbm_name]
        self.hbm_bw = design.bandwidth_bytes_per_cycle[self.hbm_name] * design.clock_hz
        self.clock = design.clock_hz
        self._gemm_cache: dict[int, tuple[float, float, float]] = {}
        self._pim_cache: dict[int, tuple[float, float]] = {}
        if self.kind == "gpu":
            if interleave is True:
                raise UserError("sub-batch interleaving needs a PIM design")
            self.interleave = False

    # ------------------------------------------------------------------ capacity
    @property
    def unit_names(self) -> tuple[str, ...]:
        """Names reported in ``unit_busy_s``."""
        if self.kind == "gpu":
            return ("gpu", "link")
        return ("npu", "vector", "pim", "link") if self.pim is not None else \
            ("npu", "vector", "link")

    def weight_bytes_per_device(self) -> float:
        """Weights one device holds (its stage's layers, plus the LM head on the last)."""
        s = self.shapes
        lm = (s.lm_head[0] * s.lm_head[1] * s.element_bytes) if s.lm_head else 0
        emb = self.cfg.vocab * self.cfg.hidden * s.element_bytes / self.tp
        return s.weight_bytes_per_layer * self.layers_per_stage + max(lm, emb)

    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes one token takes on one device (its stage's layers)."""
        s = self.shapes
        return 2 * s.kv_dim * s.element_bytes * self.layers_per_stage

    def kv_capacity_tokens(self) -> int:
        """Tokens of KV cache that fit next to the weights in one device's DRAM.

        Raises:
            UserError: the weights alone do not fit.
        """
        return kv_tokens_beside_weights(self, f"tp={self.tp}, pp={self.pp}")

    # ------------------------------------------------------------------ operator classes
    def _gemm(self, M: int, K: int, N: int) -> tuple[float, float, float]:
        """(seconds, HBM bytes, MACs) of one GEMM on the arrays / GPU."""
        el = self.shapes.element_bytes
        nbytes = (K * N + M * K + M * N) * el
        macs = float(M) * K * N
        if self.kind == "gpu":
            g = self.gpu.spec
            t = roofline_time(2 * macs / (g.matrix_flops_per_s * g.compute_efficiency), nbytes,
                              self.hbm_bw)
            return t, nbytes, macs
        sp = self.sa.spec
        cyc = gemm_compute_cycles(M, N, K, sp.rows, sp.cols, sp.dataflow, sp.arrays,
                                  sp.double_buffered) * self.sa.cycle_scale
        return roofline_time(cyc / self.clock, nbytes, self.hbm_bw), nbytes, macs

    def layer_gemms(self, tokens: int) -> tuple[float, float, float]:
        """(seconds, HBM bytes, MACs) of one layer's weight GEMMs over ``tokens`` tokens."""
        if tokens <= 0:
            return 0.0, 0.0, 0.0
        hit = self._gemm_cache.get(tokens)
        if hit is not None:
            return hit
        s = self.shapes
        t = b = m = 0.0
        for _, K, N in s.gemms:
            dt, db, dm = self._gemm(tokens, K, N)
            t, b, m = t + dt, b + db, m + dm
        t, b, m = t / s.body_layers, b / s.body_layers, m / s.body_layers
        if s.experts:
            per = max(math.ceil(tokens * s.top_k / s.experts), 1)
            active = min(s.experts, tokens * s.top_k)
            for K, N in s.expert_gemms:
                dt, db, dm = self._gemm(per, K, N)
                t += dt * active / s.moe_every
                b += db * active / s.moe_every
                m += dm * active / s.moe_every
        self._gemm_cache[tokens] = (t, b, m)
        return t, b, m

    def lm_head(self, tokens: int) -> tuple[float, float, float]:
        """(seconds, HBM bytes, MACs) of the LM head over ``tokens`` sampled tokens."""
        if not self.shapes.lm_head or tokens <= 0:
            return 0.0, 0.0, 0.0
        K, N = self.shapes.lm_head
        return self._gemm(tokens, K, N)

    def vector(self, ops: dict[str, float]) -> tuple[float, float]:
        """(seconds, energy pJ) of vector-unit work given operations by kind."""
        if self.kind == "gpu":
            g = self.gpu.spec
            n = sum(ops.values())
            return n / g.vector_flops_per_s, n * g.energy.flop_pj
        sp = self.vu.spec
        lane_cycles = sum(n * getattr(sp.cycles_per_op, k, 1) for k, n in ops.items())
        pj = sum(n * getattr(sp.energy, f"{k}_pj", sp.energy.add_pj) for k, n in ops.items())
        return lane_cycles / sp.lanes * self.vu.cycle_scale / self.clock, pj

    def softmax_ops(self, scores: float) -> dict[str, float]:
        """Vector operations of a softmax over ``scores`` scores."""
        return {k: v * scores for k, v in SOFTMAX_OPS_PER_SCORE.items()}

    def pim_request_s(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(seconds, energy pJ) of one layer's decode attention GEMVs per request on PIM."""
        ctx = np.asarray(context, dtype=np.int64)
        # memoized per context length: a serving run sees each length many times
        uniq, inverse = np.unique(ctx, return_inverse=True)
        todo = [c for c in uniq.tolist() if c not in self._pim_cache]
        if todo:
            if self.fidelity == "command":
                for c in todo:
                    self._pim_cache[c] = self._pim_one(np.int64(c), "command")
            else:
                t, e = self._pim_one(np.asarray(todo, dtype=np.int64), "analytical")
                for c, ti, ei in zip(todo, np.atleast_1d(t).tolist(), np.atleast_1d(e).tolist()):
                    self._pim_cache[c] = (ti, ei)
        vals = np.array([self._pim_cache[c] for c in uniq.tolist()], dtype=float).reshape(-1, 2)
        return vals[inverse, 0], vals[inverse, 1]

    def _pim_one(self, ctx, fidelity):
        return pim_attention_request(self.pim, self.shapes, ctx, fidelity)

    def decode_attention(self, context: np.ndarray) -> dict[str, float]:
        """One layer's decode attention over requests with KV lengths ``context``.

        Returns seconds of the attention chain, its PIM/NPU/vector busy seconds, HBM bytes
        and energy in pJ.
        """
        s = self.shapes
        ctx = np.asarray(context, dtype=np.int64)
        out = {"seconds": 0.0, "pim": 0.0, "npu": 0.0, "vector": 0.0, "hbm_bytes": 0.0,
               "pj": 0.0, "macs": 0.0, "dram_pj": 0.0}
        if ctx.size == 0:
            return out
        total_ctx = float(ctx.sum())
        scores = total_ctx * s.heads
        vec_s, vec_pj = self.vector(self.softmax_ops(scores))
        macs = 2.0 * total_ctx * s.heads * s.head_dim
        kv_bytes = 2.0 * total_ctx * s.kv_dim * s.element_bytes
        out["macs"] = macs
        out["vector"] = vec_s
        if self.kind == "gpu":
            g = self.gpu.spec
            t = roofline_time(2 * macs / (g.matrix_flops_per_s * g.compute_efficiency), kv_bytes,
                              self.hbm_bw)
            out.update(seconds=t + vec_s, npu=t, hbm_bytes=kv_bytes,
                       pj=vec_pj + 2 * macs * g.energy.flop_pj)
            return out
        if self.pim is None:
            # GEMVs on the arrays: the KV cache streams from HBM; per (request, KV head) the
            # arrays' fold time bounds it from below
            sp = self.sa.spec
            per_req = (gemm_compute_cycles(s.group, ctx, s.head_dim, sp.rows, sp.cols,
                                           sp.dataflow, 1, sp.double_buffered)
                       + gemm_compute_cycles(s.group, s.head_dim, ctx, sp.rows, sp.cols,
                                             sp.dataflow, 1, sp.double_buffered))
            compute_s = float(np.sum(per_req)) * s.kv_heads / sp.arrays * self.sa.cycle_scale / self.clock
            t = roofline_time(compute_s, kv_bytes, self.hbm_bw)
            out.update(seconds=t + vec_s, npu=t, hbm_bytes=kv_bytes,
                       pj=vec_pj + macs * self.sa.spec.energy.mac_pj)
            return out
        per_req_s, per_req_pj = self.pim_request_s(ctx)
        pim_s = lpt_makespan(np.asarray(per_req_s, dtype=float), self.pim.channels)
        if self.pim.blocked:
            chain = pim_s + vec_s          # no overlap: the NPU side cannot read DRAM meanwhile
        else:
            # softmax of one request overlaps other channels' GEMVs; the last one's is exposed
            chain = max(pim_s, vec_s) + vec_s / max(ctx.size, 1)
        # the query and probabilities go in through the global buffer, results come out
        io_bytes = ctx.size * s.heads * s.head_dim * s.element_bytes * 2 + scores * s.element_bytes * 2
        out.update(seconds=chain, pim=pim_s, hbm_bytes=io_bytes,
                   pj=vec_pj + float(np.sum(per_req_pj)), dram_pj=float(np.sum(per_req_pj)))
        return out

    def prefill_attention(self, prompts: np.ndarray) -> tuple[float, float, float]:
        """(seconds, MACs, vector seconds) of one layer's prefill attention (NPU / GPU)."""
        s = self.shapes
        p = np.asarray(prompts, dtype=np.int64)
        if p.size == 0:
            return 0.0, 0.0, 0.0
        macs = float(np.sum(2.0 * p * p)) * s.heads * s.head_dim
        vec_s, _ = self.vector(self.softmax_ops(float(np.sum(p * p)) * s.heads))
        if self.kind == "gpu":
            g = self.gpu.spec
            return 2 * macs / (g.matrix_flops_per_s * g.compute_efficiency), macs, vec_s
        sp = self.sa.spec
        cyc = (gemm_compute_cycles(p, p, s.head_dim, sp.rows, sp.cols, sp.dataflow, 1, sp.double_buffered)
               + gemm_compute_cycles(p, s.head_dim, p, sp.rows, sp.cols, sp.dataflow, 1,
                                     sp.double_buffered))
        t = float(np.sum(cyc)) * s.heads / sp.arrays * self.sa.cycle_scale / self.clock
        return t, macs, vec_s

    def allreduce(self, tokens: int) -> tuple[float, float]:
        """(seconds, link bytes per device) of one all-reduce of ``tokens`` x hidden (link unit)."""
        return link_allreduce(self.design, self.tp,
                              tokens * self.shapes.hidden * self.shapes.element_bytes)

    # ------------------------------------------------------------------ one stage
    def _npu_side(self, tokens: int, prompts: np.ndarray):
        """NPU work of one layer for a (sub-)batch: GEMMs, prefill attention, vector ops,
        all-reduces. Returns a dict of seconds / bytes / energy."""
        s = self.shapes
        g_s, g_b, g_m = self.layer_gemms(tokens)
        pa_s, pa_m, pa_v = self.prefill_attention(prompts)
        v_s, v_pj = self.vector({k: n * tokens for k, n in s.vector_ops_per_token.items()})
        ar_s, ar_b = self.allreduce(tokens)
        mac_pj = (self.gpu.spec.energy.flop_pj * 2 if self.kind == "gpu"
                  else self.sa.spec.energy.mac_pj)
        # the new tokens' K and V are appended to the cache
        kv_write = 2.0 * tokens * s.kv_dim * s.element_bytes
        return {"gemm": g_s + pa_s, "vector": v_s + pa_v, "link": 2 * ar_s,
                "hbm_bytes": g_b + kv_write, "link_bytes": 2 * ar_b,
                "pj": (g_m + pa_m) * mac_pj + v_pj, "qkv_proj": self._qkv_proj(tokens)}

    def _qkv_proj(self, tokens: int) -> float:
        t = 0.0
        for role, K, N in self.shapes.gemms:
            if role in ("qkv", "out_proj"):
                t += self._gemm(tokens, K, N)[0]
        return t / self.shapes.body_layers

    @staticmethod
    def _npu_seconds(npu: dict) -> float:
        """NPU-side time of a layer: the vector unit's element-wise work streams alongside
        the arrays' GEMM tiles (separate units, tile-pipelined), the all-reduces do not
        overlap (the next GEMM needs their result)."""
        return max(npu["gemm"], npu["vector"]) + npu["link"]

    def _layer_plain(self, npu: dict, context: np.ndarray):
        """(seconds, NPU-side costs, attention costs) of a layer without sub-batches."""
        s = self.shapes
        att = self.decode_attention(context)
        a_s = att["seconds"]
        n_s = self._npu_seconds(npu)
        if self.kind == "pim" and not self.pim.blocked:
            # dual row buffers: the projections around attention overlap it head group by
            # head group (the NPU keeps reading weights while the PIM computes)
            qp = npu["qkv_proj"]
            overlap = max(qp, a_s) + min(qp, a_s) / max(s.kv_heads, 1)
            return n_s - qp + overlap, npu, att
        return n_s + a_s, npu, att

    def _layer_interleaved(self, prompts: np.ndarray, context: np.ndarray):
        """(seconds, NPU-side costs, attention costs) of a layer with NeuPIMs' two
        sub-batches, balanced by attention load (contexts dealt alternately, longest first);
        prefills go with the first."""
        order = np.argsort(context, kind="stable")[::-1]
        halves = (order[0::2], order[1::2])
        parts = []
        for i, h in enumerate(halves):
            pr = prompts if i == 0 else prompts[:0]
            n = self._npu_side(int(pr.sum()) + h.size, pr)
            parts.append((n, self.decode_attention(context[h])))
        (n1, a1), (n2, a2) = parts
        side = [self._npu_seconds(n) for n, _ in parts]
        layer_s = max(side[0], a2["seconds"]) + max(side[1], a1["seconds"])
        agg_n = {k: n1[k] + n2[k] for k in ("gemm", "vector", "link", "hbm_bytes",
                                             "link_bytes", "pj")}
        att = {k: a1[k] + a2[k] for k in ("pim", "vector", "hbm_bytes", "pj", "npu", "dram_pj")}
        return layer_s, agg_n, att

    def stage(self, prompts: np.ndarray, context: np.ndarray) -> dict[str, float]:
        """One pipeline stage (``layers / pp`` layers) for one micro-batch: seconds, energy
        (pJ), HBM bytes and per-unit busy seconds (``busy_<unit>``)."""
        prompts = np.asarray(prompts, dtype=np.int64)
        context = np.asarray(context, dtype=np.int64)
        tokens = int(prompts.sum()) + int(context.size)
        L = self.layers_per_stage
        npu = self._npu_side(tokens, prompts)
        hbm_pj = self.hbm.energy.read_pj_per_byte
        busy = {"npu": 0.0, "vector": 0.0, "pim": 0.0, "link": 0.0, "gpu": 0.0}
        plain = self._layer_plain(npu, context)
        if self.kind == "pim" and self.interleave and context.size >= 2:
            inter = self._layer_interleaved(prompts, context)
            use = inter if (self.interleave is True or inter[0] < plain[0]) else plain
        else:
            use = plain
        layer_s, agg_n, att = use
        busy["link"] = agg_n["link"] * L
        if self.kind == "gpu":
            busy["gpu"] = (agg_n["gemm"] + agg_n["vector"] + att["npu"] + att["vector"]) * L
        else:
            busy["npu"] = (agg_n["gemm"] + att["npu"]) * L
            busy["vector"] = (agg_n["vector"] + att["vector"]) * L
            busy["pim"] = att["pim"] * L
        hbm_bytes = (agg_n["hbm_bytes"] + att["hbm_bytes"]) * L
        pj = (agg_n["pj"] + att["pj"]) * L + hbm_bytes * hbm_pj
        dram_pj = att["dram_pj"] * L + hbm_bytes * hbm_pj
        link_bytes = agg_n["link_bytes"] * L
        link_pj = 0.0
        if self.design.interconnect is not None:
            link_pj = link_bytes * self.design.interconnect.energy_pj_per_byte
            pj += link_pj
        return {"seconds": layer_s * L, "pj": pj, "dram_pj": dram_pj, "link_pj": link_pj,
                "hbm_bytes": hbm_bytes, **{
            f"busy_{k}": v for k, v in busy.items()}}

    # ------------------------------------------------------------------ StepModel
    def step(self, prefill_tokens, prefill_context, decode_context) -> StepCost:
        """Cost of one iteration: every micro-batch through every stage, LM head included."""
        prompts = np.asarray(prefill_tokens, dtype=np.int64)
        ctx = np.asarray(decode_context, dtype=np.int64)
        if self.pp == 1:
            mbs = [(prompts, ctx)]
        else:
            mbs = [(prompts[i::self.pp], ctx[i::self.pp]) for i in range(self.pp)]
        seconds = pj = dram_pj = link_pj = 0.0
        busy: dict[str, float] = {}
        for pr, cx in mbs:
            if pr.size + cx.size == 0:
                continue
            st = self.stage(pr, cx)
            seconds += st["seconds"]
            pj += st["pj"] * self.pp
            dram_pj += st["dram_pj"] * self.pp
            link_pj += st["link_pj"] * self.pp
            for k, v in st.items():
                if k.startswith("busy_"):
                    busy[k[5:]] = busy.get(k[5:], 0.0) + v
            if self.pp > 1:
                ic = self.design.interconnect
                hop = (pr.sum() + cx.size) * self.shapes.hidden * self.shapes.element_bytes
                seconds += hop / ic.bandwidth_bytes_per_s + ic.latency_s
                busy["link"] = busy.get("link", 0.0) + hop / ic.bandwidth_bytes_per_s
                pj += hop * (self.pp - 1) * ic.energy_pj_per_byte
                link_pj += hop * (self.pp - 1) * ic.energy_pj_per_byte
        lm_s, lm_b, lm_m = self.lm_head(int(prompts.size + ctx.size))
        seconds += lm_s
        mac_pj = (self.gpu.spec.energy.flop_pj * 2 if self.kind == "gpu"
                  else self.sa.spec.energy.mac_pj)
        pj += lm_m * mac_pj + lm_b * self.hbm.energy.read_pj_per_byte
        dram_pj += lm_b * self.hbm.energy.read_pj_per_byte
        key = "gpu" if self.kind == "gpu" else "npu"
        busy[key] = busy.get(key, 0.0) + lm_s
        # every device of the group does its share; energy is for the whole group
        pj, dram_pj, link_pj = pj * self.tp, dram_pj * self.tp, link_pj * self.tp
        parts = {"dram": dram_pj * 1e-12, "link": link_pj * 1e-12,
                 "compute": (pj - dram_pj - link_pj) * 1e-12}
        names = self.unit_names
        return StepCost(seconds=seconds, energy_j=pj * 1e-12, energy_breakdown_j=parts,
                        unit_busy_s={n: busy.get(n, 0.0) for n in names})
