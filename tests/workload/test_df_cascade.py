"""Cascade construction, validation errors, structure queries, DAG and recurrences."""

import networkx as nx
import pytest

from dataflow import Cascade, CascadeError, Tensor, load_cascade, parse_einsum

ATTENTION = """
QK[m,p] = Q[e,p] * K[e,m]
GM[p] = max(QK[m,p])
SN[m,p] = exp(QK[m,p] - GM[p])
SD[p] = sum(SN[m,p])
A[m,p] = SN[m,p] / SD[p]
AV[f,p] = A[m,p] * V[f,m]
"""
SIZES = {"m": 8, "p": 5, "e": 3, "f": 4}


def attention(**sizes):
    return Cascade.from_text(ATTENTION, {**SIZES, **sizes}, name="attention")


def test_from_text_infers_tensors_and_names():
    cascade = attention()
    assert [e.name for e in cascade.einsums] == ["QK", "GM", "SN", "SD", "A", "AV"]
    assert cascade.tensors["Q"] == Tensor("Q", ("e", "p"), 16)
    assert cascade.shape("K") == (3, 8)
    assert cascade.shape("AV") == (4, 5)
    assert cascade.tensor_bytes("QK") == 8 * 5 * 2
    assert cascade.inputs() == ["Q", "K", "V"]
    assert cascade.outputs() == ["AV"]
    assert cascade.intermediates() == ["QK", "GM", "SN", "SD", "A"]
    assert cascade.producers("SN") == ["SN"]
    assert cascade.consumers("SN") == ["SD", "A"]
    assert cascade.consumers("AV") == []
    assert cascade.iteration_space("QK") == {"m": 8, "p": 5, "e": 3}
    assert cascade.points("AV") == 4 * 8 * 5
    assert cascade.topological_order() == ["QK", "GM", "SN", "SD", "A", "AV"]


def test_from_text_accepts_lines_comments_and_declarations():
    cascade = Cascade.from_text(
        ["# a comment", "", "Z[m,n] = A[m,k] * B[k,n]   # the GEMM"],
        {"m": 2, "k": 3, "n": 4}, default_bits=8,
        tensors={"A": {"ranks": ["m", "k"], "bits": 32}, "Z": Tensor("Z", ("m", "n"), 4)})
    assert cascade.tensors["A"].bits == 32
    assert cascade.tensors["B"].bits == 8
    assert cascade.tensor_bytes("Z") == 4      # 8 elements * 4 bits
    assert cascade.name == "cascade"


def test_tensor_bytes_rounds_up():
    cascade = Cascade.from_text("Y[m] = X[m]", {"m": 3}, default_bits=1)
    assert cascade.tensor_bytes("X") == 1


def test_dag_of_attention():
    graph = attention().dag()
    assert isinstance(graph, nx.DiGraph)
    assert set(graph.edges()) == {("QK", "GM"), ("QK", "SN"), ("GM", "SN"), ("SN", "SD"),
                                  ("SN", "A"), ("SD", "A"), ("A", "AV")}
    assert graph.edges["SD", "A"]["tensors"] == ["SD"]
    assert graph.nodes["QK"]["einsum"].text == "QK[m,p] = Q[e,p] * K[e,m]"
    assert nx.is_directed_acyclic_graph(graph)
    assert list(nx.topological_sort(graph))[0] == "QK"


def test_one_pass_attention_dag_and_recurrences():
    cascade = load_cascade("attention_1pass", {"m": 12, "m1": 3, "m0": 4, "p": 5, "e": 3,
                                               "f": 4})
    graph = cascade.dag()
    assert nx.is_directed_acyclic_graph(graph)
    assert not any(u == v for u, v in graph.edges())
    assert graph.has_edge("RM", "RM#2")            # init -> update
    assert graph.has_edge("RM#2", "SLN")
    assert not graph.has_edge("RM", "SLN")          # SLN reads RM[m1+1,p]: never the init
    assert graph.has_edge("RD", "SPD") and graph.has_edge("SPD", "RD#2")
    assert not graph.has_edge("RD#2", "SPD")        # loop-carried, not a DAG edge
    assert cascade.producers("RM") == ["RM", "RM#2"]
    assert cascade.outputs() == ["AV"]
    recurrences = cascade.recurrences()
    assert [(r.einsums, r.rank, r.tensors) for r in recurrences] == [
        (("RM#2",), "m1", ("RM",)), (("SPD", "RD#2"), "m1", ("RD",)),
        (("SPNV", "RNV#2"), "m1", ("RNV",))]
    assert cascade.shape("RM") == (4, 5)             # extents {m1: M1+1}


