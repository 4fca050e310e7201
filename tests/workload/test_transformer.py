"""Model graphs (dataflow.transformer): FLOPs and weights against the closed-form parameter
counts, tensor parallelism, op/B of decode attention, MoE routing, phases, and the numerics of
one layer against a plain NumPy transformer layer."""
import math

import numpy as np
import pytest

from dataflow.errors import CascadeError
from dataflow.models import ModelConfig, load_model
from dataflow.transformer import (
    WEIGHT_ROLES,
    Request,
    expert_token_counts,
    flops,
    flops_by_role,
    model_cascade,
    phase_requests,
    weight_elements,
)


def decode(batch, kv):
    """Decode requests: ``kv`` an int (every request) or one length per request."""
    return phase_requests("decode", batch, kv if isinstance(kv, int) else max(kv), kv=kv)


def weight_flops(c):
    return sum(v for role, v in flops_by_role(c).items() if role in WEIGHT_ROLES)


def body(c):
    (rep,) = c.repeats
    return c.repeat_body(rep)


def einsums_with_role(c, role, names=None):
    names = names if names is not None else [e.name for e in c.einsums]
    return [n for n in names if c.tag(n, "role") == role]


def score_einsum(c):
    """The attention (QK) einsum of a single-group layer: role attention, reads the K tensor
    (the cache ``KC`` when decoding, the rotated projection ``KR`` otherwise)."""
    found = [e.name for e in c.einsums if c.tag(e.name, "role") == "attention"
             and {"KC", "KR", "KB", "K"} & set(e.input_tensors)]
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------------------- decode FLOPs
DECODE_BATCHES = [(1, 128), (8, 1024), (32, 4096), (3, [100, 2000, 4096]), (4, [17, 17, 64, 9])]


@pytest.mark.parametrize("name", ["llama2-7b", "llama2-70b", "gpt3-7b", "mixtral-8x7b"])
@pytest.mark.parametrize("batch,kv", DECODE_BATCHES)
def test_decode_weight_and_attention_flops_exact(name, batch, kv):
    m = load_model(name)
    reqs = decode(batch, kv)
    c = model_cascade(m, reqs)
    # every token multiplies by every weight it uses once (2 FLOPs per MAC): attention and
    # FFN matrices, the top-k experts and router, and the LM head (one row per request)
    assert weight_flops(c) == batch * 2 * m.matmul_params(active=True)
    # QK and AV: 2 x 2 x heads x head_dim FLOPs per cached token per layer
    expected = sum(4 * m.layers * r.context_tokens * m.heads * m.head_dim for r in reqs)
    assert flops_by_role(c)["attention"] == expected


@pytest.mark.parametrize("name", ["llama2-7b", "llama2-70b", "mixtral-8x7b"])
@pytest.mark.parametrize("batch,kv", [(1, 128), (16, 2048), (3, [100, 2000, 4096])])
def test_decode_total_flops_close_to_2n_plus_attention(name, batch, kv):
    """Kaplan-style estimate: 2 x non-embedding params per token plus attention; the rest
    (norms, rotary, softmax, residuals, routing) is below 1% for untied models."""
    m = load_model(name)
    reqs = decode(batch, kv)
    c = model_cascade(m, reqs)
    att = sum(4 * m.layers * r.context_tokens * m.heads * m.head_dim for r in reqs)
    estimate = batch * 2 * m.non_embedding_params(active=True) + att
    total = flops(c)
    assert total == sum(flops_by_role(c).values())
    assert total > estimate                       # the extra element-wise work is positive
    assert total == pytest.approx(estimate, rel=0.01)


def test_flops_scale_with_layers():
    m = load_model("llama2-7b")
    reqs = decode(4, 256)
    one = flops_by_role(model_cascade(m, reqs, layers=1, scope="layers"))
    four = flops_by_role(model_cascade(m, reqs, layers=4, scope="layers"))
    assert four == {k: 4 * v for k, v in one.items()}
    c = model_cascade(m, reqs, layers=4)
    assert c.repeats[0].count == 4
    assert all(c.multiplicity(e) == 4 for e in body(c))
    assert c.multiplicity("LOGITS") == 1


