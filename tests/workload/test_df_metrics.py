"""Operation counts, bytes, op/B, GEMM (contraction) detection and the summary table."""

import pytest

from dataflow import Cascade, load_cascade

SMALL = {"m": 8, "p": 5, "e": 3, "f": 4}


def test_gemm_ops_bytes_and_intensity():
    cascade = load_cascade("gemm")
    m, k, n = 1024, 4096, 1024
    assert cascade.ops("Z") == {"mac": m * n * k}
    assert cascade.total_ops("Z") == m * n * k
    read_bytes, write_bytes = cascade.einsum_bytes("Z")
    assert read_bytes == (m * k + k * n) * 2
    assert write_bytes == m * n * 2
    assert cascade.op_per_byte("Z") == pytest.approx(m * n * k / ((m * k + k * n + m * n) * 2))
    assert cascade.op_per_byte("Z") == pytest.approx(227.5555, rel=1e-6)


def test_three_pass_attention_ops_exact():
    cascade = load_cascade("attention", SMALL)
    m, p, e, f = 8, 5, 3, 4
    assert cascade.ops("QK") == {"mac": m * p * e}
    assert cascade.ops("GM") == {"max": m * p}
    assert cascade.ops("SN") == {"add": m * p, "exp": m * p}
    assert cascade.ops("SD") == {"add": m * p}
    assert cascade.ops("A") == {"div": m * p}
    assert cascade.ops("AV") == {"mac": f * m * p}
    assert sum(cascade.total_ops(x.name) for x in cascade.einsums) == 120 + 40 * 5 + 160


def test_division_deferral_moves_divisions():
    cascade = load_cascade("attention_deferred", SMALL)
    assert cascade.ops("SNV") == {"mac": 4 * 8 * 5}
    assert cascade.ops("AV") == {"div": 4 * 5}           # F*P instead of M*P


def test_one_pass_attention_ops_match_fusemax_per_point_costs():
    cascade = load_cascade("attention_1pass", {"m": 12, "m1": 3, "m0": 4, **{
        k: v for k, v in SMALL.items() if k != "m"}})
    assert cascade.ops("RM") == {}                          # init: a constant costs nothing
    assert cascade.ops("BQK") == {"mac": 3 * 4 * 5 * 3}
    assert cascade.ops("LM") == {"max": 3 * 4 * 5}
    assert cascade.ops("RM#2") == {"max": 3 * 5}
    assert cascade.ops("SLN") == {"add": 60, "exp": 60}
    assert cascade.ops("PRM") == {"add": 15, "exp": 15}
    assert cascade.ops("SPNV") == {"mul": 4 * 3 * 5}
    assert cascade.ops("AV") == {"div": 4 * 5}


@pytest.mark.parametrize("text, per_point", [
    ("Y[m,n] = X[m,n] + B[n]", {"add": 1}),
    ("Y[m,n] = X[m,n] - B[n]", {"add": 1}),
    ("Y[m,n] = X[m,n] * B[n]", {"mul": 1}),
    ("Y[m,n] = X[m,n] / B[n]", {"div": 1}),
    ("Y[m,n] = -X[m,n]", {}),
    ("Y[m,n] = X[m,n]", {}),
    ("Y[m,n] = 3", {}),
    ("Y[m,n] = max(X[m,n], 0)", {"max": 1}),
    ("Y[m,n] = min(X[m,n], B[n])", {"max": 1}),
    ("Y[m,n] = relu(X[m,n])", {"max": 1}),
    ("Y[m,n] = exp(X[m,n])", {"exp": 1}),
    ("Y[m,n] = sqrt(X[m,n])", {"sqrt": 1}),
    ("Y[m,n] = rsqrt(X[m,n])", {"sqrt": 1, "div": 1}),
    ("Y[m,n] = sigmoid(X[m,n])", {"exp": 1, "add": 1, "div": 1}),
    ("Y[m,n] = silu(X[m,n])", {"exp": 1, "add": 1, "div": 1, "mul": 1}),
    ("Y[m,n] = tanh(X[m,n])", {"mul": 1, "exp": 1, "add": 2, "div": 1}),
    ("Y[m,n] = gelu(X[m,n])", {"mul": 7, "add": 4, "exp": 1, "div": 1}),
    ("Y[m,n] = (X[m,n] - B[n]) * rsqrt(V[n] + 1e-5)", {"add": 2, "mul": 1, "sqrt": 1,
                                                        "div": 1}),
])
def test_element_wise_ops(text, per_point):
    cascade = Cascade.from_text(text, {"m": 3, "n": 4})
    assert cascade.ops("Y") == {k: 12 * v for k, v in per_point.items()}


