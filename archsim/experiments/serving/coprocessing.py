"""Cost of one serving iteration on an xPU + PIM device (Duplex style), in closed form.

A design whose ``serving`` block names an ``xpu`` (a ``gpu_roofline`` unit) and optionally a
``pim`` (``logic_pim``: Duplex's Logic-PIM; ``bank_pim``: bank-level PIM) is served by
:class:`CoProcessingModel`. Per layer of one device (its tensor-parallel shard) an iteration
is a list of **operations**, each with its FLOPs, its bytes (operands and results, as the model
graph counts them, so op/B agrees with ``archsim workload``) and its time on either processor:

* on the **xPU**, a roofline: ``max(FLOPs / (peak x compute_efficiency), bytes / achieved
  HBM bandwidth)``, softmax and element-wise work on its vector pipes;
* on the **PIM**, the unit's closed forms: Logic-PIM streams the matrix (weights, or the KV
  cache) over the bank-bundle path, ``max(streamed bytes / bundle bandwidth, MACs / modules'
  peak)`` (:class:`~archsim.units.logic_pim.LogicPim`); bank-level PIM runs one GEMV per
  token over matrix rows dealt to every channel (:class:`~archsim.units.pim.BankPim`).

Operations (from the model graph: :func:`~archsim.experiments.serving.iteration.layer_shapes`): the dense
weight GEMMs (QKV, output projection, dense FFN, router), decode attention (QK^T, softmax, AV
over every decoding request's KV cache), prefill attention (full prompt squares; causal
masking not modelled), one FFN per expert of an MoE layer over its tokens (uniform routing:
:func:`dataflow.transformer.expert_token_counts`), element-wise work (norms, residuals,
activations) on the xPU, the LM head.

**Placement** (``serving.placement``): ``fastest`` puts each operation on the processor that
finishes it first (Duplex), ``xpu`` or ``pim`` force one side. **Co-processing**:

* expert co-processing: starting from the fastest placement, the experts with the most tokens
  move to the xPU (or, when the xPU side is the longer, the fewest-token xPU experts move to
  the PIM) while that lowers ``max(xPU time, PIM time)``; the two sides run concurrently;
* attention co-processing: prefill attention and decode attention run concurrently when they
  are on different processors.

Without co-processing the operations of a layer run one after another. Where the two
processors run concurrently they share the DRAM's bank arrays: a regular (xPU) access takes
one bank's column access per ``access_bytes``, a bundle access ``bundle_banks / bank_groups``
banks' worth per bank group, and every bank group serves one column access per ``tCCD_L``;
so a concurrent phase lasts at least ``xPU bytes x share / xPU bandwidth + PIM bytes / PIM
bandwidth`` with ``share = tCCD_L / (burst_cycles x bank_groups)`` the fraction of column
slots a full-rate regular stream uses (0.5 on HBM3). A blocked bank PIM (one row buffer) never
overlaps the xPU.

**Multi-device**: ``tp`` devices of a node share every layer (Megatron shards from the model
graph; two all-reduces per layer on the link unit over ``interconnect``); ``ep`` nodes split the experts
(expert parallelism): the requests of an iteration are dealt to the nodes, each node runs the
non-expert layers for its requests and its ``experts / ep`` experts for the tokens routed to
them from every node, and an MoE layer moves each token's hidden vector to its experts' nodes
and back over ``network`` (all-to-all); the iteration takes as long as the slowest node.

Energy: bytes over the xPU path at the memory's ``read_pj_per_byte``, over the PIM path at the
PIM's energy per byte (:attr:`LogicPim.read_pj_per_byte`, or the bank PIM's command energy),
MACs at the xPU's ``2 x flop_pj`` or the PIM's ``mac_pj``, link bytes at the link's energy.
Static power is not modelled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from archsim.core.physics import roofline_time
from archsim.errors import UserError
from archsim.experiments.serving.batching import StepCost
from archsim.experiments.serving.iteration import (
    SOFTMAX_OPS_PER_SCORE,
    kv_tokens_beside_weights,
    layer_shapes,
    link_allreduce,
)
from archsim.spec import Design

#: vector operations per softmax score (max, subtract, exp, sum, divide)
SOFTMAX_OPS = float(sum(SOFTMAX_OPS_PER_SCORE.values()))


@dataclass
class Op:
    """One operation of a layer with its costs on both processors.

    ``flops`` and ``bytes`` are the model graph's (operands and results); ``xpu_bytes`` /
    ``pim_bytes`` what each processor moves through the DRAM when it runs the operation;
    ``xpu_s`` / ``pim_s`` its time on each (``inf`` where it cannot run); ``on``: where it was
    placed (``xpu`` or ``pim``); ``group``: operations of one group may run concurrently
    (``experts``, ``attention``); ``count``: identical operations folded into this one.
    """

    name: str
    kind: str
    flops: float
    bytes: float
    xpu_s: float
    pim_s: float
    xpu_bytes: float
    pim_bytes: float
    xpu_pj: float
    pim_pj: float
    macs: float
    group: str = ""
    tokens: int = 0
    on: str = "xpu"

    @property
    def ops_per_byte(self) -> float:
        """FLOPs per byte of operands and results."""
        return self.flops / self.bytes if self.bytes else math.inf

    @property
    def seconds(self) -> float:
        """Time on the processor it is placed on."""
        return self.xpu_s if self.on == "xpu" else self.pim_s

    def as_dict(self) -> dict:
        """JSON form (seconds, bytes, FLOPs; ``on``)."""
        return {"name": self.name, "kind": self.kind, "tokens": self.tokens,
                "flops": self.flops, "bytes": self.bytes, "ops_per_byte": self.ops_per_byte,
                "xpu_s": self.xpu_s, "pim_s": self.pim_s, "on": self.on}


class _Xpu:
    """Roofline of the xPU (a ``gpu_roofline`` unit) over the design's HBM."""

    def __init__(self, design: Design, unit):
        self.unit, self.spec = unit, unit.spec
        mem = design.memories[unit.memory]
        self.bw = mem.bandwidth_bytes_per_s * design.memory_efficiency(unit.memory)
        self.flops_s = self.spec.matrix_flops_per_s * self.spec.compute_efficiency
        self.vector_s = self.spec.vector_flops_per_s
        self.read_pj = mem.energy.read_pj_per_byte
        self.flop_pj = self.spec.energy.flop_pj

    def matrix(self, flops: float, nbytes: float) -> float:
        return roofline_time(flops / self.flops_s, nbytes, self.bw)


