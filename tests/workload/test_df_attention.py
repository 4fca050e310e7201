"""Generated attention cascades (dataflow.attention) and pass counting (dataflow.passes)."""

import dataclasses

import numpy as np
import pytest

from dataflow import (
    ATTENTION_KINDS,
    AttentionPart,
    Cascade,
    CascadeError,
    attention_cascade,
    attention_einsums,
    evaluate,
    load_cascade,
    parse_einsum,
    passes,
)

SIZES = {"m": 12, "p": 5, "e": 3, "f": 4}
BUILTIN = {"3pass": "attention", "deferred": "attention_deferred", "2pass": "attention_2pass",
           "1pass": "attention_1pass"}
# Expected passes over the M fibers of the score tensor (shared/reference/fusemax.md).
EXPECTED_PASSES = {"3pass": 3, "deferred": 2, "2pass": 2, "1pass": 1}
GQA = {"q_ranks": ("b", "g", "r", "p", "e"), "k_ranks": ("b", "g", "m", "e"),
       "v_ranks": ("b", "g", "m", "f"), "out_ranks": ("b", "g", "r", "p", "f")}


def score_tensor(kind, prefix=""):
    return prefix + ("BQK" if kind in ("2pass", "1pass") else "QK")


def reference(q, k, v):
    """softmax_m(QK[m,p]) V with Q[..., e, p], K[..., e, m], V[..., f, m] -> AV[..., f, p]."""
    scores = np.einsum("...em,...ep->...mp", k, q)
    weights = np.exp(scores - scores.max(axis=-2, keepdims=True))
    weights /= weights.sum(axis=-2, keepdims=True)
    return np.einsum("...fm,...mp->...fp", v, weights)


def random_inputs(cascade, rng, names=("Q", "K", "V"), scale=2.0):
    return {n: scale * rng.normal(size=cascade.shape(n)) for n in names}


# ----------------------------------------------------------------------------- correctness

@pytest.mark.parametrize("outer", [None, {"b": 2, "h": 3}])
@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_attention_cascade_equals_softmax(kind, outer, rng):
    cascade = attention_cascade(kind, **SIZES, m0=4, outer=outer)
    lead = tuple(outer or ())
    assert cascade.tensors["Q"].ranks == lead + ("e", "p")
    assert cascade.tensors["AV"].ranks == lead + ("f", "p")
    inputs = random_inputs(cascade, rng)
    values = evaluate(cascade, inputs)
    np.testing.assert_allclose(values["AV"], reference(inputs["Q"], inputs["K"], inputs["V"]),
                               rtol=1e-5)
    assert passes(cascade, score_tensor(kind), "m") == EXPECTED_PASSES[kind]


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_grouped_query_attention_layout(kind, rng):
    # K and V lack the r rank (queries per KV group); the ranks of Q/K/V/AV are in any order.
    part = attention_einsums(kind, prefix="L0_", **GQA)
    ranks = {"b": 2, "g": 2, "r": 3, "m": 8, "m1": 2, "m0": 4, "p": 5, "e": 3, "f": 4}
    cascade = Cascade.from_text(part.einsums, ranks, tensors=part.tensors)
    score = score_tensor(kind, "L0_")
    expected_ranks = ("b", "g", "r") + (("m1", "m0", "p") if "B" in score else ("m", "p"))
    assert cascade.tensors[score].ranks == expected_ranks
    assert all(t.startswith("L0_") for t in cascade.intermediates())
    inputs = random_inputs(cascade, rng)
    q = inputs["Q"].transpose(0, 1, 2, 4, 3)                 # [b,g,r,e,p]
    k = inputs["K"].transpose(0, 1, 3, 2)[:, :, None]        # [b,g,1,e,m]
    v = inputs["V"].transpose(0, 1, 3, 2)[:, :, None]        # [b,g,1,f,m]
    expected = reference(q, k, v).transpose(0, 1, 2, 4, 3)   # [b,g,r,p,f]
    np.testing.assert_allclose(evaluate(cascade, inputs)["AV"], expected, rtol=1e-5)
    assert passes(cascade, score, "m") == EXPECTED_PASSES[kind]
    assert cascade.passes("K", "m") == EXPECTED_PASSES[kind]


