"""HBM device model: command-level scheduler, independent trace checker, closed forms.

The spec is NeuPIMs' HBM2 (../shared/reference/neupims.md): 32 channels x 32 banks (4 groups of
8), 1 KiB rows, 128-bit bus, BL4, tCK 1 ns, CL/tRCD/tRP 14, tRAS 34, tRRD 4/6, tFAW 30,
tCCD 1/2, tWR 16, tRTP 6/4, tRFC 260, tREFI 3900; PIM: 16 multipliers per bank, 4-bank GACT.
"""
from __future__ import annotations

import numpy as np
import pytest

from archsim.units.dram_commands import (
    ACT,
    GACT,
    GWRITE,
    MAC,
    PRE,
    PREA,
    PREP,
    RD,
    READRES,
    REF,
    WR,
    ScheduleError,
    check_trace,
    schedule,
)
from archsim.units.dram_spec import DramSpec, PimGeometry
from archsim.units.hbm import HbmModel

NEUPIMS_TIMING = dict(cl=14, trcd=14, trp=14, tras=34, trrd_s=4, trrd_l=6, tfaw=30, tccd_s=1,
                      tccd_l=2, twr=16, trtp_s=4, trtp_l=6, trfc=260, trefi=3900)
NEUPIMS_ORG = dict(channels=32, bank_groups=4, banks_per_group=8, rows=32768, row_bytes=1024,
                   bus_bits=128, burst_length=4, tck_s=1.0e-9)
ENERGY = dict(act_pj=900.0, pre_pj=300.0, rd_pj=500.0, wr_pj=550.0, ref_pj=20000.0)


def make_spec(org=None, **timing) -> DramSpec:
    return DramSpec(organization={**NEUPIMS_ORG, **(org or {})},
                    timing={**NEUPIMS_TIMING, **timing}, energy=ENERGY)


def make_pim(row_buffers=2, **kw) -> PimGeometry:
    return PimGeometry(multipliers_per_bank=16, gact_banks=4, row_buffers=row_buffers, **kw)


SPEC = make_spec()
PIM = make_pim()
# hand-made traces below space GACTs by tRRD only: a device whose GACT is one tFAW entry
PIM_W1 = make_pim(gact_faw_weight=1)
MODEL = HbmModel(SPEC, PIM)
TM = SPEC.timing


def violations(trace, spec=SPEC, pim=PIM_W1):
    cmds = [c for _, c in trace]
    return check_trace(cmds, [t for t, _ in trace], spec, pim)


def assert_clean(res, spec=SPEC, pim=PIM):
    v = check_trace(res.commands, res.issue, spec, pim)
    assert v == [], v[:5]


# -- (a) the checker accepts what the scheduler produces ----------------------------------------
@pytest.mark.parametrize("make", [
    lambda m: m.stream_read_program(300 << 10),
    lambda m: m.stream_read_program(100_000),
    lambda m: m.pim_gemv_program(1000, 2000, 128),
    lambda m: m.pim_gemv_program(128, 3000, 128),
    lambda m: m.pim_gemv_program(77, 333, 96),
    lambda m: m.mixed_program(300, 1024, 128),
], ids=["stream_300k", "stream_odd", "gemv", "gemv_transposed", "gemv_odd", "mixed"])
@pytest.mark.parametrize("row_buffers", [1, 2])
def test_scheduler_traces_pass_the_checker(make, row_buffers):
    m = HbmModel(SPEC, make_pim(row_buffers))
    res = m.schedule(make(m), record=True)
    assert res.refreshes >= 1 or res.cycles < TM.trefi
    assert_clean(res, SPEC, m.pim)
    assert len(res.issue) == sum(res.counts.values())


@pytest.mark.parametrize("variant", [
    dict(timing=dict(cwl=4, twtr_s=2, twtr_l=6)),
    dict(timing=dict(tfaw=200)),
    dict(org=dict(row_bytes=256)),
    dict(org=dict(pseudo_channels=2)),
    dict(timing=dict(trefi=1000, trfc=300)),
])
def test_scheduler_traces_pass_the_checker_on_other_parts(variant):
    spec = make_spec(variant.get("org"), **variant.get("timing", {}))
    m = HbmModel(spec, make_pim(global_buffer_bytes=4096))
    for prog in (m.stream_read_program(200 << 10), m.pim_gemv_program(500, 1500, 128),
                 m.mixed_program(100, 600, 128)):
        assert_clean(m.schedule(prog, record=True), spec, m.pim)