class _LogicPimSide:
    name = "logic_pim"

    def __init__(self, unit):
        self.unit = unit
        self.bw = unit.bandwidth_bytes_per_s
        self.blocked = False
        self.read_pj = unit.read_pj_per_byte

    def gemm(self, tokens, K, N, count=1.0):
        return self.unit.gemm(tokens, K, N, count)

    def softmax(self, scores: float) -> tuple[float, bool]:
        """(seconds, on the xPU?) of a softmax over ``scores`` scores."""
        return self.unit.softmax_seconds(scores), False


class _BankPimSide:
    name = "bank_pim"

    def __init__(self, unit):
        self.unit = unit
        hbm = unit.hbm
        o = hbm.spec.organization
        self.tck = o.tck_s
        self.units = o.units
        self.blocked = unit.blocked
        # bytes the banks stream per second at the MAC rate (all banks, one MAC per tCCD_L)
        self.bw = hbm.pim_macs_per_cycle * unit.spec.element_bytes / o.tck_s
        self._cache: dict = {}
        self._att: dict = {}

    def gemm(self, tokens, K, N, count=1.0):
        """One GEMV per token (and per ``count``) over a ``N x K`` matrix whose rows are dealt to
        every channel."""
        if tokens <= 0 or count <= 0:
            return 0.0, 0.0, 0.0
        rows = max(-(-int(N) // self.units), 1)
        key = (rows, int(K))
        if key not in self._cache:
            hbm = self.unit.hbm
            cyc = float(hbm.pim_gemv_cycles(rows, int(K), int(K)))
            pj = float(self.unit.gemv_energy_pj(rows, int(K), int(K))) * min(self.units, int(N))
            self._cache[key] = (cyc * self.tck, pj)
        t, pj = self._cache[key]
        n = float(tokens) * count
        el = self.unit.spec.element_bytes
        return t * n, float(K) * N * el * n, pj * n

    def softmax(self, scores: float) -> tuple[float, bool]:
        return 0.0, True          # no softmax unit: the scores go to the xPU

    def attention(self, shapes, context: np.ndarray, fidelity: str) -> tuple[float, float]:
        """(seconds, pJ) of decode attention GEMVs, each request's KV cache in one channel
        (NeuPIMs' layout), requests dealt to the channels longest first."""
        from archsim.experiments.serving.iteration import lpt_makespan, pim_attention_request

        uniq, inv = np.unique(np.asarray(context, dtype=np.int64), return_inverse=True)
        todo = [c for c in uniq.tolist() if c not in self._att]
        if todo:
            if fidelity == "command":
                vals = [pim_attention_request(self.unit, shapes, np.int64(c), "command")
                        for c in todo]
            else:
                t, e = pim_attention_request(self.unit, shapes, np.asarray(todo), "analytical")
                vals = list(zip(np.atleast_1d(t).tolist(), np.atleast_1d(e).tolist()))
            self._att.update(zip(todo, vals))
        v = np.array([self._att[c] for c in uniq.tolist()], dtype=float).reshape(-1, 2)[inv]
        return lpt_makespan(v[:, 0], self.units), float(v[:, 1].sum())


class CoProcessingModel:
    """The :class:`~archsim.experiments.serving.batching.StepModel` of an xPU (+ PIM) design.

    Args:
        design: a design whose ``serving`` block has ``xpu`` (and optionally ``pim``).
        model: a model name, config path or :class:`~dataflow.models.ModelConfig`.
        tp: tensor-parallel devices per node; ep: nodes splitting the experts (MoE models).
        dtype: element type of weights, activations and KV cache.
        placement, expert_coprocessing, attention_coprocessing: override the design's policy.
    """

    def __init__(self, design: Design, model, *, tp: int = 1, ep: int = 1, dtype: str = "fp16",
                 placement: str | None = None, expert_coprocessing: bool | None = None,
                 attention_coprocessing: bool | None = None, fidelity: str = "analytical"):
        from dataflow.models import load_model

        pol = design.serving
        if pol is None or pol.style != "xpu":
            raise UserError(f"design {design.name}: CoProcessingModel needs a serving block "
                            f"with an xpu unit")
        self.design = design
        self.cfg = load_model(model) if isinstance(model, str) else model
        if tp < 1 or ep < 1:
            raise UserError(f"tp and ep must be positive, found tp={tp} ep={ep}")
        if ep > 1 and not self.cfg.experts:
            raise UserError(f"{self.cfg.name} has no experts: expert parallelism (ep={ep}) "
                            f"needs an MoE model")
        if ep > 1 and self.cfg.experts % ep:
            raise UserError(f"{self.cfg.name}: {self.cfg.experts} experts do not split over "
                            f"ep={ep} nodes")
        if tp > 1 and design.interconnect is None:
            raise UserError(f"design {design.name} has no interconnect block; it cannot run tp={tp}")
        node = design.interconnect.devices_per_node if design.interconnect else None
        if node is not None and tp > node:
            raise UserError(f"design {design.name}: tp={tp} exceeds the {node} devices of a node "
                            f"(interconnect.devices_per_node); use --ep for more nodes")
        if ep > 1 and design.network is None:
            raise UserError(f"design {design.name} has no network block; it cannot run ep={ep}")
        if fidelity not in ("analytical", "command"):
            raise UserError(f"fidelity must be analytical or command, found {fidelity!r}")
        self.tp, self.ep, self.fidelity = tp, ep, fidelity
        self.placement = placement or pol.placement
        if self.placement not in ("fastest", "xpu", "pim"):
            raise UserError(f"placement must be fastest, xpu or pim, found {self.placement!r}")
        self.expert_cop = pol.expert_coprocessing if expert_coprocessing is None else expert_coprocessing
        self.attention_cop = (pol.attention_coprocessing if attention_coprocessing is None
                              else attention_coprocessing)
        xu = design.unit_models[pol.xpu]
        if xu.kind != "gpu_roofline":
            raise UserError(f"design {design.name}: serving.xpu must be a gpu_roofline unit, "
                            f"found {xu.kind}")
        self.xpu = _Xpu(design, xu)
        self.hbm_name = xu.memory
        self.hbm = design.memories[self.hbm_name]
        self.pim = None
        if pol.pim is not None:
            pu = design.unit_models[pol.pim]
            if pu.kind == "logic_pim":
                self.pim = _LogicPimSide(pu)
            elif pu.kind == "bank_pim":
                self.pim = _BankPimSide(pu)
            else:
                raise UserError(f"design {design.name}: serving.pim must be a logic_pim or "
                                f"bank_pim unit, found {pu.kind}")
            if pu.spec.memory != self.hbm_name:
                raise UserError(f"design {design.name}: the pim unit sits in {pu.spec.memory!r} but "
                                f"the xpu reads {self.hbm_name!r}; they must share the memory")
        if self.pim is None and self.placement == "pim":
            raise UserError(f"design {design.name} has no pim unit; placement 'pim' is impossible")
        self.shapes = layer_shapes(self.cfg, tp, dtype)
        self.el = self.shapes.element_bytes
        self._share = self._slot_share()
        self._dense_cache: dict[int, list[Op]] = {}
        self._expert_cache: dict[int, Op] = {}

    # ------------------------------------------------------------------ capacity
    @property
    def pim_name(self) -> str:
        """Name of the PIM side in ``unit_busy_s`` (``logic_pim`` or ``bank_pim``)."""
        return self.pim.name if self.pim is not None else "pim"

    @property
    def unit_names(self) -> tuple[str, ...]:
        """Names reported in ``unit_busy_s``."""
        names = ["xpu"] + ([self.pim.name] if self.pim is not None else []) + ["link"]
        return tuple(names + (["network"] if self.ep > 1 else []))

    def weight_bytes_per_device(self) -> float:
        """Weights one device holds: the non-expert layers, its node's share of the experts,
        the LM head or embedding."""
        s = self.shapes
        dense = sum(k * n for _, k, n in s.gemms) * s.element_bytes
        moe = (sum(k * n for k, n in s.expert_gemms) * s.experts / self.ep / s.moe_every
               * s.element_bytes)
        lm = (s.lm_head[0] * s.lm_head[1] * s.element_bytes) if s.lm_head else 0
        emb = self.cfg.vocab * self.cfg.hidden * s.element_bytes / self.tp
        return (dense + moe) * s.layers + max(lm, emb)

    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes one token takes on one device (all layers)."""
        return 2 * self.shapes.kv_dim * self.el * self.shapes.layers

    def kv_capacity_tokens(self) -> int:
        """Tokens of KV cache that fit next to the weights (summed over the ``ep`` nodes,
        which hold different requests).

        Raises:
            UserError: the weights alone do not fit.
        """
        return kv_tokens_beside_weights(self, f"tp={self.tp}, ep={self.ep}") * self.ep

    # ------------------------------------------------------------------ operations
    def _slot_share(self) -> float:
        """Fraction of the bank groups' column slots a full-rate regular stream takes."""
        dram = self.hbm.dram
        if dram is None:
            return 1.0
        o, t = dram.organization, dram.timing
        return min(1.0, t.tccd_l / (o.burst_cycles * o.bank_groups))

    def _op(self, name, kind, *, flops, nbytes, xpu_bytes, pim_gemm, macs, group="",
            tokens=0, xpu_extra_s=0.0) -> Op:
        """Build an operation: ``pim_gemm`` is (tokens, K, N, count) of the matrix the PIM
        streams, or None when the PIM cannot run it."""
        x = self.xpu
        xpu_s = x.matrix(flops, xpu_bytes) + xpu_extra_s
        xpu_pj = xpu_bytes * x.read_pj + flops * x.flop_pj
        if self.pim is not None and pim_gemm is not None:
            ps, pb, ppj = self.pim.gemm(*pim_gemm)
            pim_s = ps
        else:
            pim_s, pb, ppj = math.inf, 0.0, 0.0
        return Op(name, kind, flops, nbytes, xpu_s, pim_s, xpu_bytes, pb, xpu_pj, ppj, macs,
                  group=group, tokens=tokens)

    def _gemm_op(self, name, kind, M, K, N, group="", count=1) -> Op:
        el = self.el
        nbytes = (K * N + M * K + M * N) * el * count
        flops = 2.0 * M * K * N * count
        return self._op(name, kind, flops=flops, nbytes=nbytes, xpu_bytes=nbytes,
                        pim_gemm=(M, K, N, count), macs=flops / 2, group=group, tokens=M)

    def expert_op(self, tokens: int) -> Op:
        """One expert's FFN over ``tokens`` tokens (its GEMMs back to back)."""
        hit = self._expert_cache.get(tokens)
        if hit is None:
            parts = [self._gemm_op("expert", "expert", tokens, K, N) for K, N in
                     self.shapes.expert_gemms]
            hit = Op("expert", "expert", *(sum(getattr(p, f) for p in parts) for f in (
                "flops", "bytes", "xpu_s", "pim_s", "xpu_bytes", "pim_bytes", "xpu_pj", "pim_pj",
                "macs")), group="experts", tokens=tokens)
            self._expert_cache[tokens] = hit
        return Op(**vars(hit))

    def moe_ops(self, tokens_total: int) -> list[Op]:
        """One node's experts of an MoE layer, with the tokens routed to them from every node
        (uniform routing)."""
        from dataflow.transformer import expert_token_counts

        s = self.shapes
        if not s.experts or tokens_total <= 0:
            return []
        counts = expert_token_counts(tokens_total, s.experts, s.top_k)
        per = s.experts // self.ep
        mine = sorted(counts[:per], reverse=True)   # the busiest node (counts are descending)
        ops = []
        for i, c in enumerate(mine):
            if c == 0:
                continue
            o = self.expert_op(c)
            o.name = f"expert{i}"
            ops.append(o)
        return ops

    def decode_attention_op(self, context: np.ndarray) -> Op | None:
        """QK^T, softmax and AV of every decoding request (one layer)."""
        s, el = self.shapes, self.el
        ctx = np.asarray(context, dtype=np.int64)
        if ctx.size == 0:
            return None
        total = float(ctx.sum())
        g, hd, kvh = s.group, s.head_dim, s.kv_heads
        # per request and KV head, as the model graph counts them: QK (Q, K, S), AV (P, V, O)
        kv = 2.0 * total * hd * kvh * el
        nbytes = kv + (2.0 * ctx.size * g * hd + 2.0 * total * g) * kvh * el
        flops = 4.0 * total * s.heads * hd
        scores = total * s.heads
        sm_xpu = scores * SOFTMAX_OPS / self.xpu.vector_s
        op = self._op("decode_attention", "decode_attention", flops=flops, nbytes=nbytes,
                      xpu_bytes=kv, pim_gemm=None, macs=flops / 2, group="attention",
                      tokens=int(ctx.size), xpu_extra_s=sm_xpu)
        if self.pim is not None:
            # per request and KV head the group's queries stream the request's K (ctx x hd),
            # then its V: linear in the context, so one call covers every request and head
            if isinstance(self.pim, _BankPimSide):
                t, ppj = self.pim.attention(s, ctx, self.fidelity)
                pb = g * kv            # every query head of a group re-reads its K and V
            else:
                t, pb, ppj = self.pim.gemm(g, hd, total * kvh, 2.0)
            sm, on_xpu = self.pim.softmax(scores)
            # Logic-PIM's softmax unit works on the scores as they come out of the modules;
            # without one the scores go to the xPU's vector pipes and back
            op.pim_s = t + sm_xpu if on_xpu else max(t, sm)
            op.pim_bytes, op.pim_pj = pb, ppj
        return op

    def prefill_attention_op(self, prompts: np.ndarray) -> Op | None:
        """QK^T, softmax and AV of every prefilled request (full squares; one layer)."""
        s, el = self.shapes, self.el
        p = np.asarray(prompts, dtype=np.int64)
        if p.size == 0:
            return None
        sq = float(np.sum(p.astype(float) ** 2))
        tok = float(p.sum())
        hd = s.head_dim
        flops = 4.0 * sq * s.heads * hd
        scores = sq * s.heads
        # Q, K, V in, O out; S and P once each (kernels fuse them on the xPU: FlashAttention)
        xb = (2.0 * tok * s.heads * hd + 2.0 * tok * s.kv_dim) * el
        nbytes = xb + 2.0 * scores * el
        sm_xpu = scores * SOFTMAX_OPS / self.xpu.vector_s
        op = self._op("prefill_attention", "prefill_attention", flops=flops, nbytes=nbytes,
                      xpu_bytes=xb, pim_gemm=None, macs=flops / 2, group="attention",
                      tokens=int(tok), xpu_extra_s=sm_xpu)
        if self.pim is not None:
            ps = pb = ppj = 0.0
            for n in p.tolist():
                # per KV head: the prompt's n x group queries against its K, then its V
                t, b, pj = self.pim.gemm(n * s.group, hd, n * s.kv_heads, 2.0)
                ps, pb, ppj = ps + t, pb + b, ppj + pj
            sm, on_xpu = self.pim.softmax(scores)
            op.pim_s = ps + sm_xpu if on_xpu else max(ps, sm)
            op.pim_bytes, op.pim_pj = pb, ppj
        return op

    # ------------------------------------------------------------------ placement and time
    def _place(self, ops: list[Op]) -> None:
        """Put each operation on a processor by the placement policy."""
        for o in ops:
            if self.pim is None or not math.isfinite(o.pim_s) or self.placement == "xpu":
                o.on = "xpu"
            elif self.placement == "pim":
                o.on = "pim"
            else:
                o.on = "pim" if o.pim_s < o.xpu_s else "xpu"

    def _span(self, x_s: float, p_s: float, x_b: float, p_b: float) -> float:
        """Time of a phase where the xPU runs ``x_s`` seconds moving ``x_b`` bytes and the PIM
        ``p_s`` seconds moving ``p_b`` bytes, concurrently (they share the bank arrays)."""
        if self.pim is None or self.pim.blocked:
            return x_s + p_s
        return max(x_s, p_s, x_b * self._share / self.xpu.bw + p_b / self.pim.bw)

    def _concurrent(self, ops: list[Op]) -> float:
        """Time of operations that may run concurrently, as placed."""
        x = [o for o in ops if o.on == "xpu"]
        p = [o for o in ops if o.on == "pim"]
        return self._span(sum(o.xpu_s for o in x), sum(o.pim_s for o in p),
                          sum(o.xpu_bytes for o in x), sum(o.pim_bytes for o in p))

    def _coprocess_experts(self, ops: list[Op]) -> float:
        """Duplex's expert co-processing: from the placement, move the experts with the most
        tokens to the xPU (or the fewest-token xPU experts to the PIM, when the xPU side is the
        longer) one at a time while ``max(xPU, PIM)`` (with the shared banks) drops. Places
        the ops and returns the layer's MoE time."""
        if not ops:
            return 0.0
        ops.sort(key=lambda o: -o.tokens)            # the k busiest on the xPU, the rest on PIM
        xs = np.array([o.xpu_s for o in ops])
        ps = np.array([o.pim_s for o in ops])
        xb = np.array([o.xpu_bytes for o in ops])
        pb = np.array([o.pim_bytes for o in ops])
        cx = np.concatenate([[0.0], np.cumsum(xs)])
        cxb = np.concatenate([[0.0], np.cumsum(xb)])
        cp = np.concatenate([[0.0], np.cumsum(ps[::-1])])[::-1]     # PIM: ops k.. end
        cpb = np.concatenate([[0.0], np.cumsum(pb[::-1])])[::-1]
        spans = np.array([self._span(cx[k], cp[k], cxb[k], cpb[k]) for k in range(len(ops) + 1)])
        k = sum(o.on == "xpu" for o in ops)          # the placement's split
        while True:
            step = 1 if cp[k] > cx[k] else -1
            j = k + step
            if not 0 <= j <= len(ops) or not spans[j] < spans[k]:
                break
            k = j
        for i, o in enumerate(ops):
            o.on = "xpu" if i < k else "pim"
        return float(spans[k])

    def _serial(self, ops: list[Op]) -> float:
        return sum(o.seconds for o in ops)

    def allreduce(self, tokens: int) -> tuple[float, float]:
        """(seconds, bytes per device) of one all-reduce (link unit) of ``tokens`` x hidden."""
        return link_allreduce(self.design, self.tp,
                              tokens * self.shapes.hidden * self.el)

    def all_to_all(self, tokens: int) -> tuple[float, float]:
        """(seconds, bytes per node) of an MoE layer's dispatch and combine across ``ep`` nodes:
        each of the node's tokens goes to its ``top_k`` experts, ``(ep-1)/ep`` of them remote."""
        if self.ep == 1 or tokens == 0:
            return 0.0, 0.0
        from archsim.units.link import design_link

        s = self.shapes
        # a device of the node carries 1/tp of the hidden vector; dispatch, then combine
        out_bytes = tokens * s.top_k * s.hidden * self.el / self.tp
        bw_s, lat_s, moved, _ = design_link(self.design, "network").collective_seconds(
            "alltoall", out_bytes, self.ep)
        return 2 * (bw_s + lat_s), 2 * moved

    def layer(self, prompts: np.ndarray, context: np.ndarray, tokens_total: int | None = None):
        """One layer on the busiest node for its requests (``prompts`` prefilled, ``context``
        decoding): (seconds, per-unit busy seconds, placed ops, energy pJ by component, link
        bytes). ``tokens_total``: tokens of the iteration over all nodes (for the experts)."""
        s = self.shapes
        prompts = np.asarray(prompts, dtype=np.int64)
        context = np.asarray(context, dtype=np.int64)
        tokens = int(prompts.sum()) + int(context.size)
        tokens_total = tokens if tokens_total is None else tokens_total
        dense = self.dense_ops(tokens)
        att = [o for o in (self.decode_attention_op(context), self.prefill_attention_op(prompts))
               if o is not None]
        moe = self.moe_ops(tokens_total)
        self._place(dense)
        self._place(att)
        self._place(moe)
        t_dense = self._serial(dense)
        t_att = self._concurrent(att) if self.attention_cop else self._serial(att)
        if self.expert_cop:
            t_moe = self._coprocess_experts(moe)
        else:
            t_moe = self._serial(moe)
        t_moe /= s.moe_every
        vec_ops = sum(s.vector_ops_per_token.values()) * tokens
        t_vec = vec_ops / self.xpu.vector_s
        ar_s, ar_b = self.allreduce(tokens)
        a2a_s, a2a_b = self.all_to_all(tokens) if moe else (0.0, 0.0)
        a2a_s, a2a_b = a2a_s / s.moe_every, a2a_b / s.moe_every
        kv_write = 2.0 * tokens * s.kv_dim * self.el
        t_kv = kv_write / self.xpu.bw
        seconds = t_dense + t_att + t_moe + t_vec + t_kv + 2 * ar_s + a2a_s
        ops = dense + att + moe
        weight = {id(o): (1.0 / s.moe_every if o.group == "experts" else 1.0) for o in ops}
        busy = {"xpu": t_vec + t_kv, "pim": 0.0, "link": 2 * ar_s, "network": a2a_s}
        pj = {"dram": kv_write * self.xpu.read_pj, "compute": vec_ops * self.xpu.flop_pj,
              "link": 0.0}
        for o in ops:
            w = weight[id(o)]
            if o.on == "xpu":
                busy["xpu"] += o.xpu_s * w
                pj["dram"] += o.xpu_bytes * self.xpu.read_pj * w
                pj["compute"] += (o.xpu_pj - o.xpu_bytes * self.xpu.read_pj) * w
            else:
                busy["pim"] += o.pim_s * w
                pim_dram = self._pim_dram_pj(o)
                pj["dram"] += pim_dram * w
                pj["compute"] += (o.pim_pj - pim_dram) * w
        if self.design.interconnect is not None:
            pj["link"] += 2 * ar_b * self.design.interconnect.energy_pj_per_byte
        if a2a_b:
            pj["link"] += a2a_b * self.design.network.energy_pj_per_byte
        return seconds, busy, ops, pj, 2 * ar_b + a2a_b

    def _pim_dram_pj(self, o: Op) -> float:
        """DRAM part of a PIM operation's energy (the rest is its MACs)."""
        if isinstance(self.pim, _LogicPimSide):
            return o.pim_bytes * self.pim.read_pj
        return o.pim_pj                              # bank PIM: every command is a DRAM command

    def dense_ops(self, tokens: int) -> list[Op]:
        """The weight GEMMs of one layer over ``tokens`` tokens (memoized; a model whose
        repeated body spans several layers contributes its body's GEMMs / ``body_layers``)."""
        if tokens <= 0:
            return []
        hit = self._dense_cache.get(tokens)
        if hit is None:
            hit = [self._gemm_op(role, role, tokens, K, N) for role, K, N in self.shapes.gemms]
            f = 1.0 / self.shapes.body_layers
            if f != 1.0:
                for o in hit:
                    for k in ("flops", "bytes", "xpu_s", "pim_s", "xpu_bytes", "pim_bytes",
                              "xpu_pj", "pim_pj", "macs"):
                        setattr(o, k, getattr(o, k) * f)
            self._dense_cache[tokens] = hit
        return [Op(**vars(o)) for o in hit]

    # ------------------------------------------------------------------ StepModel
    def _nodes(self, prompts: np.ndarray, context: np.ndarray):
        """The requests of each node (dealt round robin; one node without ``ep``)."""
        if self.ep == 1:
            return [(prompts, context)]
        return [(prompts[i::self.ep], context[i::self.ep]) for i in range(self.ep)]

    def step(self, prefill_tokens, prefill_context, decode_context) -> StepCost:
        """Cost of one iteration: every layer on the slowest node, then the LM head."""
        prompts = np.asarray(prefill_tokens, dtype=np.int64)
        ctx = np.asarray(decode_context, dtype=np.int64)
        total = int(prompts.sum()) + int(ctx.size)
        L = self.shapes.layers
        worst = None
        energy = {"dram": 0.0, "compute": 0.0, "link": 0.0}
        for pr, cx in self._nodes(prompts, ctx):
            if pr.size + cx.size == 0 and not self.shapes.experts:
                continue
            sec, busy, _, pj, _ = self.layer(pr, cx, total)
            for k, v in pj.items():
                energy[k] += v * L * self.tp
            if worst is None or sec > worst[0]:
                worst = (sec, busy)
        seconds, busy = (worst[0] * L, {k: v * L for k, v in worst[1].items()}) if worst else \
            (0.0, {})
        # LM head over the sampled tokens (one per request)
        lm = self.shapes.lm_head
        if lm and prompts.size + ctx.size:
            n = int(prompts.size + ctx.size)
            op = self._gemm_op("lm_head", "lm_head", n, lm[0], lm[1])
            self._place([op])
            seconds += op.seconds
            key = "xpu" if op.on == "xpu" else "pim"
            busy[key] = busy.get(key, 0.0) + op.seconds
            dram = op.xpu_bytes * self.xpu.read_pj if op.on == "xpu" else self._pim_dram_pj(op)
            tot = op.xpu_pj if op.on == "xpu" else op.pim_pj
            energy["dram"] += dram * self.tp * self.ep
            energy["compute"] += (tot - dram) * self.tp * self.ep
        busy = {("xpu" if k == "xpu" else self.pim_name if k == "pim" else k): v
                for k, v in busy.items()}
        parts = {k: v * 1e-12 for k, v in energy.items()}
        return StepCost(seconds=seconds, energy_j=sum(parts.values()), energy_breakdown_j=parts,
                        unit_busy_s={n: busy.get(n, 0.0) for n in self.unit_names})

    def layer_report(self, prefill_tokens=(), decode_context=()) -> list[dict]:
        """The operations of one layer of an iteration with their op/B, time on each
        processor and where they were placed (JSON-able dicts)."""
        prompts = np.asarray(prefill_tokens, dtype=np.int64)
        ctx = np.asarray(decode_context, dtype=np.int64)
        pr, cx = self._nodes(prompts, ctx)[0]
        _, _, ops, _, _ = self.layer(pr, cx, int(prompts.sum()) + int(ctx.size))
        return [o.as_dict() for o in ops]
