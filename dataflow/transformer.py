"""Model graphs: transformer decoders and encoders, MoE and GQA, as einsum cascades.

:func:`model_cascade` turns a :class:`~dataflow.models.ModelConfig` and one iteration's batch
(a list of :class:`Request`) into a :class:`~dataflow.cascade.Cascade` with concrete rank
sizes. One layer (or, for models that alternate dense and MoE layers, one group of layers) is
written once and marked as a :class:`~dataflow.cascade.Repeat` of ``layers`` instances, so an
80-layer model costs one layer to analyse and simulate.

Phases
  * **prefill**: ``batch`` prompts of ``seq`` tokens (plus ``past`` cached tokens for a
    chunked prefill);
  * **decode**: ``batch`` requests generating one token each, each with its own KV length;
  * **mixed**: decodes and prefill chunks in one iteration (continuous batching).
  Requests with the same (query tokens, context tokens) form one *attention group*. Linear
  layers run on all tokens of the iteration at once; attention runs per group.

Rank names
  ``d`` hidden, ``g`` KV heads, ``r`` query heads per KV head (GQA group; MHA: r = 1, MQA:
  g = 1), ``e``/``f`` head dim of Q,K / V, ``rh``/``rd`` the two halves of ``e`` that rotary
  embedding rotates, ``i`` FFN inner size, ``x`` experts, ``j`` top-k slot, ``v`` vocabulary.
  With one attention group the tokens are ``b`` (requests) x ``p`` (query tokens each) and the
  context is ``m``; with several groups the tokens are one rank ``s`` and group ``k`` has
  ranks ``b{k}``, ``p{k}``, ``c{k}`` (context), with gather/scatter copies (role ``layout``)
  between the token rows and the group.

Layer (pre-norm decoder; ``norm_position="post"`` moves the norms after the residual adds)::

    norm -> Q,K,V projections (+bias) -> rotary (Q, K) -> attention per group
         -> output projection (+bias) [-> all-reduce] -> residual add
    norm -> FFN (SwiGLU: gate, up, silu*mul, down; GeLU/ReLU: up, act, down) or MoE
         [-> all-reduce] -> residual add

MoE: router GEMM, top-k selection (``k`` max-passes over the expert scores), dispatch of every
token to its ``k`` slots, one FFN per expert over its tokens (uniform routing or counts given
by the caller; experts without tokens are skipped), and the gate-weighted combine.

Tensor parallelism (degree ``tp``, Megatron-style): heads, KV heads (replicated when fewer
than ``tp``), the FFN inner size and the vocabulary are split; the cascade is one device's
shard. The all-reduce after the output projection and after the FFN is an explicit einsum
``O[...] = OP[...]`` tagged ``role: allreduce, degree: tp`` (the reduced bytes are its
operand; a device model with links times it as communication, others as a copy).

Every einsum carries a ``role`` tag: ``embedding norm qkv bias rope attention`` (QK and AV)
``softmax layout out_proj allreduce residual ffn activation router topk dispatch expert
combine lm_head pooler``; expert einsums also carry ``expert: N``. The GEMMs of
:data:`WEIGHT_ROLES` multiply by weights, so their FLOPs per token are exactly
2 x :meth:`ModelConfig.matmul_params` (active experts only).
Costs that are not modelled: causal masking (prefill attention computes the full square of
scores), T5's relative-position bias add, dropout, sampling. The 1/sqrt(head_dim) score scale
is taken as folded into ``WQ`` (no operations). Top-k and dispatch stand for the cost of
routing (``k`` max-passes over the expert scores, one copy of each token per slot); their
values under ``evaluate`` are not a numerical router.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from .attention import ATTENTION_KINDS, attention_einsums
from .cascade import Cascade, Repeat
from .einsum import Tensor
from .errors import CascadeError
from .models import ModelConfig, load_model
from .parse import parse_einsum

__all__ = ["DTYPES", "PHASES", "WEIGHT_ROLES", "Request", "model_cascade", "model_graph",
           "phase_requests", "flops",
           "flops_by_role", "weight_elements", "expert_token_counts"]

#: Element types and their widths in bits.
DTYPES = {"fp32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "int8": 8}
PHASES = ("prefill", "decode", "mixed")
_EPS = "1e-05"


@dataclass(frozen=True)
class Request:
    """One request's share of an iteration: ``query_tokens`` new tokens (a prompt, a prompt
    chunk, or 1 when decoding) attending over ``context_tokens`` (the KV length including the
    new tokens)."""

    query_tokens: int
    context_tokens: int

    def __post_init__(self) -> None:
        for name in ("query_tokens", "context_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise CascadeError(f"request {name} must be a positive integer, found {value!r}")
        if self.context_tokens < self.query_tokens:
            raise CascadeError(f"a request's context ({self.context_tokens} tokens) must include "
                               f"its {self.query_tokens} query tokens")


def _lengths(value, batch: int, what: str) -> list[int]:
    if isinstance(value, int):
        return [value] * batch
    values = list(value)
    if len(values) != batch:
        raise CascadeError(f"{what}: expected one length per request ({batch}), found "
                           f"{len(values)}")
    return values


def phase_requests(phase: str, batch: int, seq: int, kv=None, *, prefills: int = 1,
                   past: int = 0) -> list[Request]:
    """Return the requests of one iteration.

    * ``prefill``: ``batch`` prompts of ``seq`` tokens after ``past`` cached tokens;
    * ``decode``: ``batch`` requests of one token each; ``kv`` (an int or one int per request)
      is each one's context length including the new token (default ``seq``);
    * ``mixed``: the decodes as above plus ``prefills`` prompt chunks of ``seq`` tokens after
      ``past`` cached tokens.
    """
    if phase not in PHASES:
        raise CascadeError(f"unknown phase {phase!r} (phases: {', '.join(PHASES)})")
    for name, value in (("batch", batch), ("seq", seq)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise CascadeError(f"{name} must be a positive integer, found {value!r}")
    if isinstance(past, bool) or not isinstance(past, int) or past < 0:
        raise CascadeError(f"past must be a non-negative integer, found {past!r}")
    if phase == "prefill":
        return [Request(seq, past + seq)] * batch
    decodes = [Request(1, m) for m in _lengths(seq if kv is None else kv, batch, "kv")]
    if phase == "decode":
        return decodes
    return decodes + [Request(seq, past + seq)] * prefills


def expert_token_counts(tokens: int, experts: int, top_k: int) -> list[int]:
    """Uniform routing: ``tokens * top_k`` assignments spread over the experts as evenly as
    possible (the first ``remainder`` experts get one more)."""
    total = tokens * top_k
    base, extra = divmod(total, experts)
    return [base + (1 if x < extra else 0) for x in range(experts)]


class _Builder:
    """Accumulates einsum lines, tensor declarations, ranks and tags."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.lines: list[str] = []
        self.names: list[str] = []
        self.tensors: dict[str, Tensor] = {}
        self.ranks: dict[str, int] = {}
        self.tags: dict[str, dict] = {}
        self._count: Counter = Counter()

    def rank(self, name: str, size: int) -> str:
        if self.ranks.get(name, size) != size:
            raise CascadeError(f"internal: rank {name} sized twice ({self.ranks[name]}, {size})")
        self.ranks[name] = size
        return name

    def tensor(self, name: str, ranks, extents=None) -> str:
        ranks = tuple(r for part in ranks for r in (part.split(",") if "," in part else [part]))
        if name not in self.tensors:
            self.tensors[name] = Tensor(name, ranks, self.bits, extents)
        return name

    def add(self, line: str, role: str, **tags) -> str:
        out = line.split("[", 1)[0].strip()
        self._count[out] += 1
        name = out if self._count[out] == 1 else f"{out}#{self._count[out]}"
        self.lines.append(line)
        self.names.append(name)
        self.tags[name] = {"role": role, **tags}
        return name