def test_refresh_reopens_rows_the_next_op_reads():
    spec = make_spec(trefi=300, trfc=100)
    g = (0, 1, 2, 3)
    prog = [[(GACT, g)] + [(MAC, g)] * 50, [(MAC, g)] * 100 + [(PREP, g)],
            [(ACT, 5), (RD, 5)], [(RD, 5)] * 200 + [(PRE, 5)]]
    res = schedule(prog, spec, PIM, record=True)
    assert res.refreshes >= 2
    assert res.counts["GACT"] == 2 and res.counts["ACT"] >= 2      # reopened after a REF
    assert res.counts["PREA"] == res.refreshes
    assert_clean(res, spec)


# -- exact scheduling on small hand-checked programs ---------------------------------------------
def test_hand_schedule_single_bank():
    res = schedule([[(ACT, 0), (RD, 0), (PRE, 0), (ACT, 0)]], SPEC, record=True)
    # RD waits tRCD; PRE waits tRAS (34 > RD + tRTP 20); ACT waits tRP
    assert res.issue.tolist() == [0, 14, 34, 48]
    assert res.cycles == 49
    res = schedule([[(ACT, 0), (WR, 0), (WR, 0), (WR, 0), (PRE, 0)]], SPEC, record=True)
    assert res.issue.tolist() == [0, 14, 16, 18, 18 + 0 + 2 + 16]  # tWR after the write data


def test_streaming_bursts_are_back_to_back():
    res = MODEL.schedule(MODEL.stream_read_program(64 << 10), record=True)
    rd = res.issue[np.array([c[0] == RD for c in res.commands])]
    assert rd[0] == TM.trcd
    assert np.all(np.diff(rd) == 2)                                  # bus-bound: one burst / 2 tCK
    assert res.cycles == TM.trcd + TM.cl + 2 * len(rd)


def test_gact_spends_its_banks_of_the_tfaw_budget():
    prog = [[(GACT, (0, 1, 2, 3)), (GACT, (4, 5, 6, 7)), (GACT, (8, 9, 10, 11)),
             (GACT, (12, 13, 14, 15)), (ACT, 16)]]
    # default: a 4-bank GACT draws 4 ACTs' worth of power, so it fills the tFAW window alone
    res = schedule(prog, SPEC, PIM, record=True)
    assert res.issue.tolist() == [0, 30, 60, 90, 120]
    assert_clean(res)
    # a device sized for group activates: one window entry each -> tRRD_L apart, 5th waits tFAW
    one = make_pim(gact_faw_weight=1)
    res = schedule(prog, SPEC, one, record=True)
    assert res.issue.tolist() == [0, 6, 12, 18, 30]
    assert_clean(res, pim=one)
    # the checker enforces the weight: the one-entry trace breaks the default budget
    assert any(v.startswith("tFAW:") for v in check_trace(res.commands, res.issue, SPEC, PIM))


def test_column_and_bus_spacing():
    prog = [[(ACT, 0), (ACT, 1), (RD, 0), (RD, 1), (RD, 0)]]
    res = schedule(prog, SPEC, record=True)
    # RD0 at tRCD; RD1 waits its own tRCD; RD0 again limited by the data bus (RD1's burst)
    assert res.issue.tolist() == [0, 4, 14, 18, 20]
    prog = [[(GACT, tuple(range(32)))] + [(MAC, None)] * 3]
    res = schedule(prog, SPEC, PIM, record=True)
    assert res.issue.tolist() == [0, 14, 16, 18]                     # all-bank MACs: tCCD_L


