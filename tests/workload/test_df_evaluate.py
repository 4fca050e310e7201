"""NumPy reference execution: GEMM, 3-pass / deferred / 1-pass attention, recurrences, errors."""

import numpy as np
import pytest

from dataflow import Cascade, CascadeError, evaluate, load_cascade


def softmax_attention(Q, K, V):
    """Reference attention with fusemax.md index conventions: Q[e,p], K[e,m], V[f,m] ->
    AV[f,p] = sum_m softmax_m(QK[m,p]) V[f,m]."""
    scores = K.T @ Q                     # [m, p]
    scores = scores - scores.max(axis=0)
    weights = np.exp(scores)
    weights /= weights.sum(axis=0)
    return V @ weights                   # [f, p]


# 1-pass (FuseMax) attention as in shared/reference/fusemax.md, with K and V read through the
# affine index m1*M0+m0 instead of pre-split BK/BV tensors.
ONE_PASS = """
RM[0,p] = -inf
RD[0,p] = 0
RNV[f,0,p] = 0
BQK[m1,m0,p] = Q[e,p] * K[e,m1*M0+m0]
LM[m1,p] = max(BQK[m1,m0,p])
RM[m1+1,p] = max(RM[m1,p], LM[m1,p])
SLN[m1,m0,p] = exp(BQK[m1,m0,p] - RM[m1+1,p])
SLD[m1,p] = SLN[m1,m0,p]
SLNV[f,m1,p] = SLN[m1,m0,p] * V[f,m1*M0+m0]
PRM[m1,p] = exp(RM[m1,p] - RM[m1+1,p])
SPD[m1,p] = RD[m1,p] * PRM[m1,p]
RD[m1+1,p] = SLD[m1,p] + SPD[m1,p]
SPNV[f,m1,p] = RNV[f,m1,p] * PRM[m1,p]
RNV[f,m1+1,p] = SLNV[f,m1,p] + SPNV[f,m1,p]
AV[f,p] = RNV[f,M1,p] / RD[M1,p]
"""
ONE_PASS_TENSORS = {
    "K": {"ranks": ["e", "m"]}, "V": {"ranks": ["f", "m"]},
    "RM": {"ranks": ["m1", "p"], "extents": {"m1": "M1+1"}},
    "RD": {"ranks": ["m1", "p"], "extents": {"m1": "M1+1"}},
    "RNV": {"ranks": ["f", "m1", "p"], "extents": {"m1": "M1+1"}},
}


def attention_inputs(cascade, rng, scale=1.0):
    return {name: scale * rng.normal(size=cascade.shape(name)) for name in ("Q", "K", "V")}


def test_gemm_matches_numpy(rng):
    cascade = Cascade.from_text("Z[m,n] = A[k,m] * B[k,n]", {"m": 3, "k": 4, "n": 5})
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 5))
    values = cascade.evaluate({"A": a, "B": b})
    np.testing.assert_allclose(values["Z"], a.T @ b, rtol=1e-12)
    np.testing.assert_array_equal(values["A"], a)


def test_builtin_gemm_and_mlp_match_numpy(rng):
    gemm = load_cascade("gemm", {"m": 4, "k": 6, "n": 5})
    a, b = rng.normal(size=(4, 6)), rng.normal(size=(6, 5))
    np.testing.assert_allclose(gemm.evaluate({"A": a, "B": b})["Z"], a @ b, rtol=1e-12)

    mlp = load_cascade("mlp", {"m": 3, "d": 4, "h": 6})
    x, w1, w2 = rng.normal(size=(3, 4)), rng.normal(size=(4, 6)), rng.normal(size=(6, 4))
    h = x @ w1
    g = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
    np.testing.assert_allclose(mlp.evaluate({"X": x, "W1": w1, "W2": w2})["Y"], g @ w2 + x,
                               rtol=1e-12)


@pytest.mark.parametrize("name", ["attention", "attention_deferred"])
def test_three_pass_attention_equals_softmax(name, rng):
    cascade = load_cascade(name, {"m": 16, "p": 7, "e": 5, "f": 6})
    inputs = attention_inputs(cascade, rng, scale=2.0)
    values = cascade.evaluate(inputs)
    expected = softmax_attention(inputs["Q"], inputs["K"], inputs["V"])
    np.testing.assert_allclose(values["AV"], expected, rtol=1e-6)