# ---------------------------------------------------------------------------- weights
DENSE_PHASES = [decode(16, 512), phase_requests("prefill", 2, 128),
                phase_requests("mixed", 3, 64, kv=[70, 90, 300])]


@pytest.mark.parametrize("name", ["llama2-7b", "llama3-8b", "gpt3-7b", "opt-66b", "bert-base"])
@pytest.mark.parametrize("reqs", DENSE_PHASES, ids=["decode", "prefill", "mixed"])
def test_weight_elements_equal_matmul_params(name, reqs):
    m = load_model(name)
    if m.family == "encoder":
        reqs = phase_requests("prefill", 2, 128)
    assert weight_elements(model_cascade(m, reqs)) == m.matmul_params()


@pytest.mark.parametrize("name,tokens", [("mixtral-8x7b", 4), ("grok-1", 4), ("glam", 32)])
def test_weight_elements_of_moe_when_every_expert_is_used(name, tokens):
    m = load_model(name)
    assert tokens * m.top_k >= m.experts
    c = model_cascade(m, decode(tokens, 256))
    assert weight_elements(c) == m.matmul_params()


@pytest.mark.parametrize("name", ["mixtral-8x7b", "glam"])
def test_weight_elements_of_moe_with_one_token_are_the_active_ones(name):
    m = load_model(name)
    c = model_cascade(m, decode(1, 256))
    assert weight_elements(c) == m.matmul_params(active=True) < m.matmul_params()


@pytest.mark.parametrize("name,tp", [("llama2-70b", 2), ("llama2-70b", 4), ("llama2-70b", 8),
                                     ("llama2-7b", 2), ("llama2-7b", 8), ("llama3-8b", 8)])
@pytest.mark.parametrize("reqs", DENSE_PHASES[:2], ids=["decode", "prefill"])
def test_tensor_parallel_shard(name, tp, reqs):
    m = load_model(name)
    c = model_cascade(m, reqs, tp=tp)
    # heads, KV heads, FFN and vocabulary divide exactly: one device holds 1/tp of the weights
    assert weight_elements(c) * tp == m.matmul_params()
    assert c.ranks["g"] == m.kv_heads // tp and c.ranks["r"] == m.group_size
    assert c.ranks["i"] == m.ffn // tp and c.ranks["v"] == m.vocab // tp
    # Megatron: one all-reduce after the attention output projection, one after the FFN
    ar = einsums_with_role(c, "allreduce", body(c))
    assert len(ar) == 2
    assert len(einsums_with_role(c, "allreduce")) == 2       # none outside the layers
    assert all(c.tag(e, "degree") == tp for e in ar)
    assert c.name.endswith(f"-tp{tp}")


def test_no_allreduce_without_tensor_parallelism():
    c = model_cascade("llama2-70b", decode(8, 512))
    assert einsums_with_role(c, "allreduce") == []
    assert "-tp" not in c.name


def test_moe_tensor_parallel_replicates_the_router():
    m = load_model("mixtral-8x7b")
    c = model_cascade(m, decode(8, 512), tp=4)
    router = m.param_breakdown()["router"]
    assert weight_elements(c) * 4 == m.matmul_params() - router + 4 * router
    assert len(einsums_with_role(c, "allreduce", body(c))) == 2


def test_kv_heads_replicated_when_fewer_than_tp():
    m = load_model("llama2-70b")                 # 8 KV heads on 16 devices: one each
    c = model_cascade(m, decode(2, 256), tp=16)
    assert c.ranks["g"] == 1 and c.ranks["r"] == 4
    assert c.shape("WK") == (8192, 1, 128)
    assert weight_elements(c) * 16 == m.matmul_params() + 80 * 2 * 8192 * 128 * 8


def test_tp_not_dividing_raises():
    with pytest.raises(CascadeError, match="not divisible by --tp 3"):
        model_cascade("llama2-7b", decode(2, 64), tp=3)
    with pytest.raises(CascadeError, match="tp must be a positive integer"):
        model_cascade("llama2-7b", decode(2, 64), tp=0)