def test_row_buffers():
    prog = [[(ACT, 0), (GACT, (0, 1, 2, 3)), (RD, 0), (MAC, (0, 1, 2, 3)), (PREP, (0, 1, 2, 3)),
             (PRE, 0)]]
    assert_clean(schedule(prog, SPEC, PIM, record=True))
    with pytest.raises(ScheduleError):
        schedule(prog, SPEC, make_pim(1))                            # one buffer: already open
    with pytest.raises(ScheduleError):
        schedule([[(RD, 3)]], SPEC)                                  # closed bank
    with pytest.raises(ScheduleError):
        schedule([[(ACT, 3), (REF, None)]], SPEC)                    # REF with an open row
    # string kinds are accepted
    assert schedule([[("ACT", 2), ("RD", 2)]], SPEC).counts["RD"] == 1


def test_pre_to_a_closed_bank_is_a_nop_slot():
    res = schedule([[(PRE, 0), (ACT, 0)]], SPEC, record=True)
    assert res.issue.tolist() == [0, 1]


# -- (a) the checker rejects each kind of violation ----------------------------------------------
G4 = (0, 1, 2, 3)
BAD_TRACES = {
    # name: (violating trace, corrected trace, spec overrides)
    "tRCD": ([(0, (ACT, 0)), (5, (RD, 0))], [(0, (ACT, 0)), (14, (RD, 0))], {}),
    "tRP": ([(0, (ACT, 0)), (40, (PRE, 0)), (45, (ACT, 0))],
            [(0, (ACT, 0)), (40, (PRE, 0)), (54, (ACT, 0))], {}),
    "tRAS": ([(0, (ACT, 0)), (20, (PRE, 0))], [(0, (ACT, 0)), (34, (PRE, 0))], {}),
    "tRTP": ([(0, (ACT, 0)), (30, (RD, 0)), (33, (PRE, 0))],
             [(0, (ACT, 0)), (30, (RD, 0)), (36, (PRE, 0))], {}),
    "tWR": ([(0, (ACT, 0)), (20, (WR, 0)), (35, (PRE, 0))],
            [(0, (ACT, 0)), (20, (WR, 0)), (38, (PRE, 0))], {}),
    "tRRD_S": ([(0, (ACT, 0)), (2, (ACT, 1))], [(0, (ACT, 0)), (4, (ACT, 1))], {}),
    "tRRD_L": ([(0, (ACT, 0)), (5, (ACT, 4))], [(0, (ACT, 0)), (6, (ACT, 4))], {}),
    "tRRD_GACT": ([(0, (GACT, G4)), (4, (ACT, 9))], [(0, (GACT, G4)), (6, (ACT, 9))], {}),
    "tFAW": ([(0, (ACT, 0)), (4, (ACT, 1)), (8, (ACT, 2)), (12, (ACT, 3)), (16, (ACT, 5))],
             [(0, (ACT, 0)), (4, (ACT, 1)), (8, (ACT, 2)), (12, (ACT, 3)), (30, (ACT, 5))], {}),
    "tCCD_L": ([(0, (GACT, G4)), (20, (MAC, G4)), (21, (MAC, G4))],
               [(0, (GACT, G4)), (20, (MAC, G4)), (22, (MAC, G4))], {}),
    "tCCD_S": ([(0, (GACT, (0,))), (4, (GACT, (1,))), (20, (MAC, (0,))), (21, (MAC, (1,)))],
               [(0, (GACT, (0,))), (4, (GACT, (1,))), (20, (MAC, (0,))), (22, (MAC, (1,)))],
               dict(tccd_s=2, tccd_l=3)),
    "bus": ([(0, (ACT, 0)), (4, (ACT, 1)), (20, (RD, 0)), (21, (RD, 1))],
            [(0, (ACT, 0)), (4, (ACT, 1)), (20, (RD, 0)), (22, (RD, 1))], {}),
    "bus-order": ([(0, (ACT, 0)), (20, (RD, 0)), (25, (WR, 0))],
                  [(0, (ACT, 0)), (20, (RD, 0)), (36, (WR, 0))], {}),
    "tWTR": ([(0, (ACT, 0)), (6, (ACT, 4)), (20, (WR, 0)), (25, (RD, 4))],
             [(0, (ACT, 0)), (6, (ACT, 4)), (20, (WR, 0)), (30, (RD, 4))],
             dict(twtr_s=3, twtr_l=8)),
    "gbuf": ([(0, (GACT, G4)), (13, (GWRITE, None)), (16, (MAC, G4))],
             [(0, (GACT, G4)), (13, (GWRITE, None)), (19, (MAC, G4))], dict(cwl=4)),
    "tRFC": ([(0, (REF, None)), (100, (ACT, 0))], [(0, (REF, None)), (260, (ACT, 0))], {}),
    "tRP_REF": ([(0, (ACT, 0)), (40, (PRE, 0)), (45, (REF, None))],
                [(0, (ACT, 0)), (40, (PRE, 0)), (54, (REF, None))], {}),
    "state_REF_open": ([(0, (ACT, 0)), (50, (REF, None))],
                       [(0, (ACT, 0)), (34, (PREA, None)), (48, (REF, None))], {}),
    "state_closed": ([(0, (ACT, 0)), (14, (RD, 1))], [(0, (ACT, 1)), (14, (RD, 1))], {}),
    "state_pim_buffer": ([(0, (ACT, 0)), (14, (MAC, (0,)))],
                         [(0, (GACT, (0,))), (14, (MAC, (0,)))], {}),
    "tRAS_PREP": ([(0, (GACT, G4)), (14, (MAC, G4)), (30, (PREP, G4))],
                  [(0, (GACT, G4)), (14, (MAC, G4)), (34, (PREP, G4))], {}),
    "tRTP_MAC": ([(0, (GACT, G4)), (30, (MAC, G4)), (34, (PREP, G4))],
                 [(0, (GACT, G4)), (30, (MAC, G4)), (36, (PREP, G4))], {}),
    "ref-idle": ([(0, (ACT, 0)), (14, (RD, 0)), (34, (PRE, 0)), (48, (READRES, None)),
                  (62, (REF, None))],
                 [(0, (ACT, 0)), (14, (RD, 0)), (34, (PRE, 0)), (48, (READRES, None)),
                  (64, (REF, None))], {}),
    "cmd-bus": ([(0, (ACT, 0)), (0, (ACT, 1))], [(0, (ACT, 0)), (4, (ACT, 1))], {}),
    "READRES_bus": ([(0, (READRES, None)), (2, (READRES, None)), (3, (READRES, None))],
                    [(0, (READRES, None)), (2, (READRES, None)), (4, (READRES, None))], {}),
}


