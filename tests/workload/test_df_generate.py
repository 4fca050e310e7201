"""Random cascades: determinism, speed and (with hypothesis) validity and finite evaluation."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow import Cascade, CascadeError, random_cascade


def test_deterministic_for_a_seed():
    assert random_cascade(60, seed=7) == random_cascade(60, seed=7)
    assert random_cascade(60, seed=7).to_yaml() == random_cascade(60, seed=7).to_yaml()
    assert random_cascade(60, seed=7) != random_cascade(60, seed=8)


def test_mixes_einsum_kinds():
    cascade = random_cascade(200, seed=3)
    kinds = {"gemm": 0, "reduce": 0, "elementwise": 0}
    for einsum in cascade.einsums:
        if cascade.contraction(einsum.name) is not None:
            kinds["gemm"] += 1
        elif einsum.reduced_ranks():
            kinds["reduce"] += 1
        else:
            kinds["elementwise"] += 1
    assert all(count >= 10 for count in kinds.values()), kinds
    assert cascade.dag().number_of_edges() >= 100


def test_thousand_einsums():
    """Generation speed is a benchmark (benchmarks/bench_simulate.py), not a test."""
    cascade = random_cascade(1000, seed=11)
    assert len(cascade.einsums) == 1000
    assert cascade.dag().number_of_nodes() == 1000


def test_argument_errors():
    with pytest.raises(CascadeError, match="n_einsums must be a positive integer"):
        random_cascade(0, seed=1)
    with pytest.raises(CascadeError, match="min_rank_size"):
        random_cascade(3, seed=1, max_rank_size=2, min_rank_size=3)


@settings(max_examples=30, deadline=None)
@given(n_einsums=st.integers(1, 30), seed=st.integers(0, 2**32 - 1),
       max_rank_size=st.integers(1, 4))
def test_random_cascades_validate_and_evaluate_finite(n_einsums, seed, max_rank_size):
    cascade = random_cascade(n_einsums, seed, max_rank_size=max_rank_size)
    assert len(cascade.einsums) == n_einsums
    # Valid by construction: rebuilding from the parts validates again.
    again = Cascade(cascade.name, dict(cascade.ranks), dict(cascade.tensors), cascade.einsums)
    assert again == cascade
    for einsum in cascade.einsums:
        ops = cascade.ops(einsum.name)
        assert all(isinstance(n, int) and n > 0 for n in ops.values())
        assert isinstance(cascade.total_ops(einsum.name), int)
        read_bytes, write_bytes = cascade.einsum_bytes(einsum.name)
        assert read_bytes >= 0 and write_bytes > 0
    rng = np.random.default_rng(seed)
    inputs = {name: rng.uniform(-1, 1, size=cascade.shape(name)) for name in cascade.inputs()}
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        values = cascade.evaluate(inputs)
    for einsum in cascade.einsums:
        assert np.all(np.isfinite(values[einsum.output_tensor])), einsum.text