# ---------------------------------------------------------------------------- op/B
@pytest.mark.parametrize("name,group", [("llama2-7b", 1), ("gpt3-7b", 1), ("mixtral-8x7b", 4),
                                        ("llama3-70b", 8), ("grok-1", 6)])
def test_decode_attention_op_per_byte_is_the_gqa_group(name, group):
    """Each K-cache element (2 bytes in fp16) is multiplied by ``group`` query heads (2 FLOPs
    each): op/B ~= group (duplex.md "Execution": GQA decode attention has Op/B 4-8)."""
    m = load_model(name)
    assert m.group_size == group
    c16 = model_cascade(m, decode(8, 1024), layers=1, scope="layers")
    qk = score_einsum(c16)
    assert "KC" in c16.einsum(qk).input_tensors
    opb = c16.flop_per_byte(qk)
    if group == 1:
        assert 0.9 <= opb <= 1.1
    else:
        assert opb == pytest.approx(group, rel=0.10)
    assert opb < group                             # Q and the scores add a few bytes
    c8 = model_cascade(m, decode(8, 1024), layers=1, scope="layers", dtype="fp8")
    assert c8.flop_per_byte(qk) == pytest.approx(2 * opb, rel=1e-12)
    assert c8.flops(qk) == c16.flops(qk)


def test_prefill_attention_op_per_byte_is_large():
    c = model_cascade("llama2-7b", phase_requests("prefill", 1, 1024), layers=1,
                      scope="layers")
    qk = score_einsum(c)
    assert c.flop_per_byte(qk) > 50
    dec = model_cascade("llama2-7b", decode(1, 1024), layers=1, scope="layers")
    assert c.flop_per_byte(qk) > 50 * dec.flop_per_byte(score_einsum(dec))


# ---------------------------------------------------------------------------- MoE
@pytest.mark.parametrize("tokens,experts,top_k", [(1, 8, 2), (5, 8, 2), (37, 64, 2),
                                                  (128, 8, 2), (3, 7, 3), (1000, 64, 1)])
def test_uniform_expert_counts(tokens, experts, top_k):
    counts = expert_token_counts(tokens, experts, top_k)
    assert len(counts) == experts
    assert sum(counts) == tokens * top_k
    assert max(counts) - min(counts) <= 1
    assert counts == sorted(counts, reverse=True)        # the first ones get the extra


def test_caller_given_expert_counts_set_the_gemm_rows():
    m = load_model("mixtral-8x7b")
    counts = [3, 0, 2, 0, 1, 1, 0, 1]                    # 4 tokens x top-2 = 8
    c = model_cascade(m, decode(4, 64), expert_tokens=counts, layers=2)
    experts = einsums_with_role(c, "expert")
    by_expert = {}
    for e in experts:
        by_expert.setdefault(c.tag(e, "expert"), []).append(e)
    assert sorted(by_expert) == [x for x, n in enumerate(counts) if n]
    for x, names in by_expert.items():
        assert len(names) == 3                           # gate, up, down
        for e in names:
            con = c.contraction(e)
            assert con is not None and con.M == counts[x]
            assert c.multiplicity(e) == 2
        # the expert's activation is tagged with it too
        act = [e for e in einsums_with_role(c, "activation") if c.tag(e, "expert") == x]
        assert len(act) == 1
    # experts without tokens have neither einsums nor weights
    for x, n in enumerate(counts):
        if n == 0:
            assert f"WG{x}" not in c.tensors and f"t{x}" not in c.ranks
    # the expert GEMMs' FLOPs follow the counts
    expert_flops = flops_by_role(c)["expert"]
    assert expert_flops == 2 * 8 * 3 * 4096 * 14336 * 2


@pytest.mark.parametrize("counts,needle", [
    ([3, 0, 2, 0, 1, 1, 0, 2], "sum to 9"),
    ([4, 4], "expected 8 non-negative"),
    ([3, 0, 2, 0, 1, 1, 2, -1], "expected 8 non-negative"),
    ([3, 0, 2, 0, 1, 1, 0, 1.0], "expected 8 non-negative"),
])
def test_bad_expert_counts(counts, needle):
    with pytest.raises(CascadeError, match=needle):
        model_cascade("mixtral-8x7b", decode(4, 64), expert_tokens=counts)