@pytest.mark.parametrize("name", list(BAD_TRACES))
def test_checker_rejects_each_constraint(name):
    bad, good, over = BAD_TRACES[name]
    spec = make_spec(**over)
    v = violations(bad, spec)
    key = {"tRRD_S": "tRRD", "tRRD_L": "tRRD", "tRRD_GACT": "tRRD", "tCCD_L": "tCCD",
           "tCCD_S": "tCCD", "tRP_REF": "tRP", "state_REF_open": "state",
           "state_closed": "state", "state_pim_buffer": "state", "tRAS_PREP": "tRAS",
           "tRTP_MAC": "tRTP", "READRES_bus": "bus"}.get(name, name)
    assert any(x.startswith(key + ":") for x in v), v
    assert violations(good, spec) == []


def test_checker_single_buffer_shares_the_row():
    trace = [(0, (ACT, 0)), (6, (GACT, G4))]
    assert violations(trace, SPEC, make_pim(2, gact_faw_weight=1)) == []
    assert any(x.startswith("state:") for x in violations(trace, SPEC,
                                                          make_pim(1, gact_faw_weight=1)))


# -- (b) closed form vs command level ----------------------------------------------------------
def _rel(a, c):
    return abs(float(a) - c) / c


@pytest.mark.parametrize("nbytes", [64 << 10, 100_000, 128 << 10, 1 << 20, 3 * (1 << 20) + 7,
                                    4 << 20, 8 << 20])
def test_stream_closed_form_agrees(nbytes):
    c = MODEL.stream_read_cycles(nbytes, "command")
    assert _rel(MODEL.stream_read_cycles(nbytes), c) < 0.03


TOKENS = [32, 100, 512, 1000, 4096]


@pytest.mark.parametrize("rows", TOKENS)
@pytest.mark.parametrize("cols", [128, 256, 1000, 4096])
def test_gemv_closed_form_agrees_logits(rows, cols):
    c = MODEL.pim_gemv_cycles(rows, cols, 128, "command")
    assert _rel(MODEL.pim_gemv_cycles(rows, cols, 128), c) < 0.03