def test_self_recurrence_without_readers_is_an_output():
    cascade = Cascade.from_text("S[0] = 0\nS[i+1] = S[i] + A[i]", {"i": 4},
                                tensors={"S": {"ranks": ["i"], "extents": {"i": "I+1"}}})
    assert cascade.outputs() == ["S"]
    assert cascade.inputs() == ["A"]
    assert [e.name for e in cascade.einsums] == ["S", "S#2"]


# ----------------------------------------------------------------------------- errors

def error_of(text, ranks=None, **kwargs):
    with pytest.raises(CascadeError) as info:
        Cascade.from_text(text, ranks or SIZES, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_rank():
    message = error_of("GM[p] = max(QK[m,p])\nSN[m,p] = exp(QK[m,p] - GM[q])")
    assert message == ("einsums[1] 'SN[m,p] = exp(QK[m,p] - GM[q])': unknown rank 'q' "
                       "(ranks: m, p, e, f)")


def test_unknown_size_in_index():
    message = error_of("Z[m] = A[m+Q]", tensors={"A": {"ranks": ["m"]}})
    assert "einsums[0] 'Z[m] = A[m+Q]'" in message
    assert "unknown rank size 'Q'" in message


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "8"])
def test_rank_size_must_be_a_positive_integer(size):
    message = error_of("Y[m] = X[m]", {"m": size})
    assert message.startswith("ranks.m: expected a positive integer size, found")


def test_wrong_number_of_indices():
    message = error_of("GM[p] = max(QK[m,p])\nX[p] = QK[p]")
    assert "einsums[1] 'X[p] = QK[p]'" in message
    assert "QK[p] has 1 indices but QK has 2 ranks (m, p)" in message


def test_index_range_exceeds_extent():
    message = error_of("Y[m] = X[m]\nZ[p] = X[p]", {"m": 4, "p": 8})
    assert "einsums[1] 'Z[p] = X[p]'" in message
    assert "ranges over [0, 7] but the extent is 4" in message
    message = error_of("Y[m] = X[m+1]", {"m": 4}, tensors={"X": {"ranks": ["m"]}})
    assert "index 'm+1' of X[m+1]" in message and "[1, 4]" in message
    message = error_of("Y[m] = X[m-1]", {"m": 4}, tensors={"X": {"ranks": ["m"]}})
    assert "[-1, 2]" in message


def test_differently_named_rank_allowed_when_range_fits():
    cascade = Cascade.from_text("Y[m] = X[m]\nZ[p] = Y[p]", {"m": 8, "p": 4})
    assert cascade.shape("Y") == (8,)


def test_read_before_written():
    message = error_of("Y[m] = X[m]\nX[m] = A[m]", {"m": 4})
    assert message.startswith("einsums[0] 'Y[m] = X[m]': reads X before any einsum writes")
    message = error_of("S[i+1] = S[i] + A[i]\nS[0] = 0", {"i": 4},
                       tensors={"S": {"ranks": ["i"], "extents": {"i": "I+1"}}})
    assert "einsums[0] 'S[i+1] = S[i] + A[i]': reads S before" in message


def test_dependency_cycle_that_does_not_advance():
    message = error_of("Y[m] = 0\nX[m] = Y[m] + 1\nY[m] = X[m]", {"m": 4})
    assert "dependency cycle" in message
    assert "'X[m] = Y[m] + 1' -> 'Y[m] = X[m]'" in message
    assert "does not advance along any rank" in message


def test_undeclared_non_plain_access_must_be_declared():
    message = error_of("RM[0,p] = -inf", {"p": 4})
    assert "cannot infer the ranks of RM from RM[0,p]; declare it" in message
    message = error_of("Y[m] = X[m,m]", {"m": 4})
    assert "cannot infer the ranks of X" in message


def test_undeclared_tensor_in_constructor():
    with pytest.raises(CascadeError, match=r"tensor 'X' is not declared \(tensors: Y\)"):
        Cascade("c", {"m": 4}, {"Y": Tensor("Y", ("m",))}, [parse_einsum("Y[m] = X[m]")])