def test_expert_counts_for_a_dense_model():
    with pytest.raises(CascadeError, match="has no experts"):
        model_cascade("llama2-7b", decode(4, 64), expert_tokens=[1, 2])


def test_glam_alternates_dense_and_moe_layers():
    m = load_model("glam")
    c = model_cascade(m, decode(32, 128))
    assert len(c.repeats) == 1 and c.repeats[0].count == 16
    names = body(c)
    assert len(einsums_with_role(c, "router", names)) == 1
    assert len(einsums_with_role(c, "topk", names)) == 1
    dense = einsums_with_role(c, "ffn", names)
    assert dense and all(e.startswith("L0_") for e in dense)       # GeLU: up and down
    assert len(dense) == 2
    assert all(e.startswith("L1_") for e in einsums_with_role(c, "expert", names))
    assert len(einsums_with_role(c, "attention", names)) == 4     # QK and AV, twice
    with pytest.raises(CascadeError, match="multiple of 2"):
        model_cascade(m, decode(2, 64), layers=3)


# ---------------------------------------------------------------------------- phases
def tokens_of(c):
    return math.prod(c.shape("X")) // c.shape("X")[-1]


def test_phase_requests():
    assert phase_requests("prefill", 2, 16) == [Request(16, 16)] * 2
    assert phase_requests("prefill", 1, 16, past=8) == [Request(16, 24)]
    assert phase_requests("decode", 3, 100) == [Request(1, 100)] * 3
    assert phase_requests("decode", 2, 100, kv=[5, 9]) == [Request(1, 5), Request(1, 9)]
    mixed = phase_requests("mixed", 2, 32, kv=7, prefills=2, past=4)
    assert mixed == [Request(1, 7)] * 2 + [Request(32, 36)] * 2
    with pytest.raises(CascadeError, match="one length per request"):
        phase_requests("decode", 2, 100, kv=[5])
    with pytest.raises(CascadeError, match="unknown phase 'chunk'"):
        phase_requests("chunk", 2, 16)
    with pytest.raises(CascadeError, match="batch must be a positive"):
        phase_requests("decode", 0, 16)
    with pytest.raises(CascadeError, match="must include"):
        Request(8, 4)


@pytest.mark.parametrize("reqs,tokens,label", [
    (phase_requests("prefill", 2, 16), 32, "prefill"),
    (phase_requests("decode", 5, 64), 5, "decode"),
    (phase_requests("mixed", 3, 16, kv=[20, 40, 60], prefills=2, past=8), 3 + 32, "mixed"),
])
def test_phase_token_counts(reqs, tokens, label):
    c = model_cascade("llama2-7b", reqs, layers=1)
    assert tokens_of(c) == tokens
    assert label in c.name
    # the LM head produces one row of logits per request (its last token)
    assert c.shape("LOGITS") == (len(reqs), 32000)
    assert c.contraction(einsums_with_role(c, "lm_head")[0]).M == len(reqs)


def test_mixed_groups_use_layout_copies():
    reqs = [Request(1, 10), Request(1, 20), Request(1, 10), Request(64, 80), Request(16, 16)]
    c = model_cascade("llama3-8b", reqs, layers=1)
    groups = [(1, 10), (1, 20), (64, 80), (16, 16)]
    for k, (q, m) in enumerate(groups):
        assert c.ranks[f"p{k}"] == q and c.ranks[f"c{k}"] == m
    assert c.ranks["b0"] == 2 and c.ranks["s"] == 3 + 64 + 16
    names = body(c)
    # per group: gather Q, scatter the output; the uncached group also gathers K and V
    assert len(einsums_with_role(c, "layout", names)) == 2 * len(groups) + 2
    assert len(einsums_with_role(c, "attention", names)) == 2 * len(groups)
    # cached groups read their own KV cache
    for k in range(3):
        assert f"KC{k}" in c.inputs() and f"VC{k}" in c.inputs()
    assert "KC3" not in c.tensors
    # exact FLOPs still hold: weights once per token (LM head per request), attention per group
    m = load_model("llama3-8b")
    fr = flops_by_role(c)
    per_layer = m.matmul_params() - m.vocab * m.hidden
    assert fr["qkv"] + fr["out_proj"] + fr["ffn"] == 2 * (3 + 64 + 16) * per_layer // m.layers
    assert fr["lm_head"] == 2 * len(reqs) * m.vocab * m.hidden
    assert fr["attention"] == sum(4 * q * ctx * m.heads * m.head_dim for q, ctx in
                                  [(1, 10), (1, 20), (1, 10), (64, 80), (16, 16)])