@pytest.mark.parametrize("tokens", TOKENS + [2048 + 17])
def test_gemv_closed_form_agrees_transposed(tokens):
    c = MODEL.pim_gemv_cycles(128, tokens, 128, "command")
    assert _rel(MODEL.pim_gemv_cycles(128, tokens, 128), c) < 0.03


@pytest.mark.parametrize("shape", [(77, 333, 96), (500, 3000, 300), (64, 2000, 1024),
                                   (33, 700, 512), (4096, 1024, 64)])
def test_gemv_closed_form_agrees_other_segments(shape):
    c = MODEL.pim_gemv_cycles(*shape, "command")
    assert _rel(MODEL.pim_gemv_cycles(*shape), c) < 0.03


@pytest.mark.parametrize("variant", [
    dict(timing=dict(tfaw=200)),                  # activate-bound streaming
    dict(timing=dict(cwl=4, twtr_s=2, twtr_l=6)),
    dict(org=dict(row_bytes=256)),                # lookahead of 2 rows
    dict(org=dict(pseudo_channels=2)),
    dict(org=dict(bank_groups=1, banks_per_group=16)),
    dict(timing=dict(trefi=2000, trfc=300)),      # refresh-heavy
    dict(timing=dict(trefi=1000, trfc=300)),      # stream waves longer than a refresh window
])
def test_closed_forms_agree_on_other_parts(variant):
    spec = make_spec(variant.get("org"), **variant.get("timing", {}))
    m = HbmModel(spec, make_pim(global_buffer_bytes=4096))
    for n in (64 << 10, 1 << 20):
        assert _rel(m.stream_read_cycles(n), m.stream_read_cycles(n, "command")) < 0.03
    for shape in ((1000, 1024, 128), (128, 4096, 128), (40, 300, 128)):
        assert _rel(m.pim_gemv_cycles(*shape), m.pim_gemv_cycles(*shape, "command")) < 0.03


def test_closed_forms_are_vectorised():
    rows = np.array([32, 100, 4096, 128, 128, 7])
    cols = np.array([128, 4096, 1024, 4096, 33, 1])
    vec = MODEL.pim_gemv_cycles(rows, cols, 128)
    assert vec.shape == rows.shape
    assert vec.tolist() == [MODEL.pim_gemv_cycles(r, c, 128) for r, c in zip(rows, cols)]
    counts = MODEL.pim_gemv_commands(rows, cols, 128)
    for k, v in counts.items():
        assert v.shape == rows.shape, k
    grid = MODEL.pim_gemv_cycles(rows[:, None], cols[None, :], 128)
    assert grid.shape == (6, 6)
    odd = MODEL.pim_gemv_cycles(rows, cols, 96)                      # unaligned segments
    assert odd.tolist() == [MODEL.pim_gemv_cycles(r, c, 96) for r, c in zip(rows, cols)]
    whole = MODEL.pim_gemv_cycles(128, cols * 7, cols * 7)      # one dot product per row
    assert whole.tolist() == [MODEL.pim_gemv_cycles(128, c, c) for c in cols * 7]
    assert _rel(whole[2], MODEL.pim_gemv_cycles(128, 1024 * 7, 1024 * 7, "command")) < 0.03
    sizes = np.array([64 << 10, 1 << 20, 0])
    s = MODEL.stream_read_cycles(sizes)
    assert s.tolist() == [MODEL.stream_read_cycles(int(n)) for n in sizes]


@pytest.mark.parametrize("shape", [(1000, 4096, 128), (128, 4096, 128), (77, 333, 96),
                                   (4096, 1024, 128)])
def test_gemv_command_counts_match_the_program(shape):
    res = MODEL.schedule(MODEL.pim_gemv_program(*shape))
    counts = MODEL.pim_gemv_commands(*shape)
    for k, v in counts.items():
        assert int(v) == res.counts[k], k


