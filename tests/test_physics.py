"""The shared physics (archsim.core.physics): the formulas every family composes."""
import math

import pytest

import archsim
from archsim.core import physics


def test_roofline_is_the_slower_of_compute_and_stream():
    assert physics.roofline_time(10.0, 100.0, 5.0) == 20.0     # memory bound
    assert physics.roofline_time(30.0, 100.0, 5.0) == 30.0     # compute bound


@pytest.mark.parametrize("peers", [2, 4, 8])
def test_ring_allreduce_moves_2_p_minus_1_over_p_in_2_p_minus_1_steps(peers):
    bw_t, lat_t, moved = physics.ring_allreduce(1024.0, peers, 64.0, 3.0)
    assert moved == pytest.approx(2 * (peers - 1) / peers * 1024)
    assert bw_t == pytest.approx(moved / 64.0)
    assert lat_t == 2 * (peers - 1) * 3.0


def test_one_peer_or_no_data_costs_nothing():
    assert physics.ring_allreduce(1024.0, 1, 64.0, 3.0) == (0.0, 0.0, 0.0)
    assert physics.ring_allreduce(0.0, 4, 64.0, 3.0) == (0.0, 0.0, 0.0)
    assert physics.one_shot_allreduce(1024.0, 1, 64.0, 3.0) == (0.0, 0.0, 0.0)


def test_one_shot_beats_the_ring_only_when_latency_dominates():
    ring = physics.ring_allreduce(64.0, 8, 64.0, 100.0)
    shot = physics.one_shot_allreduce(64.0, 8, 64.0, 100.0)
    assert sum(shot[:2]) < sum(ring[:2])                      # small message: one step wins
    ring = physics.ring_allreduce(1e9, 8, 64.0, 100.0)
    shot = physics.one_shot_allreduce(1e9, 8, 64.0, 100.0)
    assert sum(ring[:2]) < sum(shot[:2])                      # large message: the ring wins


def test_whole_cycles_rounds_up_forgiving_float_noise():
    assert physics.whole_cycles(0.0) == 0
    assert physics.whole_cycles(-3.0) == 0
    assert physics.whole_cycles(2.0000000001) == 2
    assert physics.whole_cycles(2.01) == 3
    assert physics.whole_cycles(0.1 + 0.2 + 0.7) == 1
    assert physics.whole_cycles(5.0000001, slack=1e-6) == 5


def test_peak_flops_of_a_systolic_design_is_two_per_mac():
    design = archsim.load_design("npu")
    for name, model in design.unit_models.items():
        if model.spec.kind == "systolic_array":
            s = model.spec
            assert physics.peak_flops_per_s(model) == pytest.approx(
                physics.FLOPS_PER_MAC * s.rows * s.cols * s.arrays * model.clock_hz)
            assert math.isfinite(physics.peak_flops_per_s(model))
            break
    else:
        pytest.fail("npu has no systolic array")
