"""Text form: parsing, canonical text round trips and syntax errors."""

import pytest

from dataflow import (Access, BinOp, CascadeError, Call, Const, Einsum, IndexExpr, Neg,
                      parse_einsum, parse_index)

ROUND_TRIP = [
    "QK[m,p] = Q[e,p] * K[e,m]",
    "GM[p] = max(QK[m,p])",
    "GN[p] = min(QK[m,p])",
    "SN[m,p] = exp(QK[m,p] - GM[p])",
    "SD[p] = SN[m,p]",
    "RM[0,p] = -inf",
    "RD[0,p] = 0",
    "RM[m1+1,p] = max(RM[m1,p], LM[m1,p])",
    "BQK[m1,m0,p] = Q[e,p] * K[e,m1*M0+m0]",
    "AV[f,p] = RNV[f,M1,p] / RD[M1,p]",
    "X[m] = -(A[m] + B[m]) * -2 - -A[m] / (B[m] / C[m])",
    "Y[m] = rsqrt(A[m] * A[m] + 1e-05) * 0.5",
    "Y[m] = gelu(A[m]) + silu(A[m]) - sigmoid(A[m]) * tanh(A[m]) + relu(A[m]) + sqrt(A[m])",
    "S[] = max(A[m])",
    "Z[m] = A[2*m*N+M1-1]",
    "Z[m] = A[m-n*(M0+1)]",
    "Z[m] = A[m] - B[m] - (C[m] - D[m])",
    "Z[m] = (A[m] + B[m]) * C[m] / (D[m] * E[m])",
    "Z[m] = A[m] - (B[m] + C[m])",
    "Z[m] = min(A[m], inf)",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_canonical_text_round_trips(text):
    einsum = parse_einsum(text)
    assert einsum.text == text
    assert parse_einsum(einsum.text) == einsum


def test_spacing_and_sum_wrapper_are_normalized():
    einsum = parse_einsum("SD[ p ] = sum( SN[m, p] )")
    assert einsum.text == "SD[p] = SN[m,p]"
    assert einsum.reduce_op == "+"
    assert parse_einsum("GM[p]=max(QK[m,p])").text == "GM[p] = max(QK[m,p])"
    assert str(parse_index("M0*m1 + 1 + m0")) == "m1*M0+m0+1"


def test_parsed_structure():
    einsum = parse_einsum("RM[m1+1,p] = max(RM[m1,p], LM[m1,p])")
    assert einsum.name == "RM"
    assert einsum.output_tensor == "RM"
    assert einsum.reduce_op == "+"
    assert isinstance(einsum.expr, Call) and einsum.expr.func == "max"
    assert einsum.input_tensors == ("RM", "LM")
    assert [str(a) for a in einsum.inputs] == ["RM[m1,p]", "LM[m1,p]"]
    assert einsum.rank_vars() == ("m1", "p")
    assert einsum.reduced_ranks() == ()
    assert einsum.is_recurrence()

    gemm = parse_einsum("QK[m,p] = Q[e,p] * K[e,m]")
    assert gemm.rank_vars() == ("m", "p", "e")
    assert gemm.reduced_ranks() == ("e",)
    assert gemm.is_mac()

    reduction = parse_einsum("GM[p] = max(QK[m,p])")
    assert reduction.reduce_op == "max"
    assert reduction.reduced_ranks() == ("m",)
    assert isinstance(reduction.expr, Access)


def test_inputs_are_distinct_in_order_of_appearance():
    einsum = parse_einsum("Z[m] = B[m] * A[m] + B[m] * C[m]")
    assert einsum.input_tensors == ("B", "A", "C")
    assert len(einsum.inputs) == 3


def test_constants_fold_unary_minus():
    assert parse_einsum("RM[0,p] = -inf").expr == Const(float("-inf"))
    assert parse_einsum("X[m] = -A[m]").expr == Neg(Access("A", ("m",)))
    assert parse_einsum("X[m] = A[m] * -2").expr == BinOp("*", Access("A", ("m",)), Const(-2))


def test_index_affine_form():
    index = parse_index("m1*M0+m0")
    assert index.variables() == ("m1", "m0")
    assert index.size_names() == ("M0",)
    assert index.resolve({"M0": 256}) == ({"m1": 256, "m0": 1}, 0)
    assert index.plain is None
    assert parse_index("m").plain == "m"
    assert parse_index("M1").resolve({"M1": 4}) == ({}, 4)
    assert parse_index("m1+1").value_range({}, {"m1": 4}) == (1, 4)
    assert parse_index("3-m").value_range({}, {"m": 4}) == (0, 3)
    assert parse_index("2*(m+1)") == parse_index("2*m+2")
    assert parse_index("m-m") == IndexExpr.constant(0)
    assert str(parse_index("m-m")) == "0"


def test_einsum_name_and_equality():
    einsum = parse_einsum("RM[m1+1,p] = max(RM[m1,p], LM[m1,p])", name="RM#2")
    assert einsum.name == "RM#2"
    assert parse_einsum(einsum.text, name=einsum.name) == einsum
    assert parse_einsum(einsum.text) != einsum          # the name is part of equality
    built = Einsum("", Access("Z", ("m", "n")),
                   BinOp("*", Access("A", ("m", "k")), Access("B", ("k", "n"))))
    assert built.name == "Z"
    assert built == parse_einsum("Z[m,n] = A[m,k] * B[k,n]")


@pytest.mark.parametrize("text, parts", [
    ("Z[m,n] = A[m,k] * ", ["'Z[m,n] = A[m,k] * '", "expected a tensor, number or function",
                            "column 19"]),
    ("Z[m] = foo(A[m])", ["unknown function 'foo'", "exp", "column 8"]),
    ("Z[m] = A[m*n]", ["not affine", "column 10"]),
    ("Z[m] = A[m", ["expected ',' or ']'", "column 11"]),
    ("Z = A[m]", ["expected '[' after tensor name 'Z'", "column 3"]),
    ("Z[m] = exp(max(A[m]))", ["one-argument max() is a reduction", "column 12"]),
    ("Z[m] = A[m] $ 2", ["unexpected character '$'", "column 13"]),
    ("Z[Mx] = A[m]", ["'Mx' is neither a rank", "column 3"]),
    ("Z[m] = A[m] B[m]", ["unexpected 'B'", "column 13"]),
    ("Z[m] = max(A[m], B[m], C[m])", ["max() takes 2 argument(s), found 3"]),
    ("Z[m] = exp[m]", ["'exp' is reserved"]),
    ("Z[m] = A[1.5]", ["index constants must be integers"]),
    ("Z[m] A[m]", ["expected '='", "column 6"]),
    ("= A[m]", ["expected the output tensor", "column 1"]),
    ("Z[m] = ", ["expected a tensor, number or function, found the end", "column 8"]),
])
def test_syntax_errors_name_the_column(text, parts):
    with pytest.raises(CascadeError) as info:
        parse_einsum(text)
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert part in message


def test_parse_index_errors():
    with pytest.raises(CascadeError, match="not affine"):
        parse_index("m*m1")
    with pytest.raises(CascadeError, match="unexpected"):
        parse_index("m)")


def test_access_accepts_index_strings():
    access = Access("K", ("e", "m1*M0+m0"))
    assert str(access) == "K[e,m1*M0+m0]"
    assert access.variables() == ("e", "m1", "m0")
    assert not access.plain