def _shard(value: int, tp: int, what: str, model: str) -> int:
    if value % tp:
        raise CascadeError(f"model {model!r}: {what} ({value}) is not divisible by --tp {tp}")
    return value // tp


def model_cascade(model, requests, *, tp: int = 1, dtype: str = "fp16",
                  attention: str = "3pass", layers: int | None = None,
                  expert_tokens=None, scope: str = "model", name: str | None = None) -> Cascade:
    """Return the einsum cascade of one iteration of ``model`` over ``requests``.

    Args:
        model: a :class:`ModelConfig`, a built-in model name or a ``config.json`` path.
        requests: a list of :class:`Request` (see :func:`phase_requests`).
        tp: tensor-parallel degree; the cascade is one device's shard.
        dtype: element type of weights, activations and the KV cache (:data:`DTYPES`).
        attention: attention cascade, one of ``3pass deferred 2pass 1pass``
            (2pass/1pass need a single attention group; M0 = min(context, 256) must divide
            the context length).
        layers: number of layers (default: the model's); the body is repeated
            ``layers / moe_every`` times.
        expert_tokens: tokens routed to each expert (one list for every MoE layer; must sum
            to tokens x top_k); default uniform routing.
        scope: ``model`` (embeddings, layers, final norm, LM head / pooler), ``layers`` (the
            repeated layers only) or ``attention`` (one layer's attention only, not repeated).

    Returns:
        A validated :class:`Cascade` with a ``role`` tag on every einsum and a
        :class:`Repeat` named ``layers`` (unless scope is ``attention``).
    """
    cfg = model if isinstance(model, ModelConfig) else load_model(model)
    if dtype not in DTYPES:
        raise CascadeError(f"unknown dtype {dtype!r} (dtypes: {', '.join(DTYPES)})")
    if attention not in ATTENTION_KINDS:
        raise CascadeError(f"unknown attention {attention!r} (kinds: "
                           f"{', '.join(ATTENTION_KINDS)})")
    if scope not in ("model", "layers", "attention"):
        raise CascadeError(f"unknown scope {scope!r} (scopes: model, layers, attention)")
    if isinstance(tp, bool) or not isinstance(tp, int) or tp < 1:
        raise CascadeError(f"tp must be a positive integer, found {tp!r}")
    requests = list(requests)
    if not requests:
        raise CascadeError("an iteration needs at least one request")
    if cfg.family == "encoder" and any(r.query_tokens != r.context_tokens for r in requests):
        raise CascadeError(f"model {cfg.name!r} is an encoder: it runs whole sequences "
                           f"(phase prefill, no KV cache), not decode or mixed iterations")
    n_layers = cfg.layers if layers is None else layers
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1 \
            or n_layers % cfg.moe_every:
        raise CascadeError(f"layers must be a positive multiple of {cfg.moe_every}, found "
                           f"{n_layers!r}")
    b = _Builder(DTYPES[dtype])
    ctx = _Context(cfg, requests, tp, attention, b, expert_tokens)
    if scope == "attention":
        ctx.attention_only()
    else:
        if scope == "model":
            ctx.embeddings()
        first = len(b.names)
        x = x_in = ctx.x
        for sub in range(cfg.moe_every):
            prefix = f"L{sub}_" if cfg.moe_every > 1 else ""
            moe = bool(cfg.experts) and sub == cfg.moe_every - 1
            x = ctx.layer(x, prefix, moe)
        body = (b.names[first], b.names[-1])
        if scope == "model":
            ctx.head(x)
    phase = _phase_label(requests)
    label = name or f"{cfg.name}-{phase}-{dtype}" + (f"-tp{tp}" if tp > 1 else "")
    repeats = () if scope == "attention" else \
        (Repeat("layers", body[0], body[1], n_layers // cfg.moe_every, ((x, x_in),)),)
    description = (f"{cfg.name} ({cfg.source}); {len(requests)} requests "
                   f"{_describe_groups(ctx.groups)}; tp={tp}; dtype={dtype}; "
                   f"attention={attention}; scope={scope}")
    return Cascade.from_text(b.lines, b.ranks, name=label, default_bits=b.bits,
                             tensors=b.tensors, tags=b.tags, repeats=repeats,
                             description=description)


def model_graph(model, phase: str | None = None, batch: int = 1, seq: int = 1024, kv=None, *,
                past: int = 0, prefills: int = 1, tp: int = 1, dtype: str = "fp16",
                attention: str = "3pass", layers: int | None = None, expert_tokens=None,
                scope: str = "model", name: str | None = None) -> Cascade:
    """Return the cascade of one iteration of ``model`` in a phase: the one-call form of
    :func:`phase_requests` + :func:`model_cascade` that the CLI, golden cases and sweeps use.

    ``phase`` defaults to ``decode`` for decoders and ``prefill`` for encoders; ``kv`` is the
    decode context length (an int or one per request; default ``seq``).
    """
    cfg = model if isinstance(model, ModelConfig) else load_model(model)
    phase = phase or ("prefill" if cfg.family == "encoder" else "decode")
    if kv is not None and phase == "prefill":
        raise CascadeError("kv (--kv) sets decode context lengths; for cached tokens "
                           "before a prompt use past (--past)")
    requests = phase_requests(phase, batch, seq, kv, prefills=prefills, past=past)
    return model_cascade(cfg, requests, tp=tp, dtype=dtype, attention=attention,
                         layers=layers, expert_tokens=expert_tokens, scope=scope, name=name)


def _phase_label(requests) -> str:
    dec = sum(1 for r in requests if r.query_tokens == 1)
    if dec == len(requests):
        return "decode"
    return "prefill" if dec == 0 else "mixed"


def _describe_groups(groups) -> str:
    return ", ".join(f"{n}x(q={q}, kv={m})" for (q, m), n in groups)


class _Context:
    """Writes the layers of one model graph into a :class:`_Builder`."""

    def __init__(self, cfg: ModelConfig, requests, tp, attention, b: _Builder,
                 expert_tokens) -> None:
        self.cfg, self.tp, self.kind, self.b = cfg, tp, attention, b
        counts = Counter((r.query_tokens, r.context_tokens) for r in requests)
        # decodes first (they are the rows the LM head reads directly), then by first use
        order = list(dict.fromkeys((r.query_tokens, r.context_tokens) for r in requests))
        order.sort(key=lambda qm: qm[0] != 1)
        self.groups = [(qm, counts[qm]) for qm in order]
        self.tokens = sum(q * n for (q, _), n in self.groups)
        self.single = len(self.groups) == 1
        if attention in ("2pass", "1pass") and not self.single:
            raise CascadeError(f"attention {attention!r} needs one attention group (every "
                               f"request with the same query and context lengths); this "
                               f"batch has {len(self.groups)}: {_describe_groups(self.groups)}")
        name = cfg.name
        self.heads = _shard(cfg.heads, tp, "heads", name)
        self.kv_heads = cfg.kv_heads // tp if cfg.kv_heads >= tp else 1
        if cfg.kv_heads >= tp and cfg.kv_heads % tp:
            raise CascadeError(f"model {name!r}: kv_heads ({cfg.kv_heads}) is not divisible "
                               f"by --tp {tp}")
        self.group = self.heads // self.kv_heads
        self.ffn = _shard(cfg.ffn, tp, "ffn", name)
        self.vocab = -(-cfg.vocab // tp)
        b.rank("d", cfg.hidden)
        b.rank("g", self.kv_heads)
        b.rank("r", self.group)
        b.rank("e", cfg.head_dim)
        b.rank("f", cfg.head_dim)
        if self.single:
            (q, m), n = self.groups[0]
            b.rank("b", n)
            b.rank("p", q)
            b.rank("m", m)
            self.tok = "b,p"
        else:
            b.rank("s", self.tokens)
            self.tok = "s"
        self.expert_tokens = self._expert_tokens(expert_tokens)
        self.x = b.tensor("X", (self.tok, "d"))

    # ------------------------------------------------------------------ helpers
    def _expert_tokens(self, given):
        cfg = self.cfg
        if not cfg.experts:
            if given is not None:
                raise CascadeError(f"model {cfg.name!r} has no experts; expert_tokens given")
            return None
        if given is None:
            return expert_token_counts(self.tokens, cfg.experts, cfg.top_k)
        counts = list(given)
        if len(counts) != cfg.experts or any(isinstance(c, bool) or not isinstance(c, int)
                                             or c < 0 for c in counts):
            raise CascadeError(f"expert_tokens: expected {cfg.experts} non-negative integers, "
                               f"found {given!r}")
        if sum(counts) != self.tokens * cfg.top_k:
            raise CascadeError(f"expert_tokens: counts sum to {sum(counts)} but {self.tokens} "
                               f"tokens x top-{cfg.top_k} = {self.tokens * cfg.top_k} "
                               f"assignments")
        return counts

    def gemm(self, out, x, w, x_ranks, w_ranks, out_ranks, role, bias=None, **tags):
        """``out = x @ w`` (+ bias); returns the name of the result tensor."""
        b = self.b
        b.tensor(w, w_ranks)
        b.tensor(out, out_ranks)
        b.add(f"{out}[{','.join(out_ranks)}] = {x}[{','.join(x_ranks)}] * "
              f"{w}[{','.join(w_ranks)}]", role, **tags)
        if bias and self.cfg.bias:
            bias_ranks = [r for r in out_ranks if r in w_ranks]
            b.tensor(bias, bias_ranks)
            ob = b.tensor(out + "B", out_ranks)
            o = ",".join(out_ranks)
            b.add(f"{ob}[{o}] = {out}[{o}] + {bias}[{','.join(bias_ranks)}]", "bias")
            return ob
        return out

    def norm(self, name, x, rows=None):
        """RMSNorm or LayerNorm of ``x`` over ``d``; returns the normalised tensor."""
        b, cfg, tok = self.b, self.cfg, rows or self.tok
        inv_d = repr(1.0 / cfg.hidden)
        out = b.tensor(name, (tok, "d"))
        b.tensor(name + "_G", ("d",))
        if cfg.norm == "rmsnorm":
            ss = b.tensor(name + "_SS", (tok,))
            b.add(f"{ss}[{tok}] = sum({x}[{tok},d] * {x}[{tok},d])", "norm")
            b.add(f"{out}[{tok},d] = {x}[{tok},d] * rsqrt({ss}[{tok}] * {inv_d} + {_EPS}) * "
                  f"{name}_G[d]", "norm")
            return out
        mu, var = b.tensor(name + "_MU", (tok,)), b.tensor(name + "_VAR", (tok,))
        b.add(f"{mu}[{tok}] = sum({x}[{tok},d] * {inv_d})", "norm")
        b.add(f"{var}[{tok}] = sum(({x}[{tok},d] - {mu}[{tok}]) * ({x}[{tok},d] - {mu}[{tok}])"
              f" * {inv_d})", "norm")
        shift = ""
        if cfg.bias:
            b.tensor(name + "_B", ("d",))
            shift = f" + {name}_B[d]"
        b.add(f"{out}[{tok},d] = ({x}[{tok},d] - {mu}[{tok}]) * rsqrt({var}[{tok}] + {_EPS}) "
              f"* {name}_G[d]{shift}", "norm")
        return out

    def residual(self, out, a, c):
        t = self.tok
        self.b.tensor(out, (t, "d"))
        self.b.add(f"{out}[{t},d] = {a}[{t},d] + {c}[{t},d]", "residual")
        return out

    def allreduce(self, out, partial):
        t = self.tok
        if self.tp == 1:
            return partial
        self.b.tensor(out, (t, "d"))
        self.b.add(f"{out}[{t},d] = {partial}[{t},d]", "allreduce", degree=self.tp)
        return out

    def row_parallel_output(self, out, partial, bias, biased):
        """The end of a row-parallel linear layer: all-reduce the partial sums (TP > 1), then
        add the bias once (models with biases). Returns the result tensor."""
        o = self.allreduce(out, partial)
        if not self.cfg.bias:
            return o
        t = self.tok
        self.b.tensor(bias, ("d",))
        self.b.tensor(biased, tuple(t.split(",")) + ("d",))
        self.b.add(f"{biased}[{t},d] = {o}[{t},d] + {bias}[d]", "bias")
        return biased

    def rope(self, out, x, ranks, rows):
        """Rotary embedding (rotate-half form) over the head dim ``e`` = (rh, rd); ``rows``
        are the token rank variables (the tables are per token)."""
        b, tok = self.b, self.tok
        b.rank("rh", 2)
        b.rank("rd", self.cfg.head_dim // 2)
        if self.cfg.head_dim % 2:
            raise CascadeError(f"model {self.cfg.name!r}: rotary embedding needs an even "
                               f"head_dim, found {self.cfg.head_dim}")
        b.tensor("RCOS", (tok, "rd"))
        b.tensor("RSIN", (tok, "rh", "rd"))
        b.tensor(out, ranks)
        lead = ",".join(r for r in ranks if r != "e")
        at = ",".join(rows)
        b.add(f"{out}[{lead},rh*RD+rd] = {x}[{lead},rh*RD+rd] * RCOS[{at},rd] + "
              f"{x}[{lead},RD-rh*RD+rd] * RSIN[{at},rh,rd]", "rope")
        return out

    # ------------------------------------------------------------------ sections
    def embeddings(self):
        """Token (+ position, token-type) embedding rows gathered for the iteration's tokens,
        and BERT/XLM's embedding norm."""
        b, cfg, t = self.b, self.cfg, self.tok
        b.tensor("TOKEMB", (t, "d"))
        terms = [f"TOKEMB[{t},d]"]
        if cfg.max_positions:
            b.tensor("POSEMB", (t, "d"))
            terms.append(f"POSEMB[{t},d]")
        if cfg.type_vocab:
            b.tensor("TYPEMB", (t, "d"))
            terms.append(f"TYPEMB[{t},d]")
        x = "X0" if cfg.embedding_norm else "X"
        b.tensor(x, (t, "d"))
        b.add(f"{x}[{t},d] = {' + '.join(terms)}", "embedding")
        if cfg.embedding_norm:
            self.x = self.norm("X", x)

    def layer(self, x, prefix, moe):
        pre = self.cfg.norm_position == "pre"
        h = self.norm(prefix + "N1", x) if pre else x
        a = self.attention_block(h, prefix)
        x2 = self.residual(prefix + "X2", x, a)
        if not pre:
            x2 = self.norm(prefix + "N1", x2)
        h2 = self.norm(prefix + "N2", x2) if pre else x2
        f = self.moe_block(h2, prefix) if moe else self.ffn_block(h2, prefix)
        x3 = self.residual(prefix + "X3", x2, f)
        if not pre:
            x3 = self.norm(prefix + "N2", x3)
        return x3

    def attention_block(self, h, prefix):
        b, cfg, t = self.b, self.cfg, self.tok
        tr = tuple(t.split(","))
        P = prefix
        # without a cache (one group, context = query tokens) the keys are this iteration's
        # tokens: K and V are computed over the context rank m (size P), so that attention
        # and pass counting see them along m
        kt = ("b", "m") if self.single and self.groups[0][0][0] == self.groups[0][0][1] \
            else tr
        q = self.gemm(P + "Q", h, P + "WQ", tr + ("d",), ("d", "g", "r", "e"),
                      tr + ("g", "r", "e"), "qkv", bias=P + "BQ")
        k = self.gemm(P + "K", h, P + "WK", kt + ("d",), ("d", "g", "e"), kt + ("g", "e"),
                      "qkv", bias=P + "BK")
        v = self.gemm(P + "V", h, P + "WV", kt + ("d",), ("d", "g", "f"), kt + ("g", "f"),
                      "qkv", bias=P + "BV")
        if cfg.positional == "rope":
            q = self.rope(P + "QR", q, tr + ("g", "r", "e"), tr)
            k = self.rope(P + "KR", k, kt + ("g", "e"), kt)
        ao = b.tensor(P + "AO", tr + ("g", "r", "f"))
        if self.single:
            (qn, m), _ = self.groups[0]
            if m == qn:          # no cache: attend over this iteration's keys
                kk, vv = k, v
            else:                # cached context (decode, chunked prefill); new K/V appended
                kk, vv = b.tensor(P + "KC", ("b", "m", "g", "e")), \
                    b.tensor(P + "VC", ("b", "m", "g", "f"))
            self._attend(P, q, kk, vv, ao, ("b", "p"), ("b", "m"), suffix="")
        else:
            off = 0
            for k_i, ((qn, m), n) in enumerate(self.groups):
                bi, pi, ci = (self.b.rank(f"{c}{k_i}", s) for c, s in
                              (("b", n), ("p", qn), ("c", m)))
                row = f"{bi}*{pi.upper()}+{pi}+{off}" if qn > 1 else f"{bi}+{off}"
                gq = b.tensor(f"{P}Q{k_i}", (bi, pi, "g", "r", "e"))
                b.add(f"{gq}[{bi},{pi},g,r,e] = {q}[{row},g,r,e]", "layout")
                if m == qn:
                    crow = f"{bi}*{pi.upper()}+{ci}+{off}" if qn > 1 else f"{bi}+{off}"
                    kk = b.tensor(f"{P}K{k_i}", (bi, ci, "g", "e"))
                    vv = b.tensor(f"{P}V{k_i}", (bi, ci, "g", "f"))
                    b.add(f"{kk}[{bi},{ci},g,e] = {k}[{crow},g,e]", "layout")
                    b.add(f"{vv}[{bi},{ci},g,f] = {v}[{crow},g,f]", "layout")
                else:
                    kk = b.tensor(f"{P}KC{k_i}", (bi, ci, "g", "e"))
                    vv = b.tensor(f"{P}VC{k_i}", (bi, ci, "g", "f"))
                go = b.tensor(f"{P}AO{k_i}", (bi, pi, "g", "r", "f"))
                self._attend(P, gq, kk, vv, go, (bi, pi), (bi, ci), suffix=str(k_i))
                b.tensors[ao] = Tensor(ao, ("s", "g", "r", "f"), b.bits)
                b.add(f"{ao}[{row},g,r,f] = {go}[{bi},{pi},g,r,f]", "layout")
                off += n * qn
        op = self.gemm(P + "OP", ao, P + "WO", tr + ("g", "r", "f"), ("g", "r", "f", "d"),
                       tr + ("d",), "out_proj", bias=None)
        return self.row_parallel_output(P + "O", op, P + "BO", P + "OB")

    def _attend(self, P, q, k, v, out, q_lead, kv_lead, suffix):
        """Add one attention group's cascade (the configured kind)."""
        b = self.b
        qb, qp = q_lead
        kb, km = kv_lead
        subst = {"p": qp, "m": km}
        if self.kind in ("2pass", "1pass"):
            m = b.ranks[km]
            m0 = min(m, 256)
            if m % m0:
                raise CascadeError(f"attention {self.kind!r}: context {m} is not a multiple of "
                                   f"M0 = {m0}")
            b.rank("m1", m // m0)
            b.rank("m0", m0)
        part = attention_einsums(
            self.kind, q=q, k=k, v=v, out=out, prefix=f"{P}A{suffix}_",
            q_ranks=(qb, "p", "g", "r", "e"), k_ranks=(kb, "m", "g", "e"),
            v_ranks=(kb, "m", "g", "f"), out_ranks=(qb, "p", "g", "r", "f"), bits=b.bits)
        for name, tensor in part.tensors.items():
            if name in (q, k, v, out):
                continue
            ranks = tuple(subst.get(r, r) for r in tensor.ranks)
            b.tensors[name] = Tensor(name, ranks, tensor.bits, tensor.extents)
        for line in part.einsums:
            line = _rename_ranks(line, subst)
            einsum = parse_einsum(line)
            qkv = {k, v} & set(einsum.input_tensors)
            b.add(line, "attention" if einsum.is_mac() and qkv else "softmax")

    def ffn_block(self, h, prefix):
        b, cfg, t = self.b, self.cfg, self.tok
        tr = tuple(t.split(","))
        P = prefix
        b.rank("i", self.ffn)
        if cfg.ffn_kind == "swiglu":
            g = self.gemm(P + "FG", h, P + "WG", tr + ("d",), ("d", "i"), tr + ("i",), "ffn")
            u = self.gemm(P + "FU", h, P + "WU", tr + ("d",), ("d", "i"), tr + ("i",), "ffn")
            a = b.tensor(P + "FA", tr + ("i",))
            b.add(f"{a}[{t},i] = silu({g}[{t},i]) * {u}[{t},i]", "activation")
        else:
            u = self.gemm(P + "FU", h, P + "WU", tr + ("d",), ("d", "i"), tr + ("i",), "ffn",
                          bias=P + "BU")
            a = b.tensor(P + "FA", tr + ("i",))
            b.add(f"{a}[{t},i] = {cfg.ffn_kind}({u}[{t},i])", "activation")
        dp = self.gemm(P + "FD", a, P + "WD", tr + ("i",), ("i", "d"), tr + ("d",), "ffn")
        return self.row_parallel_output(P + "FO", dp, P + "BD", P + "FB")

    def moe_block(self, h, prefix):
        b, cfg, t = self.b, self.cfg, self.tok
        tr = tuple(t.split(","))
        P = prefix
        b.rank("x", cfg.experts)
        b.rank("j", cfg.top_k)
        b.rank("i", self.ffn)
        b.rank("a", self.tokens * cfg.top_k)
        rl = self.gemm(P + "RL", h, P + "WR", tr + ("d",), ("d", "x"), tr + ("x",), "router")
        gw = b.tensor(P + "GW", tr + ("j",))
        b.add(f"{gw}[{t},j] = max({rl}[{t},x])", "topk")
        # token rows of the iteration, flattened, each sent to its top-k slots
        row = "b*P+p" if self.single else "s"
        xd = b.tensor(P + "XD", ("a", "d"))
        b.add(f"{xd}[({row})*J+j,d] = {h}[{t},d]", "dispatch")
        ey = b.tensor(P + "EY", ("a", "d"))
        off = 0
        for xi, count in enumerate(self.expert_tokens):
            if count == 0:
                continue
            te = b.rank(f"t{xi}", count)
            fa = b.tensor(f"{P}EA{xi}", (te, "i"))
            if cfg.ffn_kind == "swiglu":
                g = self._expert_gemm(f"{P}EG{xi}", f"{xd}[{te}+{off},d]", f"{P}WG{xi}", te, xi)
                u = self._expert_gemm(f"{P}EU{xi}", f"{xd}[{te}+{off},d]", f"{P}WU{xi}", te, xi)
                b.add(f"{fa}[{te},i] = silu({g}[{te},i]) * {u}[{te},i]", "activation",
                      expert=xi)
            else:
                u = self._expert_gemm(f"{P}EU{xi}", f"{xd}[{te}+{off},d]", f"{P}WU{xi}", te, xi)
                b.add(f"{fa}[{te},i] = {cfg.ffn_kind}({u}[{te},i])", "activation", expert=xi)
            b.tensor(f"{P}WD{xi}", ("i", "d"))
            b.add(f"{ey}[{te}+{off},d] = {fa}[{te},i] * {P}WD{xi}[i,d]", "expert", expert=xi)
            off += count
        mo = b.tensor(P + "MO", tr + ("d",))
        b.add(f"{mo}[{t},d] = {ey}[({row})*J+j,d] * {gw}[{t},j]", "combine")
        return self.allreduce(P + "MR", mo)

    def _expert_gemm(self, out, x_access, w, te, expert):
        b = self.b
        b.tensor(w, ("d", "i"))
        b.tensor(out, (te, "i"))
        b.add(f"{out}[{te},i] = {x_access} * {w}[d,i]", "expert", expert=expert)
        return out

    def head(self, x):
        """Final norm and the LM head (decoders: one row per request, the last query token)
        or BERT's pooler (first token)."""
        b, cfg = self.b, self.cfg
        if cfg.final_norm:
            x = self.norm("NF", x)
        if cfg.pooler:
            if not self.single:
                raise CascadeError("the pooler needs one attention group")
            b.tensor("WP", ("d", "dp"))
            b.rank("dp", cfg.hidden)
            b.tensor("PL", ("b", "dp"))
            b.add(f"PL[b,dp] = {x}[b,0,d] * WP[d,dp]", "pooler")
            b.tensor("PO", ("b", "dp"))
            b.tensor("BP", ("dp",))
            b.add("PO[b,dp] = tanh(PL[b,dp] + BP[dp])", "pooler")
        if not cfg.lm_head:
            return
        b.rank("v", self.vocab)
        if self.single:
            (qn, _), _ = self.groups[0]
            b.tensor("WLM", ("d", "v"))
            b.tensor("LOGITS", ("b", "v"))
            b.add(f"LOGITS[b,v] = {x}[b,{qn - 1},d] * WLM[d,v]", "lm_head")
            return
        b.rank("n", len(self._last_rows()))
        b.tensor("XL", ("n", "d"))
        for n_off, (row, count) in self._last_row_runs():
            rank = b.rank(f"n{n_off}", count)
            b.add(f"XL[{rank}+{n_off},d] = {x}[{row.format(r=rank)},d]", "layout")
        self.gemm("LOGITS", "XL", "WLM", ("n", "d"), ("d", "v"), ("n", "v"), "lm_head")

    def _last_rows(self):
        rows, off = [], 0
        for (qn, _), n in self.groups:
            rows.extend(off + i * qn + qn - 1 for i in range(n))
            off += n * qn
        return rows

    def _last_row_runs(self):
        """Per group: (first output row, (row template, requests)) of the last-token rows."""
        out, n_off, off = [], 0, 0
        for (qn, _), n in self.groups:
            out.append((n_off, (f"{{r}}*{qn}+{off + qn - 1}" if qn > 1 else
                                f"{{r}}+{off}", n)))
            n_off += n
            off += n * qn
        return out

    def attention_only(self):
        """One layer's attention (projections excluded) for the spatial-array evaluations."""
        b = self.b
        tr = tuple(self.tok.split(","))
        if not self.single:
            raise CascadeError("scope 'attention' needs one attention group")
        q = b.tensor("Q", tr + ("g", "r", "e"))
        k = b.tensor("K", ("b", "m", "g", "e"))
        v = b.tensor("V", ("b", "m", "g", "f"))
        out = b.tensor("AO", tr + ("g", "r", "f"))
        self._attend("", q, k, v, out, ("b", "p"), ("b", "m"), suffix="")


def _rename_ranks(line: str, subst: dict[str, str]) -> str:
    """Rename whole-word rank variables inside the brackets of an einsum line."""
    if all(k == v for k, v in subst.items()):
        return line
    import re

    def fix(match):
        inner = re.sub(r"\b([a-z][a-z0-9_]*)\b",
                       lambda w: subst.get(w.group(1), w.group(1)), match.group(1))
        return "[" + inner + "]"
    return re.sub(r"\[([^\]]*)\]", fix, line)


# ---------------------------------------------------------------------------- accounting
def flops_by_role(cascade: Cascade) -> dict[str, int]:
    """Return FLOPs of the whole workload by ``role`` tag: 2 per multiply-accumulate, 1 per
    other operation, times each einsum's multiplicity (repeated layers)."""
    out: Counter = Counter()
    for e in cascade.einsums:
        ops = cascade.ops(e.name)
        f = 2 * ops.get("mac", 0) + sum(v for k, v in ops.items() if k != "mac")
        out[cascade.tag(e.name, "role", "other")] += f * cascade.multiplicity(e.name)
    return dict(out)


def flops(cascade: Cascade) -> int:
    """Return the workload's total FLOPs (see :func:`flops_by_role`)."""
    return sum(flops_by_role(cascade).values())


#: Roles whose GEMMs multiply by model weights.
WEIGHT_ROLES = ("qkv", "out_proj", "ffn", "router", "expert", "lm_head", "pooler")


def weight_elements(cascade: Cascade) -> int:
    """Return the elements of the weight matrices the workload multiplies by (each weight
    tensor read by a GEMM of a weight role, times its einsum's multiplicity)."""
    total = 0
    seen: set[str] = set()
    inputs = set(cascade.inputs())
    for e in cascade.einsums:
        if cascade.tag(e.name, "role") not in WEIGHT_ROLES:
            continue
        con = cascade.contraction(e.name)
        if con is None:
            continue
        for t in (con.a, con.b):
            if t in inputs and t not in seen:
                seen.add(t)
                total += math.prod(cascade.shape(t)) * cascade.multiplicity(e.name)
    return total