@pytest.mark.parametrize("nbytes", [64 << 10, 4 << 20])
def test_stream_command_counts_match_the_program(nbytes):
    res = MODEL.schedule(MODEL.stream_read_program(nbytes))
    counts = MODEL.stream_commands(nbytes)
    for k, v in counts.items():
        assert int(v) == res.counts[k], k


# -- (c) device figures -------------------------------------------------------------------------
def test_neupims_device_figures():
    assert MODEL.peak_bytes_per_s == pytest.approx(1.024e12, rel=1e-9)
    assert MODEL.peak_bytes_per_s == pytest.approx(SPEC.organization.peak_bytes_per_s, rel=1e-12)
    assert MODEL.channel_bytes_per_cycle == 32
    for fid in ("analytical", "command"):
        assert 0.85 < MODEL.streaming_efficiency(fid) < 0.99
    assert MODEL.pim_peak_macs_per_s == pytest.approx(8.2e12, rel=0.01)
    internal = MODEL.pim_macs_per_cycle * PIM.element_bytes
    assert internal / MODEL.peak_bytes_per_cycle == pytest.approx(16)   # "~16x external"


def test_energy_from_counts():
    e = SPEC.energy
    c = MODEL.pim_gemv_commands(1000, 4096, 128)
    expect = (c["GWRITE"] * e.wr_pj + c["GACT"] * 4 * e.act_pj + c["MAC"] * 4 * e.rd_pj
              + c["READRES"] * e.rd_pj + c["GACT"] * 4 * e.pre_pj + c["REF"] * e.ref_pj)
    assert MODEL.pim_gemv_energy_pj(1000, 4096, 128) == pytest.approx(float(expect))
    one = MODEL.stream_energy_pj(1 << 20)
    assert MODEL.stream_energy_pj(2 << 20) == pytest.approx(2 * one, rel=0.02)
    assert one > (1 << 20) / 64 * e.rd_pj
    assert MODEL.stream_energy_pj(np.array([1 << 20, 2 << 20])).shape == (2,)


# -- (d) dual vs single row buffer -------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4096, 1024, 128), (128, 4096, 128), (32, 128, 128)])
def test_dual_row_buffers_overlap_regular_traffic(shape):
    dual = HbmModel(SPEC, make_pim(2))
    single = HbmModel(SPEC, make_pim(1))
    rd = dual.schedule(dual.mixed_program(*shape), record=True)
    rs = single.schedule(single.mixed_program(*shape), record=True)
    assert rd.counts["RD"] == rs.counts["RD"] and rd.counts["MAC"] == rs.counts["MAC"]
    assert rd.cycles < rs.cycles
    assert_clean(rd, SPEC, dual.pim)
    assert_clean(rs, SPEC, single.pim)
    # the blocked order gains nothing from the second buffer
    assert dual.schedule(single.mixed_program(*shape)).cycles >= rd.cycles


# -- (e) refresh ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda m: m.stream_read_program(4 << 20),
                                  lambda m: m.pim_gemv_program(4096, 4096, 128),
                                  lambda m: m.mixed_program(4096, 1024, 128)],
                         ids=["stream", "gemv", "mixed"])
def test_no_op_straddles_a_refresh(make):
    res = MODEL.schedule(make(MODEL), record=True)
    refs = res.ref_cycles
    assert res.refreshes == len(refs) > 5
    assert abs(res.refreshes - res.cycles / TM.trefi) <= 1
    start, end = res.op_spans[:, 0], res.op_spans[:, 1]
    k = np.searchsorted(refs, start)                 # REFs issued before each op
    assert np.all(end <= (k + 1) * TM.trefi)         # the op ends before its deadline
    inside = np.searchsorted(refs, end) - k
    assert np.all(inside == 0)                       # no REF while an op runs
    assert np.all(refs <= np.arange(1, len(refs) + 1) * TM.trefi + TM.trp + TM.tras)
    assert_clean(res)


def test_refresh_off_and_counts_agree():
    prog = MODEL.stream_read_program(1 << 20)
    off = MODEL.schedule(prog, refresh=False)
    on = MODEL.schedule(prog)
    assert off.refreshes == 0 and on.refreshes == int(MODEL.stream_commands(1 << 20)["REF"])
    assert on.cycles - off.cycles == on.refreshes * MODEL._stream["r"]