@pytest.mark.parametrize("kind,expected", [("3pass", 3), ("deferred", 2), ("2pass", 2),
                                           ("1pass", 1)])
def test_attention_kinds_passes_over_the_context(kind, expected):
    c = model_cascade("llama2-7b", decode(2, 1024), attention=kind, layers=1)
    qk = score_einsum(c)
    assert "KC" in c.einsum(qk).input_tensors
    assert c.passes(c.einsum(qk).output_tensor, "m") == expected
    if kind in ("2pass", "1pass"):
        assert c.ranks["m0"] == 256 and c.ranks["m1"] == 4
        # 1-pass carries its running state along m1; 2-pass has no recurrence
        assert bool(c.recurrences()) == (kind == "1pass")


def test_prefill_1pass_passes_over_the_context():
    c = model_cascade("llama2-7b", phase_requests("prefill", 1, 512), attention="1pass",
                      layers=1)
    qk = score_einsum(c)
    assert c.passes(c.einsum(qk).output_tensor, "m") == 1


def test_3pass_prefill_passes_over_the_context():
    c = model_cascade("llama2-7b", phase_requests("prefill", 1, 512), layers=1)
    assert c.passes(c.einsum(score_einsum(c)).output_tensor, "m") == 3


@pytest.mark.parametrize("kind", ["1pass", "2pass"])
def test_split_attention_needs_one_group(kind):
    with pytest.raises(CascadeError, match=r"needs one attention group.*q=1, kv=64.*q=1, "
                                           r"kv=128"):
        model_cascade("llama2-7b", decode(2, [64, 128]), attention=kind)


def test_split_attention_context_multiple_of_m0():
    with pytest.raises(CascadeError, match="not a multiple of M0 = 256"):
        model_cascade("llama2-7b", decode(2, 300), attention="1pass")


def test_encoder_rejects_decode():
    with pytest.raises(CascadeError, match="is an encoder"):
        model_cascade("bert-base", decode(2, 64))
    with pytest.raises(CascadeError, match="is an encoder"):
        model_cascade("bert-base", phase_requests("prefill", 1, 64, past=8))
    c = model_cascade("bert-base", phase_requests("prefill", 2, 128))
    assert einsums_with_role(c, "lm_head") == [] and einsums_with_role(c, "pooler")


@pytest.mark.parametrize("dtype,bits", [("fp32", 32), ("fp16", 16), ("bf16", 16),
                                        ("fp8", 8), ("int8", 8)])
def test_dtype_sets_every_tensor_width(dtype, bits):
    c = model_cascade("mixtral-8x7b", decode(4, 64), dtype=dtype, layers=1)
    assert {t.bits for t in c.tensors.values()} == {bits}
    assert c.tensor_bytes("KC") == 4 * 64 * 8 * 128 * bits // 8
    assert dtype in c.name


@pytest.mark.parametrize("kwargs,needle", [
    ({"dtype": "fp4"}, "unknown dtype 'fp4'"),
    ({"attention": "4pass"}, "unknown attention '4pass'"),
    ({"scope": "head"}, "unknown scope 'head'"),
    ({"layers": 0}, "layers must be a positive"),
])
def test_unknown_options(kwargs, needle):
    with pytest.raises(CascadeError, match=needle):
        model_cascade("llama2-7b", decode(2, 64), **kwargs)