@pytest.mark.parametrize("text, expected", [
    ("Y[m] = X[m,n]", {"add": 12}),                    # sum reduction: one add per point
    ("Y[m] = max(X[m,n])", {"max": 12}),
    ("Y[m] = min(X[m,n])", {"max": 12}),
    ("Y[m] = exp(X[m,n])", {"exp": 12, "add": 12}),     # softmax denominator style
    ("Y[m] = X[m,n] * B[n]", {"mac": 12}),              # GEMV: product fused with the sum
    ("Y[m] = max(X[m,n] * B[n])", {"mul": 12, "max": 12}),   # no fusion with max
    ("Y[m] = X[m,n] * B[n] + 1", {"mul": 12, "add": 24}),    # top operator is +: no mac
    ("S[] = X[m,n]", {"add": 12}),
])
def test_reduction_ops(text, expected):
    cascade = Cascade.from_text(text, {"m": 3, "n": 4})
    name = cascade.einsums[0].name
    assert cascade.ops(name) == expected


def test_bytes_of_partial_and_affine_accesses():
    cascade = load_cascade("attention_1pass", {"m": 12, "m1": 3, "m0": 4, "p": 5, "e": 3,
                                               "f": 4})
    # PRM reads RM[m1,p] and RM[m1+1,p]: the union is all (M1+1)*P elements.
    assert cascade.einsum_bytes("PRM") == ((3 + 1) * 5 * 2, 3 * 5 * 2)
    # The init writes one row of RM.
    assert cascade.einsum_bytes("RM") == (0, 5 * 2)
    # BQK reads all of Q and all of K through K[e,m1*M0+m0].
    assert cascade.einsum_bytes("BQK")[0] == (3 * 5 + 3 * 12) * 2
    # AV reads one row per running state.
    assert cascade.einsum_bytes("AV") == ((4 * 5 + 5) * 2, 4 * 5 * 2)


def test_bytes_count_distinct_elements_of_strided_and_diagonal_accesses():
    strided = Cascade.from_text("Y[i] = X[2*i]", {"i": 4, "j": 8}, default_bits=8,
                                tensors={"X": {"ranks": ["j"]}})
    assert strided.einsum_bytes("Y") == (4, 4)
    window = Cascade.from_text("Y[i] = X[i+j]", {"i": 3, "j": 3}, default_bits=8,
                               tensors={"X": {"ranks": ["i"], "extents": {"i": "I+J-1"}}})
    assert window.einsum_bytes("Y") == (5, 3)
    diagonal = Cascade.from_text("Y[i] = X[i,i]", {"i": 4}, default_bits=8,
                                 tensors={"X": {"ranks": ["i", "j"], "extents": {"j": "I"}}})
    assert diagonal.einsum_bytes("Y") == (4, 4)


def test_op_per_byte_of_attention():
    cascade = load_cascade("attention", SMALL)
    read_bytes, write_bytes = cascade.einsum_bytes("SN")
    assert (read_bytes, write_bytes) == ((40 + 5) * 2, 40 * 2)
    assert cascade.op_per_byte("SN") == pytest.approx(80 / 170)


def test_op_counts_are_integers():
    cascade = load_cascade("mlp")
    for einsum in cascade.einsums:
        for count in cascade.ops(einsum.name).values():
            assert isinstance(count, int) and count > 0


# ----------------------------------------------------------------------------- contraction

def contraction_of(text, ranks, tensors=None):
    cascade = Cascade.from_text(text, ranks, tensors=tensors)
    return cascade.contraction(cascade.einsums[-1].name)


def test_contraction_of_gemm():
    gemm = contraction_of("Z[m,n] = A[m,k] * B[k,n]", {"m": 2, "k": 3, "n": 4})
    assert (gemm.a, gemm.b, gemm.out) == ("A", "B", "Z")
    assert gemm.m == {"m": 2} and gemm.n == {"n": 4} and gemm.k == {"k": 3}
    assert gemm.batch == {}
    assert (gemm.B, gemm.M, gemm.N, gemm.K) == (1, 2, 4, 3)


