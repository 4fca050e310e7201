"""The evaluator end to end on the npu design: numbers worked out by hand from the design file."""
import json

import pytest

import dataflow
from archsim import Mapping, MappingError, load_design, simulate
from archsim.units.systolic import gemm_compute_cycles

NPU = load_design("sa128")
HBM_B_PER_CYCLE = 1.024e12 / 1e9  # designs/sa128.yaml: hbm bandwidth_bytes_per_s / clock_hz


def gemm(m, n, k, bits=16, name="gemm"):
    return dataflow.Cascade.from_text(["Z[m,n] = A[m,k] * B[k,n]"], {"m": m, "n": n, "k": k},
                                      name=name, default_bits=bits)


def test_gemm_that_fits_moves_compulsory_bytes_only():
    c = gemm(256, 256, 256)
    r = simulate(NPU, c)
    t = r.timeline[0]
    assert t.unit == "sa"
    assert t.compute_cycles == gemm_compute_cycles(256, 256, 256, 128, 128, "ws")
    # A, B read once from HBM, Z written once (2 bytes per element)
    assert r.memory["hbm"].read_bytes == 2 * (256 * 256) * 2
    assert r.memory["hbm"].write_bytes == 256 * 256 * 2
    # first tiles load before the stream, the last output tile drains after it
    assert r.cycles > t.compute_cycles
    assert r.units["sa"].busy_cycles == r.cycles
    assert r.units["sa"].utilization == pytest.approx(256 ** 3 / (128 * 128 * r.cycles))
    assert r.energy_breakdown_pj["sa"] == pytest.approx(256 ** 3 * 17.16)
    assert r.energy_breakdown_pj["hbm"] == pytest.approx(3 * 256 * 256 * 2 * 31.2)
    assert r.energy_pj == pytest.approx(sum(r.energy_breakdown_pj.values()))


def test_gemv_goes_to_the_vector_unit_and_is_memory_bound_when_bandwidth_is_low():
    c = gemm(1, 4096, 4096)
    r = simulate(NPU, c)
    # WS array: 32x32 folds of 1 + 256 + 126 cycles; vector unit: 16.8M MACs on 128 lanes
    assert gemm_compute_cycles(1, 4096, 4096, 128, 128, "ws") == 392192
    assert r.timeline[0].unit == "vu"
    assert r.timeline[0].compute_cycles == 4096 * 4096 // 128 + 1
    slow = load_design("sa128", ["memories.hbm.bandwidth_bytes_per_s=1.0e+11"])
    r2 = simulate(slow, c, r.mapping)
    weight_bytes = 4096 * 4096 * 2
    assert r2.cycles >= weight_bytes / 100.0
    assert r2.cycles == pytest.approx((weight_bytes + 4096 * 2 * 2) / 100.0, rel=1e-3)
    assert r2.units["vu"].stall_cycles > 0
    assert r2.memory["hbm"].bandwidth_utilization == pytest.approx(1.0, rel=1e-3)


def test_vector_einsum_by_hand():
    c = dataflow.Cascade.from_text(["Y[m,n] = exp(X[m,n])"], {"m": 128, "n": 128})
    r = simulate(NPU, c)
    t = r.timeline[0]
    assert t.unit == "vu" and t.ops == {"exp": 128 * 128}
    assert t.compute_cycles == 128 * 128 // 128 + 1  # lanes, plus the 1-cycle pipeline latency
    nbytes = 128 * 128 * 2
    assert r.memory["hbm"].read_bytes == nbytes and r.memory["hbm"].write_bytes == nbytes
    # spm: fill X, unit reads X, unit writes Y, drain Y
    assert r.memory["spm"].read_bytes == 2 * nbytes and r.memory["spm"].write_bytes == 2 * nbytes
    assert r.cycles == t.compute_cycles  # 32 KiB each way at 1 KiB/cycle hides under compute
    assert r.energy_breakdown_pj["vu"] == pytest.approx(128 * 128 * 94.6)


def test_low_bandwidth_turns_a_gemm_memory_bound():
    c = gemm(512, 512, 512)
    fast = simulate(NPU, c)
    slow_d = load_design("sa128", ["memories.hbm.bandwidth_bytes_per_s=1.0e+9"])  # 1 B/cycle
    slow = simulate(slow_d, c, fast.mapping)
    offchip = slow.memory["hbm"].read_bytes + slow.memory["hbm"].write_bytes
    assert slow.cycles == pytest.approx(offchip / 1.0, rel=1e-6)
    assert slow.units["sa"].stall_cycles == slow.cycles - slow.timeline[0].compute_cycles


def test_independent_tasks_overlap_and_share_bandwidth():
    c = dataflow.Cascade.from_text(
        ["Z[m,n] = A[m,k] * B[k,n]", "Y[i,j] = exp(X[i,j])"],
        {"m": 512, "n": 512, "k": 512, "i": 1024, "j": 1024})
    r = simulate(NPU, c)
    units = {t.einsum: t for t in r.timeline}
    assert units["Z"].unit == "sa" and units["Y"].unit == "vu"
    assert units["Z"].start_cycle == 0 and units["Y"].start_cycle == 0
    assert r.cycles < sum(t.end_cycle - t.start_cycle for t in r.timeline)