def test_no_requests():
    with pytest.raises(CascadeError, match="at least one request"):
        model_cascade("llama2-7b", [])


def test_attention_scope_is_one_unrepeated_attention():
    c = model_cascade("llama2-7b", decode(2, 512), scope="attention")
    assert c.repeats == ()
    assert {c.tag(e.name, "role") for e in c.einsums} == {"attention", "softmax"}
    assert set(c.inputs()) == {"Q", "K", "V"}


# ---------------------------------------------------------------------------- numerics
# A tiny GQA model: 4 query heads in 2 KV groups of head_dim 4, SwiGLU FFN of 24.
TINY = ModelConfig("tiny", hidden=16, layers=1, heads=4, kv_heads=2, ffn=24, vocab=32)
D, H, G, E, FF = 16, 4, 2, 4, 24


def rope_tables(positions):
    inv = 10000.0 ** (-np.arange(E // 2) * 2 / E)
    ang = np.asarray(positions, dtype=float)[:, None] * inv[None, :]
    return np.cos(ang), np.sin(ang)


def rotate_half(x, cos, sin):
    """HF Llama's apply_rotary_pos_emb: x * cos + rotate_half(x) * sin, x [T, heads, E]."""
    x1, x2 = x[..., :E // 2], x[..., E // 2:]
    c, s = cos[:, None, :], sin[:, None, :]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def rmsnorm(x, g):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * g


def silu(z):
    return z / (1.0 + np.exp(-z))


def llama_layer(w, x, positions, cache=None):
    """One pre-norm Llama layer on the T tokens of one request (x [T, D]); ``cache`` is
    (K, V) of shape [M, G, E] (keys already rotated) or None to attend over the request's own
    tokens. Returns (output [T, D], rotated keys of the new tokens [T, G, E])."""
    cos, sin = rope_tables(positions)
    h = rmsnorm(x, w["g1"])
    q = rotate_half((h @ w["wq"]).reshape(-1, H, E), cos, sin)
    k = rotate_half((h @ w["wk"]).reshape(-1, G, E), cos, sin)
    v = (h @ w["wv"]).reshape(-1, G, E)
    kk, vv = (k, v) if cache is None else cache
    kk, vv = np.repeat(kk, H // G, axis=1), np.repeat(vv, H // G, axis=1)   # GQA
    s = np.einsum("the,mhe->htm", q, kk) / math.sqrt(E)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    a = np.einsum("htm,mhe->the", p, vv).reshape(-1, H * E)
    x2 = x + a @ w["wo"]
    h2 = rmsnorm(x2, w["g2"])
    return x2 + (silu(h2 @ w["wg"]) * (h2 @ w["wu"])) @ w["wd"], k


def tiny_weights(rng):
    s = 0.3
    return {"g1": 1 + 0.1 * rng.standard_normal(D), "g2": 1 + 0.1 * rng.standard_normal(D),
            "wq": s * rng.standard_normal((D, H * E)), "wk": s * rng.standard_normal((D, G * E)),
            "wv": s * rng.standard_normal((D, G * E)), "wo": s * rng.standard_normal((H * E, D)),
            "wg": s * rng.standard_normal((D, FF)), "wu": s * rng.standard_normal((D, FF)),
            "wd": s * rng.standard_normal((FF, D))}


def cascade_weights(w):
    # The cascade has no 1/sqrt(head_dim) score scale: it is folded into WQ here (rotary
    # embedding is linear, so scaling WQ scales the scores).
    return {"N1_G": w["g1"], "N2_G": w["g2"],
            "WQ": (w["wq"] / math.sqrt(E)).reshape(D, G, H // G, E),
            "WK": w["wk"].reshape(D, G, E), "WV": w["wv"].reshape(D, G, E),
            "WO": w["wo"].reshape(G, H // G, E, D), "WG": w["wg"], "WU": w["wu"],
            "WD": w["wd"]}


def rope_inputs(positions):
    """RCOS[.., rd] and RSIN[.., rh, rd] for the cascade's rotate-half einsum
    ``QR[rh*RD+rd] = Q[rh*RD+rd] * RCOS[rd] + Q[RD-rh*RD+rd] * RSIN[rh,rd]``: the first half
    takes -sin x the second half, the second half +sin x the first."""
    cos, sin = rope_tables(positions)
    return cos, np.stack([-sin, sin], axis=1)


def test_prefill_layer_matches_numpy(rng):
    T = 5
    w = tiny_weights(rng)
    c = model_cascade(TINY, [Request(T, T)], dtype="fp32", scope="layers")
    assert set(c.inputs()) == {"X", "N1_G", "WQ", "WK", "WV", "RCOS", "RSIN", "WO", "N2_G",
                               "WG", "WU", "WD"}
    x = rng.standard_normal((T, D))
    cos, rsin = rope_inputs(range(T))
    out = c.evaluate({"X": x[None], "RCOS": cos[None], "RSIN": rsin[None],
                      **cascade_weights(w)})
    # the cascade computes the full square of scores (no causal mask, module docstring), so
    # the reference attends over all T tokens too
    ref, k = llama_layer(w, x, range(T))
    np.testing.assert_allclose(out["X3"][0], ref, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(out["KR"][0], k, rtol=1e-6, atol=1e-12)
    assert not np.allclose(out["X3"][0], x)           # the layer did something


def test_decode_layer_matches_numpy(rng):
    B, M = 3, 6
    w = tiny_weights(rng)
    c = model_cascade(TINY, decode(B, M), dtype="fp32", scope="layers")
    assert {"KC", "VC"} <= set(c.inputs())
    x = rng.standard_normal((B, 1, D))
    kc = rng.standard_normal((B, M, G, E))
    vc = rng.standard_normal((B, M, G, E))
    cos, rsin = rope_inputs([M - 1])                  # the new token is the M-th position
    out = c.evaluate({"X": x, "RCOS": np.broadcast_to(cos, (B, 1, E // 2)),
                      "RSIN": np.broadcast_to(rsin, (B, 1, 2, E // 2)), "KC": kc, "VC": vc,
                      **cascade_weights(w)})
    for b in range(B):
        ref, k = llama_layer(w, x[b], [M - 1], cache=(kc[b], vc[b]))
        np.testing.assert_allclose(out["X3"][b], ref, rtol=1e-6, atol=1e-12)
        # KR is the rotated key that would be appended to the cache
        np.testing.assert_allclose(out["KR"][b], k, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("kind", ["deferred", "2pass", "1pass"])
def test_decode_attention_kinds_agree_with_3pass(rng, kind):
    w = tiny_weights(rng)
    inputs = {"X": rng.standard_normal((2, 1, D)), **cascade_weights(w),
              "KC": rng.standard_normal((2, 512, G, E)),
              "VC": rng.standard_normal((2, 512, G, E))}
    cos, rsin = rope_inputs([511])
    inputs["RCOS"] = np.broadcast_to(cos, (2, 1, E // 2))
    inputs["RSIN"] = np.broadcast_to(rsin, (2, 1, 2, E // 2))
    ref = model_cascade(TINY, decode(2, 512), dtype="fp32", scope="layers").evaluate(inputs)
    c = model_cascade(TINY, decode(2, 512), dtype="fp32", scope="layers", attention=kind)
    np.testing.assert_allclose(c.evaluate(inputs)["X3"], ref["X3"], rtol=1e-9)


def test_mixed_batch_layer_matches_numpy_per_request(rng):
    """Decodes of two context lengths, a chunked prefill over a cache and two fresh prompts
    in one iteration: the layout gathers/scatters must route every token row to its
    request's attention."""
    reqs = [Request(1, 5), Request(1, 5), Request(1, 7), Request(3, 5), Request(3, 3),
            Request(3, 3)]
    w = tiny_weights(rng)
    c = model_cascade(TINY, reqs, dtype="fp32", scope="layers")
    T = sum(r.query_tokens for r in reqs)
    assert c.ranks["s"] == T
    x = rng.standard_normal((T, D))
    # rows: the groups in order (1,5) x2, (1,7), (3,5), (3,3) x2; a request's rows are
    # contiguous; its tokens sit at the last query_tokens positions of its context
    positions = np.concatenate([np.arange(r.context_tokens - r.query_tokens,
                                          r.context_tokens) for r in reqs])
    cos, rsin = rope_inputs(positions)
    inputs = {"X": x, "RCOS": cos, "RSIN": rsin, **cascade_weights(w)}
    caches = {}
    for k, (shape_b, ctx) in enumerate([(2, 5), (1, 7), (1, 5)]):
        inputs[f"KC{k}"] = rng.standard_normal((shape_b, ctx, G, E))
        inputs[f"VC{k}"] = rng.standard_normal((shape_b, ctx, G, E))
        caches[k] = (inputs[f"KC{k}"], inputs[f"VC{k}"])
    assert set(c.inputs()) == set(inputs)
    out = c.evaluate(inputs)["X3"]
    cache_of = [(0, 0), (0, 1), (1, 0), (2, 0), None, None]   # (group, request in group)
    row = 0
    for r, where in zip(reqs, cache_of):
        rows = slice(row, row + r.query_tokens)
        cache = None if where is None else (caches[where[0]][0][where[1]],
                                            caches[where[0]][1][where[1]])
        ref, _ = llama_layer(w, x[rows], positions[rows], cache=cache)
        np.testing.assert_allclose(out[rows], ref, rtol=1e-6, atol=1e-12)
        row += r.query_tokens
    assert row == T


def gelu_tanh(z):
    return 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))


def layernorm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * g + b


@pytest.mark.parametrize("position", ["pre", "post"])
def test_gpt_and_bert_style_layers_match_numpy(rng, position):
    """LayerNorm with biases, biased projections, GeLU (tanh form) FFN, learned positions
    (no rotary): GPT-2 (pre-norm) and BERT (post-norm) layers."""
    cfg = ModelConfig("tiny-gpt", hidden=D, layers=1, heads=H, ffn=FF, vocab=32,
                      norm="layernorm", ffn_kind="gelu", positional="learned", max_positions=8,
                      bias=True, norm_position=position)
    T = 4
    c = model_cascade(cfg, [Request(T, T)], dtype="fp32", scope="layers")

    def r(*shape):
        return 0.3 * rng.standard_normal(shape)

    p = {"N1_G": 1 + r(D), "N1_B": r(D), "N2_G": 1 + r(D), "N2_B": r(D),
         "WQ": r(D, H, 1, E), "BQ": r(H, 1, E), "WK": r(D, H, E), "BK": r(H, E),
         "WV": r(D, H, E), "BV": r(H, E), "WO": r(H, 1, E, D), "BO": r(D),
         "WU": r(D, FF), "BU": r(FF), "WD": r(FF, D), "BD": r(D)}
    x = rng.standard_normal((T, D))
    out = c.evaluate({"X": x[None], **p})

    def attn(h):
        q = (h @ p["WQ"].reshape(D, -1)).reshape(T, H, E) + p["BQ"].reshape(H, E)
        k = (h @ p["WK"].reshape(D, -1)).reshape(T, H, E) + p["BK"]
        v = (h @ p["WV"].reshape(D, -1)).reshape(T, H, E) + p["BV"]
        s = np.einsum("the,mhe->htm", q, k)     # the cascade's scores are unscaled
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        o = np.einsum("htm,mhe->the", a, v).reshape(T, -1)
        return o @ p["WO"].reshape(-1, D) + p["BO"]

    def ffn(h):
        return gelu_tanh(h @ p["WU"] + p["BU"]) @ p["WD"] + p["BD"]

    if position == "pre":
        x2 = x + attn(layernorm(x, p["N1_G"], p["N1_B"]))
        ref = x2 + ffn(layernorm(x2, p["N2_G"], p["N2_B"]))
        got = out["X3"][0]
    else:
        x2 = layernorm(x + attn(x), p["N1_G"], p["N1_B"])
        ref = layernorm(x2 + ffn(x2), p["N2_G"], p["N2_B"])
        got = out["N2"][0]
        assert c.einsum(body(c)[-1]).output_tensor == "N2"   # the layer ends normalised
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-12)