def test_contraction_operand_order_follows_output_rows():
    qk = load_cascade("attention", SMALL).contraction("QK")     # QK[m,p] = Q[e,p] * K[e,m]
    assert (qk.a, qk.b) == ("K", "Q")
    assert (qk.M, qk.N, qk.K) == (8, 5, 3)


def test_contraction_of_batched_gemm():
    bmm = contraction_of("Z[b,m,n] = A[b,m,k] * B[b,k,n]", {"b": 2, "m": 3, "k": 4, "n": 5})
    assert bmm.batch == {"b": 2}
    assert (bmm.B, bmm.M, bmm.N, bmm.K) == (2, 3, 5, 4)


def test_contraction_of_gemv_has_unit_n():
    gemv = contraction_of("Z[m] = A[m,k] * B[k]", {"m": 3, "k": 4})
    assert (gemv.a, gemv.b, gemv.M, gemv.N, gemv.K) == ("A", "B", 3, 1, 4)
    swapped = contraction_of("Z[m] = B[k] * A[m,k]", {"m": 3, "k": 4})
    assert (swapped.a, swapped.M, swapped.N) == ("A", 3, 1)


@pytest.mark.parametrize("text", [
    "Z[m,n] = A[m,n] * B[m,n]",              # element-wise: nothing reduced
    "Z[m] = A[m,k] + B[k]",                  # not a product
    "Z[m] = max(A[m,k] * B[k])",             # reduced with max
    "Z[m] = A[m,k] * B[j]",                  # k and j reduced in one operand only
    "Z[m,n] = A[m,k] * B[k]",                # n broadcast: in no operand
    "Z[m] = A[m,k] * B[k] * C[k]",           # three operands
    "Z[m] = A[m,k] * B[k] + 1",
])
def test_non_contractions(text):
    assert contraction_of(text, {"m": 3, "k": 4, "n": 2, "j": 2}) is None


def test_split_rank_product_is_a_gemm_over_the_split_ranks():
    cascade = load_cascade("attention_1pass", {"m": 12, "m1": 3, "m0": 4, "p": 5, "e": 3,
                                               "f": 4})
    con = cascade.contraction("BQK")
    assert (con.a, con.b, con.m, con.n, con.k) == ("K", "Q", {"m1": 3, "m0": 4}, {"p": 5},
                                                   {"e": 3})
    assert cascade.contraction("SLNV").K == 4


@pytest.mark.parametrize("text,expected", [
    ("Z[t,n] = A[t+2,k] * B[k,n]", (3, 2, 4)),           # a slice of A's rows
    ("Z[y,o] = X[y*2+j,c] * W[j,c,o]", (3, 2, 8)),       # stride-2 window (im2col)
])
def test_view_operands_are_gemms(text, expected):
    con = contraction_of(text, {"t": 3, "n": 2, "k": 4, "y": 3, "o": 2, "j": 2, "c": 4},
                         tensors={"A": {"ranks": ["t", "k"], "extents": {"t": 5}},
                                  "X": {"ranks": ["y", "c"], "extents": {"y": 8}}})
    assert (con.M, con.N, con.K) == expected


@pytest.mark.parametrize("text", [
    "Z[m,n] = A[m,k] * B[k,k+n]",    # k in two indices of one operand (a diagonal)
    "Z[m,n] = A[m,k] * B[k-n+2,n]",  # negative coefficient
])
def test_non_view_operands_are_not_gemms(text):
    assert contraction_of(text, {"m": 3, "k": 4, "n": 2},
                          tensors={"B": {"ranks": ["k", "n"], "extents": {"k": 8, "n": 8}}}) is None


def test_summary_table():
    text = load_cascade("attention", SMALL).summary()
    lines = text.splitlines()
    assert lines[0].startswith("cascade attention: ranks m=8, p=5, e=3, f=4")
    assert lines[1].split()[:3] == ["einsum", "points", "mac"]
    assert any(line.startswith("QK") and "QK[m,p] = Q[e,p] * K[e,m]" in line for line in lines)
    assert lines[-1].startswith("total")
    assert str(120 + 200 + 160) in lines[-1].split()