def test_dependent_task_waits_for_its_producer():
    c = dataflow.load_cascade("attention", ranks_override={"m": 256, "p": 256})
    r = simulate(NPU, c)
    end = {t.einsum: t.end_cycle for t in r.timeline}
    start = {t.einsum: t.start_cycle for t in r.timeline}
    for u, v in c.dag().edges():
        assert start[v] >= end[u], (u, v)


def test_larger_array_via_override():
    c = gemm(1024, 1024, 1024)
    r1 = simulate("sa128", c)
    r2 = simulate("sa128", c, overrides=("units.sa.rows=256", "units.sa.cols=256"))
    assert r2.timeline[0].compute_cycles < r1.timeline[0].compute_cycles
    assert r2.design_hash != r1.design_hash
    assert r2.overrides == ["units.sa.rows=256", "units.sa.cols=256"]


def test_results_are_deterministic():
    c = dataflow.random_cascade(30, seed=7, max_rank_size=64)
    a = simulate(NPU, c).to_dict()
    b = simulate(NPU, c).to_dict()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_result_identity_fields():
    c = gemm(64, 64, 64, name="tiny")
    d = simulate(NPU, c).to_dict(timeline=False)
    assert d["design"] == "sa128" and d["workload"] == "tiny" and d["mapper"] == "greedy"
    assert len(d["design_hash"]) == 12 and len(d["workload_hash"]) == 12
    assert d["archsim_version"]
    assert "timeline" not in d


# ------------------------------------------------------------------ impossible mappings
def _base_mapping(c):
    return simulate(NPU, c).mapping


@pytest.mark.parametrize("mutate, match", [
    (lambda m: m.binding.pop("GM"), "not bound"),
    (lambda m: m.binding.__setitem__("GM", "tpu"), "unknown unit 'tpu'"),
    (lambda m: m.binding.__setitem__("GM", "sa"), "cannot run on 'sa'"),
    (lambda m: m.order.reverse(), "before"),
    (lambda m: m.order.pop(), "every einsum exactly once"),
    (lambda m: m.placement.pop("QK"), "no placement"),
    (lambda m: m.placement.__setitem__("QK", "l3"), "unknown memory"),
    (lambda m: m.placement.__setitem__("QK", "spm"), "more than its capacity"),
])
def test_impossible_mappings_say_why(mutate, match):
    c = dataflow.load_cascade("attention")  # QK is 1024x1024 fp16 = 2 MiB: cannot sit in spm
    m = _base_mapping(c)
    m2 = Mapping.from_dict(json.loads(json.dumps(m.to_dict())))
    mutate(m2)
    with pytest.raises(MappingError, match=match):
        simulate(NPU, c, m2)


def test_tiling_that_does_not_fit_is_rejected():
    c = gemm(1024, 1024, 1024)
    m = Mapping(binding={"Z": "sa"}, order=["Z"], placement={"A": "hbm", "B": "hbm", "Z": "hbm"},
                tiling={"Z": {"M": 1024, "N": 1024, "K": 1024, "order": "mnk"}})
    with pytest.raises(MappingError, match="need .* bytes of double-buffered staging"):
        simulate(NPU, c, m)
    m.tiling["Z"]["order"] = "mmk"
    with pytest.raises(MappingError, match="not a permutation"):
        simulate(NPU, c, m)


def test_scratchpad_too_small_for_any_tile():
    d = load_design("sa128", ["memories.spm.capacity_bytes=64"])
    with pytest.raises(MappingError, match="no unit of sa128 can run einsum 'Z'"):
        simulate(d, gemm(256, 256, 256))


def test_mapping_json_round_trip(tmp_path):
    c = dataflow.load_cascade("mlp")
    m = simulate(NPU, c).mapping
    p = tmp_path / "m.json"
    m.save(p)
    m2 = Mapping.load(p)
    assert m2.to_dict() == m.to_dict()
    assert simulate(NPU, c, m2).cycles == simulate(NPU, c, m).cycles
    assert "placement:" in m.describe(c) and "sa" in m.describe(c)


def test_exports(tmp_path):
    r = simulate(NPU, dataflow.load_cascade("attention", ranks_override={"m": 256, "p": 256}))
    r.to_json(tmp_path / "r.json")
    r.to_csv(tmp_path / "r.csv")
    r.to_chrome_trace(tmp_path / "t.json")
    r.plot(tmp_path / "p.png")
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["cycles"] == r.cycles and len(d["timeline"]) == 6
    rows = (tmp_path / "r.csv").read_text().strip().splitlines()
    assert rows[0].startswith("einsum,unit,start_cycle") and len(rows) == 7
    tr = json.loads((tmp_path / "t.json").read_text())
    slices = [e for e in tr["traceEvents"] if e["ph"] == "X" and e.get("cat") == "task"]
    assert {e["name"] for e in slices} == {"QK", "GM", "SN", "SD", "A", "AV"}
    qk = next(e for e in slices if e["name"] == "QK")
    assert qk["dur"] == pytest.approx((r.timeline[0].end_cycle - r.timeline[0].start_cycle) / 1e3)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "cycles" in r.summary() and "utilization" in r.summary()