def test_attention_intermediates(rng):
    cascade = load_cascade("attention", {"m": 6, "p": 4, "e": 3, "f": 2})
    inputs = attention_inputs(cascade, rng)
    values = cascade.evaluate(inputs)
    qk = inputs["K"].T @ inputs["Q"]
    np.testing.assert_allclose(values["QK"], qk, rtol=1e-12)
    np.testing.assert_allclose(values["GM"], qk.max(axis=0), rtol=1e-12)
    np.testing.assert_allclose(values["SD"], np.exp(qk - qk.max(axis=0)).sum(axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(values["A"].sum(axis=0), 1.0, rtol=1e-12)


@pytest.mark.parametrize("m1, m0", [(1, 8), (3, 4), (6, 2)])
def test_one_pass_attention_equals_softmax(m1, m0, rng):
    ranks = {"m": m1 * m0, "m1": m1, "m0": m0, "p": 5, "e": 3, "f": 4}
    cascade = Cascade.from_text(ONE_PASS, ranks, name="attention-1pass",
                                tensors=ONE_PASS_TENSORS)
    # With a single m1 iteration nothing is carried, so there is no loop.
    assert [r.rank for r in cascade.recurrences()] == (["m1"] * 3 if m1 > 1 else [])
    inputs = attention_inputs(cascade, rng, scale=3.0)
    values = cascade.evaluate(inputs)
    expected = softmax_attention(inputs["Q"], inputs["K"], inputs["V"])
    np.testing.assert_allclose(values["AV"], expected, rtol=1e-6)
    # The running max ends at the global max; the running denominator at the softmax sum.
    qk = inputs["K"].T @ inputs["Q"]
    np.testing.assert_allclose(values["RM"][m1], qk.max(axis=0), rtol=1e-12)
    np.testing.assert_allclose(values["RD"][m1], np.exp(qk - qk.max(axis=0)).sum(axis=0),
                               rtol=1e-9)


def test_builtin_one_pass_equals_text_version(rng):
    ranks = {"m": 12, "m1": 3, "m0": 4, "p": 5, "e": 3, "f": 4}
    builtin = load_cascade("attention_1pass", ranks)
    text = Cascade.from_text(ONE_PASS, ranks, tensors=ONE_PASS_TENSORS)
    assert [e.text for e in builtin.einsums] == [e.text for e in text.einsums]
    inputs = attention_inputs(builtin, rng)
    np.testing.assert_allclose(builtin.evaluate(inputs)["AV"],
                               softmax_attention(inputs["Q"], inputs["K"], inputs["V"]),
                               rtol=1e-6)


def test_prefix_sum_recurrence(rng):
    cascade = Cascade.from_text("S[0] = 0\nS[i+1] = S[i] + A[i]", {"i": 6},
                                tensors={"S": {"ranks": ["i"], "extents": {"i": "I+1"}}})
    a = rng.normal(size=6)
    np.testing.assert_allclose(cascade.evaluate({"A": a})["S"],
                               np.concatenate([[0.0], np.cumsum(a)]), rtol=1e-12)


def test_affine_gather_and_partial_writes(rng):
    cascade = Cascade.from_text(
        "Y[i] = X[2*i+1]\nZ[0] = 7\nZ[i+1] = Y[i]", {"i": 3, "j": 7},
        tensors={"X": {"ranks": ["j"]}, "Z": {"ranks": ["i"], "extents": {"i": "I+1"}}})
    x = rng.normal(size=7)
    values = evaluate(cascade, {"X": x})
    np.testing.assert_array_equal(values["Y"], x[[1, 3, 5]])
    np.testing.assert_array_equal(values["Z"], np.concatenate([[7.0], x[[1, 3, 5]]]))


def test_reductions_with_max_min_and_broadcast_output(rng):
    cascade = Cascade.from_text("MX[n] = max(X[m,n])\nMN[n] = min(X[m,n])\n"
                                "B[m,n] = MX[n] - MN[n]\nT[n,m] = X[m,n] * 2",
                                {"m": 4, "n": 3})
    x = rng.normal(size=(4, 3))
    values = cascade.evaluate({"X": x})
    np.testing.assert_allclose(values["MX"], x.max(axis=0))
    np.testing.assert_allclose(values["MN"], x.min(axis=0))
    np.testing.assert_allclose(values["B"], np.broadcast_to(x.max(0) - x.min(0), (4, 3)))
    np.testing.assert_allclose(values["T"], 2 * x.T)


def test_input_errors(rng):
    cascade = load_cascade("gemm", {"m": 2, "k": 3, "n": 4})
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    with pytest.raises(CascadeError, match=r"missing input 'B' of shape \(3, 4\)"):
        cascade.evaluate({"A": a})
    with pytest.raises(CascadeError, match=r"input 'B' has shape \(4, 3\), expected \(3, 4\)"):
        cascade.evaluate({"A": a, "B": b.T})
    with pytest.raises(CascadeError, match="unknown input 'C'"):
        cascade.evaluate({"A": a, "B": b, "C": b})
    with pytest.raises(CascadeError, match="Z is computed by cascade 'gemm'"):
        cascade.evaluate({"A": a, "B": b, "Z": np.zeros((2, 4))})


def test_reading_an_unwritten_element_is_an_error():
    cascade = Cascade.from_text("X[0] = 1\nY[m] = X[m]", {"m": 3},
                                tensors={"X": {"ranks": ["m"]}})
    with pytest.raises(CascadeError, match="reads elements of X that no earlier einsum wrote"):
        cascade.evaluate({})


def test_recurrence_group_with_an_interleaved_einsum(rng):
    # P and S#2 form a loop over i; Q sits between them in program order and feeds S#2, so
    # the schedule runs Q before the loop.
    cascade = Cascade.from_text("S[0] = 0\nP[i] = S[i] * 2\nQ[i] = A[i] + 1\nS[i+1] = P[i] + Q[i]",
                                {"i": 5},
                                tensors={"S": {"ranks": ["i"], "extents": {"i": "I+1"}}})
    assert cascade.schedule() == [(("S",), None), (("Q",), None), (("P", "S#2"), "i")]
    assert cascade.topological_order() == ["S", "P", "Q", "S#2"]
    a = rng.normal(size=5)
    expected = [0.0]
    for value in a:
        expected.append(2 * expected[-1] + value + 1)
    np.testing.assert_allclose(cascade.evaluate({"A": a})["S"], expected, rtol=1e-12)


def test_flattening_write(rng):
    cascade = Cascade.from_text("Y[j*I+i] = X[i,j]", {"i": 4, "j": 3},
                                tensors={"Y": {"ranks": ["i"], "extents": {"i": "I*J"}}})
    x = rng.normal(size=(4, 3))
    np.testing.assert_array_equal(cascade.evaluate({"X": x})["Y"], x.T.reshape(-1))