def test_tensor_declaration_errors():
    with pytest.raises(CascadeError, match="tensors.X.bits: expected a positive integer"):
        Tensor("X", ("m",), 0)
    with pytest.raises(CascadeError, match="tensors.X.ranks: expected lowercase rank names"):
        Tensor("X", ("M",))
    with pytest.raises(CascadeError, match="each rank may appear once"):
        Tensor("X", ("m", "m"))
    with pytest.raises(CascadeError, match=r"tensors.X.extents.n: 'n' is not a rank of X"):
        Tensor("X", ("m",), extents={"n": 3})
    message = error_of("Y[m] = X[m]", {"m": 4}, tensors={"X": {"ranks": ["z"]}})
    assert message == "tensors.X.ranks: unknown rank 'z' (ranks: m)"
    message = error_of("Y[m] = X[m]", {"m": 4},
                       tensors={"X": {"ranks": ["m"], "extents": {"m": "m+1"}}})
    assert "uses rank variable 'm'" in message
    message = error_of("Y[m] = X[m]", {"m": 4},
                       tensors={"X": {"ranks": ["m"], "extents": {"m": "M-4"}}})
    assert "tensors.X.extents.m: expected a positive extent" in message
    with pytest.raises(CascadeError, match="declared under key 'A' but named 'B'"):
        Cascade("c", {"m": 4}, {"A": Tensor("B", ("m",))}, [])


def test_duplicate_einsum_names():
    with pytest.raises(CascadeError, match=r"einsums\[1\] 'Z\[m\] = X\[m\]': duplicate "
                                           r"einsum name 'Y' \(also einsums\[0\]\)"):
        Cascade("c", {"m": 4}, {t: Tensor(t, ("m",)) for t in "XYZ"},
                [parse_einsum("Y[m] = X[m]"), parse_einsum("Z[m] = X[m]", name="Y")])


def test_unknown_einsum_and_tensor_lookups():
    cascade = attention()
    with pytest.raises(CascadeError, match="has no einsum 'nope'"):
        cascade.ops("nope")
    with pytest.raises(CascadeError, match="has no tensor 'nope'"):
        cascade.shape("nope")


def test_with_ranks_and_equality():
    small = attention()
    bigger = small.with_ranks(m=16)
    assert bigger.ranks["m"] == 16 and bigger.shape("QK") == (16, 5)
    assert bigger != small
    assert bigger.with_ranks(m=8) == small
    with pytest.raises(CascadeError, match="unknown rank 'z'"):
        small.with_ranks(z=3)
    with pytest.raises(TypeError):
        small.ranks["m"] = 3        # read-only


def test_read_of_elements_a_later_einsum_writes():
    message = error_of("X[0] = 0\nY[i] = X[i]\nX[i+1] = A[i]", {"i": 4},
                       tensors={"X": {"ranks": ["i"], "extents": {"i": "I+1"}}})
    assert message == ("einsums[1] 'Y[i] = X[i]': reads elements of X that a later einsum "
                       "writes (einsums[2] 'X[i+1] = A[i]'); move it after that einsum")


def test_recurrence_may_not_reduce_its_loop_rank():
    message = error_of("S[0,j] = 0\nT[j] = S[i,j]\nS[i+1,j] = T[j]", {"i": 4, "j": 3},
                       tensors={"S": {"ranks": ["i", "j"], "extents": {"i": "I+1"}}})
    assert "dependency cycle 'T[j] = S[i,j]' -> 'S[i+1,j] = T[j]'" in message


def test_output_must_be_one_to_one():
    message = error_of("Y[i+j] = X[i,j]", {"i": 4, "j": 3},
                       tensors={"Y": {"ranks": ["i"], "extents": {"i": "I+J"}}})
    assert message == ("einsums[0] 'Y[i+j] = X[i,j]': output Y[i+j] is not one-to-one: several "
                       "iteration points would write the same element of Y")
    flatten = Cascade.from_text("Y[j*I+i] = X[i,j]", {"i": 4, "j": 3},
                                tensors={"Y": {"ranks": ["i"], "extents": {"i": "I*J"}}})
    assert flatten.shape("Y") == (12,)
    diagonal = Cascade.from_text("Y[i,i] = X[i]", {"i": 4},
                                 tensors={"Y": {"ranks": ["i", "j"], "extents": {"j": "I"}}})
    assert diagonal.einsum_bytes("Y") == (8, 8)