def test_two_attentions_in_one_cascade(rng):
    first = attention_einsums("1pass", q="Q0", out="O0", prefix="L0_")
    second = attention_einsums("3pass", q="Q1", out="O1", prefix="L1_")
    assert first.tensors["K"] == second.tensors["K"]            # shared inputs agree
    cascade = Cascade.from_text(first.einsums + second.einsums,
                                {"m": 12, "m1": 3, "m0": 4, "p": 5, "e": 3, "f": 4},
                                tensors={**first.tensors, **second.tensors})
    assert sorted(cascade.inputs()) == ["K", "Q0", "Q1", "V"]
    inputs = random_inputs(cascade, rng, ("Q0", "Q1", "K", "V"))
    values = evaluate(cascade, inputs)
    for q, out in (("Q0", "O0"), ("Q1", "O1")):
        np.testing.assert_allclose(values[out], reference(inputs[q], inputs["K"], inputs["V"]),
                                   rtol=1e-5)
    assert passes(cascade, "L0_BQK", "m") == 1 and passes(cascade, "L1_QK", "m") == 3
    assert passes(cascade, "K", "m") == 3                      # the worse of the two readers


def test_attention_part_declarations():
    part = attention_einsums("1pass", **GQA)
    assert isinstance(part, AttentionPart) and isinstance(part.einsums, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        part.einsums = ()
    assert part.tensors["RNV"].ranks == ("b", "g", "r", "f", "m1", "p")
    assert part.tensors["RM"].extents == {"m1": "M1+1"}
    assert part.tensors["K"].ranks == GQA["k_ranks"]
    # every tensor an einsum accesses is declared
    accessed = {a.tensor for line in part.einsums
                for e in [parse_einsum(line)] for a in (e.output,) + e.inputs}
    assert accessed == set(part.tensors)
    assert "K[b,g,m1*M0+m0,e]" in part.einsums[3]
    assert "K[b,g,m1*MB+m0,e]" in attention_einsums("2pass", m0_size_name="MB", **GQA).einsums[0]
    assert attention_einsums("3pass", bits=8).tensors["QK"].bits == 8


# ----------------------------------------------------------------------------- built-ins

@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_builtin_yaml_matches_generator(kind):
    builtin = load_cascade(BUILTIN[kind])
    generated = attention_cascade(kind, m=1024, p=1024, e=64, f=64, m0=256)
    assert [e.text for e in builtin.einsums] == [e.text for e in generated.einsums]
    assert dict(builtin.ranks) == dict(generated.ranks)
    assert dict(builtin.tensors) == dict(generated.tensors)
    assert generated.name == builtin.name and generated == builtin   # description not compared
    assert builtin.passes(score_tensor(kind), "m") == EXPECTED_PASSES[kind]


def test_builtin_two_pass_evaluates(rng):
    cascade = load_cascade("attention_2pass", {"m": 12, "m1": 3, "m0": 4, **{
        k: v for k, v in SIZES.items() if k != "m"}})
    inputs = random_inputs(cascade, rng, scale=3.0)
    np.testing.assert_allclose(cascade.evaluate(inputs)["AV"],
                               reference(inputs["Q"], inputs["K"], inputs["V"]), rtol=1e-5)


# ----------------------------------------------------------------------------- pass counting

def test_pass_counts_of_other_tensors_and_ranks():
    three = attention_cascade("3pass", **SIZES)
    assert passes(three, "SN", "m") == 2 and passes(three, "A", "m") == 1
    assert passes(three, "V", "m") == 1 and passes(three, "Q", "p") == 1
    one = attention_cascade("1pass", **SIZES, m0=4)
    # Inside a tile FuseMax reads each m0 fiber twice (local max, then exp).
    assert passes(one, "BQK", "m0") == 2 and passes(one, "BQK", "m1") == 1
    assert passes(one, "RNV", "m1") == 1 and passes(one, "RM", "m") == 1
    assert one.passes("BQK", "m") == 1


def test_gemm_and_softmax_free_cascades_make_one_pass():
    gemm = load_cascade("gemm")
    assert [passes(gemm, "A", r) for r in ("m", "k")] == [1, 1]
    assert passes(gemm, "Z", "n") == 1                          # only written: one pass
    linear = Cascade.from_text("QK[m,p] = Q[e,p] * K[e,m]\nAV[f,p] = QK[m,p] * V[f,m]",
                               {"m": 8, "p": 4, "e": 2, "f": 3})
    assert passes(linear, "QK", "m") == 1 and passes(linear, "K", "m") == 1
    assert passes(load_cascade("mlp"), "X", "m") == 1


def test_reading_the_final_running_state_ends_a_pass(rng):
    # Online-softmax statistics in pass 1, then normalization with the final RM[M1]/RD[M1]
    # in pass 2: the final element of a running state is a reduction over all of m1.
    text = """
    RM[0,p] = -inf
    RD[0,p] = 0
    BQK[m1,m0,p] = Q[e,p] * K[e,m1*M0+m0]
    LM[m1,p] = max(BQK[m1,m0,p])
    RM[m1+1,p] = max(RM[m1,p], LM[m1,p])
    SLD[m1,p] = sum(exp(BQK[m1,m0,p] - RM[m1+1,p]))
    PRM[m1,p] = exp(RM[m1,p] - RM[m1+1,p])
    RD[m1+1,p] = SLD[m1,p] + RD[m1,p] * PRM[m1,p]
    A[m1,m0,p] = exp(BQK[m1,m0,p] - RM[M1,p]) / RD[M1,p]
    AV[f,p] = A[m1,m0,p] * V[f,m1*M0+m0]
    """
    state = {"ranks": ["m1", "p"], "extents": {"m1": "M1+1"}}
    cascade = Cascade.from_text(text, {"m": 12, "m1": 3, "m0": 4, "p": 5, "e": 3, "f": 4},
                                tensors={"K": {"ranks": ["e", "m"]}, "V": {"ranks": ["f", "m"]},
                                         "RM": state, "RD": state})
    inputs = random_inputs(cascade, rng)
    np.testing.assert_allclose(cascade.evaluate(inputs)["AV"],
                               reference(inputs["Q"], inputs["K"], inputs["V"]), rtol=1e-5)
    assert passes(cascade, "BQK", "m") == 2


# ----------------------------------------------------------------------------- errors

def test_unknown_kind_lists_the_kinds():
    for call in (lambda: attention_einsums("4pass"),
                 lambda: attention_cascade("flash", **SIZES)):
        with pytest.raises(CascadeError, match="unknown attention kind .*3pass, deferred, "
                                               "2pass, 1pass"):
            call()


def test_m0_must_divide_m():
    with pytest.raises(CascadeError, match="m0 = 5 does not divide m = 12"):
        attention_cascade("1pass", **SIZES, m0=5)
    with pytest.raises(CascadeError, match="default m0 = 256 does not divide m = 300"):
        attention_cascade("2pass", m=300, p=4, e=2, f=2)
    assert attention_cascade("2pass", m=512, p=4, e=2, f=2).ranks["m0"] == 256
    assert attention_cascade("1pass", **SIZES).ranks["m1"] == 1            # m0 = min(m, 256)
    assert "m0" not in attention_cascade("3pass", **SIZES, m0=5).ranks     # unsplit: ignored
    with pytest.raises(CascadeError, match="m0 must be a positive integer"):
        attention_cascade("2pass", **SIZES, m0=0)


def test_bad_layouts_and_names():
    with pytest.raises(CascadeError, match="q_ranks: must contain the ranks e and p"):
        attention_einsums("3pass", q_ranks=("p",))
    with pytest.raises(CascadeError, match="output's outer ranks must be those of Q, K and V"):
        attention_einsums("3pass", k_ranks=("h", "e", "m"))
    with pytest.raises(CascadeError, match="rank 'm1' is reserved"):
        attention_einsums("1pass", q_ranks=("m1", "e", "p"), out_ranks=("m1", "f", "p"))
    with pytest.raises(CascadeError, match="'A' collides with an intermediate"):
        attention_einsums("3pass", out="A")
    with pytest.raises(CascadeError, match="four different tensor names"):
        attention_einsums("3pass", k="Q")
    with pytest.raises(CascadeError, match="outer rank 'm0' clashes"):
        attention_cascade("3pass", **SIZES, outer={"m0": 2})


def test_passes_errors():
    cascade = attention_cascade("1pass", **SIZES, m0=4)
    with pytest.raises(CascadeError, match="has no tensor 'X'"):
        passes(cascade, "X", "m")
    with pytest.raises(CascadeError, match="has no rank 'z'"):
        cascade.passes("BQK", "z")
    with pytest.raises(CascadeError, match="tensor Q has no rank 'm' or its parts m0, m1"):
        passes(cascade, "Q", "m")
    with pytest.raises(CascadeError, match="tensor LM has no rank 'm0'"):
        passes(cascade, "LM", "m0")
