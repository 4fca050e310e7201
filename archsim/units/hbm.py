"""HBM device model at two fidelities that agree: command programs and closed forms.

:class:`HbmModel` describes one HBM device (a :class:`~archsim.units.dram_spec.DramSpec`, plus a
:class:`~archsim.units.dram_spec.PimGeometry` when its banks compute). For each access pattern it
offers

- a **program generator** (``stream_read_program``, ``pim_gemv_program``, ``mixed_program``):
  the DRAM commands of one (pseudo-)channel, grouped into refresh-atomic ops, scheduled by the
  command-level model :func:`archsim.units.dram_commands.schedule` (``fidelity="command"``);
- a **closed form** (``fidelity="analytical"``, the default), derived from the same timing rules
  as the scheduler enforces on the same command order, with no fitted constant. The PIM GEMV
  closed form is vectorised over NumPy arrays of shapes (the serving simulator calls it for
  hundreds of requests at once).

All times are in cycles of ``tck_s`` (tCK) of one channel; channels work in parallel, so a
device-wide transfer split evenly over the channels takes the per-channel time.

Streaming read (one channel)
----------------------------
``nbytes`` are laid out row after row, consecutive rows in consecutive banks (bank ``b`` is in
bank group ``b % bank_groups``, so consecutive activates hit different groups). The command order
is software-pipelined: the ACT of row ``i + L`` is issued just before the first burst of row
``i`` (lookahead ``L = ceil((tRCD + 1) / row time)``, 1 for HBM2), and the PRE of row ``i`` just
after the ``m``-th burst of the following rows, ``m`` the fewest bursts that cover tRTP (and
tRAS). An op is one *wave*: the commands around the rows of one pass over all banks. Rows still
open at an op boundary are reopened after a refresh (:mod:`~archsim.units.dram_commands`).

Closed form: the first burst issues at ``RD0 = max(tRCD, c_L + 1)`` (``c_L``: the (L+1)-th
activate's earliest slot under tRRD/tFAW); rows then follow each other every
``P = max(bus time of a row, commands of a row, tRRD, tFAW / 4, bank recurrence)`` cycles; the
last burst's data ends ``CL + burst_cycles`` after it issues. A refresh costs
``r = max(PREA delay (max(tRTP, tRAS left)) + tRP, CL + burst) + tRFC + RD0 - (gap between
rows)``: the REF waits for the open rows to close and the bus to drain, and the lead-in is replayed
after it. Because ops start only if they end before the next deadline, refreshes are
issued early and the program with ``N`` refreshes ends at ``T0 + N r``, where ``N`` is the number
of deadlines ``k tREFI`` before the end: ``N = max(0, ceil((T0 - tREFI) / (tREFI - r)))``.

PIM GEMV (one channel)
----------------------
``y[r, s] = sum_{k in segment s} A[r, k] x[k]``: an ``rows x cols`` matrix, one dot product per
``segment_elems`` columns. A bank row holds ``row_elems = row_bytes // element_bytes``
consecutive elements of one matrix row; the channel's banks hold ``banks`` matrix rows side by
side (a *row tile*). For each column slice (``ceil(cols / row_elems)``): GWRITE the vector slice to
the global buffer (``ceil(slice bytes / access_bytes)`` bursts); for each row group
(``ceil(rows / banks)``) one op (a tile): GACT the used banks ``gact_banks`` at a time,
``ceil(slice elems / multipliers_per_bank)`` all-bank MACs, READRES bursts for the 2-byte partial
results (``ceil(banks used x segments in the slice x 2 / access_bytes)``), one PREP (PIM
precharge of the used banks). The slice's GWRITEs belong to its first tile's op.

Closed form per tile (times from its first GACT): GACT ``i`` at ``a_i`` (tRRD/tFAW, the same
rule as the scheduler applied to the GACT bank groups); first MAC at ``A + tRCD`` (A: last
GACT); MACs every ``tCCD_L``; READRES every ``max(tCCD_L, burst)`` after ``tCCD_L``; PREP at
``max(last READRES + 1, A + tRAS, last MAC + tRTP_L)``; the next tile's first GACT at
``PREP + tRP`` (or after the next slice's GWRITEs, which wait for the READRES data to pass on the
bus). Refresh as for streams, with ``r = max(PREP + tRP, end of the READRES data) + tRFC -
(next GACT)``: the REF takes the place of the tRP gap (about tRFC + 1 for HBM2). Assumes
``tRCD >= CWL + burst_cycles - 1`` (the vector has landed before the first MAC; true of real
parts, otherwise the closed form is conservative).

Energy
------
From command counts, per command (``DramEnergy``): ACT ``act_pj``, PRE ``pre_pj`` per bank
closed, RD/READRES ``rd_pj``, WR/GWRITE ``wr_pj``, REF ``ref_pj``. After NeuPIMs
(../shared/reference/neupims.md, "Energy: a PIM compute command costs 4x a read; a group activate
costs 4x an ACT"): a MAC costs ``4 x rd_pj`` per command (all banks), a GACT ``gact_banks x
act_pj`` (= 4 ACTs for the 4-bank GACT of NeuPIMs), the PIM precharge ``pre_pj`` per bank that
was group-activated.
"""
from __future__ import annotations

import numpy as np

from archsim.units.dram_commands import (
    ACT,
    GACT,
    GWRITE,
    MAC,
    PRE,
    PREP,
    RD,
    READRES,
    ScheduleResult,
    schedule,
)
from archsim.units.dram_spec import DramOrganization, DramSpec, PimGeometry

RESULT_BYTES = 2                 # one PIM partial result (FP16)
MAC_RD_ENERGY_FACTOR = 4         # NeuPIMs: a PIM compute command costs 4x a read
FIDELITIES = ("analytical", "command")


def _cdiv(a, b):
    """Ceiling division for ints and NumPy integer arrays."""
    return -(-a // b)


def _act_offsets(masks, trrd_s, trrd_l, tfaw, prior=(), weight=1):
    """Earliest issue cycles of back-to-back activates with the given bank-group masks.

    ``prior``: (cycle, mask) of earlier activates. Same rule as the scheduler: each activate is at
    least one cycle after the previous command, ``trrd_l``/``trrd_s`` after every earlier activate
    sharing/not sharing a group; each activate spends ``weight`` of the tFAW window's 4
    activates (a GACT: :attr:`PimGeometry.faw_weight`), so it waits ``tfaw`` after the
    (5 - weight)-th latest one."""
    hist = list(prior)
    faw: list[int] = []
    for u, _ in hist:
        faw.extend([u] * weight)
    out = []
    for m in masks:
        t = hist[-1][0] + 1 if hist else 0
        for (u, mu) in hist:
            t = max(t, u + (trrd_l if mu & m else trrd_s))
        if len(faw) >= 5 - weight:
            t = max(t, faw[-(5 - weight)] + tfaw)
        hist.append((t, m))
        faw.extend([t] * weight)
        out.append(t)
    return out


def bank_set_model(spec: DramSpec, set_banks: int, parallel: bool) -> "HbmModel":
    """The device as seen by accesses that read a *set* of ``set_banks`` banks, taken evenly
    from the bank groups, as one wide bank, for the streaming closed form.

    ``parallel=True``: every bank of the set delivers a burst at once, one per ``tCCD_L``
    (Duplex's bank bundle read through extra TSVs); ``False``: the set's bursts take turns on
    the channel's bus (a controller interleaving consecutive bursts over bank groups so that
    ``tCCD_L > burst_cycles`` does not idle the bus). The view has one bank group of
    ``banks / set_banks`` sets with rows ``set_banks`` times as long; a set activate counts
    as ``set_banks`` activates in tFAW (whole windows when it opens more than 4 rows).

    Raises:
        ValueError: the set does not take the same number of banks from each group it spans,
            does not divide the banks, or opens more than 4 rows but not a multiple of 4.
    """
    o, t = spec.organization, spec.timing
    groups = min(set_banks, o.bank_groups)
    if set_banks % groups or o.bank_groups % groups or o.banks % set_banks:
        raise ValueError(f"a set of {set_banks} banks must take the same number of banks from "
                         f"each of its bank groups ({o.bank_groups} groups) and divide the "
                         f"{o.banks} banks of a channel")
    if set_banks > 4 and set_banks % 4:
        raise ValueError(f"a set of {set_banks} banks must open at most 4 rows or a multiple of 4")
    access = set_banks * o.access_bytes
    cycles = t.tccd_l if parallel else max(t.tccd_l, set_banks * o.burst_cycles)
    org = DramOrganization(
        channels=o.channels, pseudo_channels=o.pseudo_channels, bank_groups=1,
        banks_per_group=o.banks // set_banks, rows=o.rows, row_bytes=o.row_bytes * set_banks,
        bus_bits=access * 8 * o.pseudo_channels // cycles, burst_length=cycles, data_rate=1,
        tck_s=o.tck_s)
    timing = t.model_copy(update={"tfaw": t.tfaw * max(set_banks // 4, 1)})
    return HbmModel(DramSpec(organization=org, timing=timing, energy=spec.energy),
                    act_faw_weight=min(set_banks, 4))


class HbmModel:
    """One HBM device; every time in tCK cycles of one channel.

    ``spec``: the device; ``pim``: the bank-level PIM geometry (needed by the PIM methods)."""

    def __init__(self, spec: DramSpec, pim: PimGeometry | None = None, act_faw_weight: int = 1):
        if not 1 <= act_faw_weight <= 4:
            raise ValueError(f"act_faw_weight must be 1..4, found {act_faw_weight}")
        self.spec, self.pim = spec, pim
        # activates one ACT of the streaming closed form counts as in the tFAW window (a bank
        # bundle's ACT: see archsim.units.logic_pim.bundle_view)
        self.act_faw_weight = act_faw_weight
        o = spec.organization
        self.banks, self.bank_groups = o.banks, o.bank_groups
        self.access_bytes, self.burst_cycles = o.access_bytes, o.burst_cycles
        if o.row_bytes % o.access_bytes:
            raise ValueError(f"row_bytes ({o.row_bytes}) must be a multiple of the access size "
                             f"({o.access_bytes})")
        self.bursts_per_row = o.row_bytes // o.access_bytes
        self._stream = self._derive_stream()
        self._pimt = self._derive_pim() if pim is not None else None

    # -- bandwidth -------------------------------------------------------------------------------
    @property
    def channel_bytes_per_cycle(self) -> float:
        """Peak bytes per tCK of one (pseudo-)channel: one burst per ``burst_cycles``."""
        return self.access_bytes / self.burst_cycles

    @property
    def peak_bytes_per_cycle(self) -> float:
        """Peak bytes per tCK of the whole device (all channels)."""
        return self.spec.organization.units * self.channel_bytes_per_cycle

    @property
    def peak_bytes_per_s(self) -> float:
        """Peak external bandwidth of the device in bytes/s."""
        return self.peak_bytes_per_cycle / self.spec.organization.tck_s

    @property
    def pim_macs_per_cycle(self) -> float:
        """Peak PIM MACs per tCK of the device: every bank's multipliers, one all-bank MAC per
        ``tCCD_L`` on each channel."""
        p = self._need_pim()
        return (self.spec.organization.units * self.banks * p.multipliers_per_bank
                / max(self.spec.timing.tccd_l, 1))

    @property
    def pim_peak_macs_per_s(self) -> float:
        """Peak PIM MAC rate of the device in MAC/s."""
        return self.pim_macs_per_cycle / self.spec.organization.tck_s

    def _need_pim(self) -> PimGeometry:
        if self.pim is None:
            raise ValueError("this HbmModel has no PIM geometry")
        return self.pim

    def schedule(self, program, *, refresh: bool = True, record: bool = False) -> ScheduleResult:
        """Schedule a program on one channel of this device (command-level model)."""
        return schedule(program, self.spec, self.pim, refresh=refresh, record=record)

    # -- streaming read ---------------------------------------------------------------------------
    def _derive_stream(self) -> dict:
        tm = self.spec.timing
        nbr, B = self.bursts_per_row, self.burst_cycles
        bp = max(B, tm.tccd_l, 1)                          # bursts of one row (same bank group)
        cross = tm.tccd_s if self.bank_groups > 1 else tm.tccd_l
        bpx = max(B, cross, 1)                             # last burst of a row -> next row
        row_t = (nbr - 1) * bp + bpx
        L = max(1, _cdiv(tm.trcd + 1, row_t))
        m = max(_cdiv(tm.trtp_l - 1, bp), _cdiv(tm.tras - L * row_t - (nbr - 1) * bp - 2, bp), 0)
        trrd_x = tm.trrd_s if self.bank_groups > 1 else tm.trrd_l
        masks = [1 << ((r % self.banks) % self.bank_groups) for r in range(L + 1)]
        w = self.act_faw_weight
        c = _act_offsets(masks, tm.trrd_s, tm.trrd_l, tm.tfaw, weight=w)
        rd0 = max(c[0] + tm.trcd, c[L] + 1)
        # bank recurrence: a bank is busy from its ACT (L rows ahead) to its PRE + tRP
        busy = (nbr - 1 + m) * bp + 2 + tm.trp
        P = max(row_t, nbr + 2, trrd_x, tm.tfaw * w / 4, busy / max(self.banks - L, 1))
        prea = max(1, tm.trtp_l, tm.tras - (nbr - 1) * bp - 1)
        ref = max(prea + tm.trp, tm.cl + B)         # REF also waits for the last burst's data
        r = ref + tm.trfc + rd0 - (P - (nbr - 1) * bp)
        return dict(bp=bp, L=L, m=m, rd0=rd0, P=P, r=r)

    def stream_read_program(self, nbytes: int) -> list[list]:
        """Commands of a streaming read of ``nbytes`` on one channel, one op per wave of
        ``banks`` rows (see the module docstring for the order)."""
        nbytes = int(nbytes)
        if nbytes <= 0:
            return []
        nbr, nbk = self.bursts_per_row, self.banks
        L, m = self._stream["L"], self._stream["m"]
        nbursts = _cdiv(nbytes, self.access_bytes)
        R = _cdiv(nbursts, nbr)
        act = [(ACT, b) for b in range(nbk)]
        pre = [(PRE, b) for b in range(nbk)]
        rd = [(RD, b) for b in range(nbk)]
        ops: list[list] = []
        cur: list = [act[j % nbk] for j in range(min(L, R))]
        pending: list[list] = []            # [bursts still to wait, bank] of rows awaiting PRE
        for i in range(R):
            if i and i % nbk == 0:
                ops.append(cur)
                cur = []
            b = i % nbk
            if i + L < R:
                cur.append(act[(i + L) % nbk])
            n = nbr if i < R - 1 else nbursts - (R - 1) * nbr
            if pending and pending[0][0] < n:
                # PREs land inside this row: emit burst runs between them
                pos = 0
                while pending and pending[0][0] < n:
                    w, pb = pending.pop(0)
                    cur.extend([rd[b]] * (w + 1 - pos))
                    pos = w + 1
                    cur.append(pre[pb])
                cur.extend([rd[b]] * (n - pos))
            else:
                cur.extend([rd[b]] * n)
            for p in pending:
                p[0] -= n
            if m == 0:
                cur.append(pre[b])
            else:
                pending.append([m - 1, b])
        cur.extend(pre[pb] for _, pb in pending)
        ops.append(cur)
        return ops

    def _stream_T0(self, nbytes):
        tm = self.spec.timing
        s = self._stream
        nbursts = _cdiv(np.asarray(nbytes, dtype=np.int64), self.access_bytes)
        R = _cdiv(nbursts, self.bursts_per_row)
        n_last = nbursts - (R - 1) * self.bursts_per_row
        rd_last = s["rd0"] + (R - 1) * s["P"] + (n_last - 1) * s["bp"]
        pre_end = rd_last + max(tm.trtp_l, 1) + 1 + (n_last < s["m"])
        T0 = np.maximum(rd_last + tm.cl + self.burst_cycles, pre_end)
        return np.where(nbursts > 0, T0, 0), R

    def _refreshes(self, T0, r):
        trefi = self.spec.timing.trefi
        return np.maximum(0, np.ceil((T0 - trefi) / (trefi - r))).astype(np.int64)

    def stream_read_cycles(self, nbytes, fidelity: str = "analytical"):
        """tCK cycles to stream-read ``nbytes`` from one channel (refresh included).

        ``fidelity="analytical"`` accepts arrays (element-wise, float64; a float for a scalar);
        ``"command"`` schedules :meth:`stream_read_program` (scalar, int)."""
        if fidelity == "command":
            return self.schedule(self.stream_read_program(int(nbytes))).cycles
        if fidelity != "analytical":
            raise ValueError(f"fidelity must be one of {FIDELITIES}, found {fidelity!r}")
        T0, _ = self._stream_T0(nbytes)
        T = np.asarray(T0 + self._refreshes(T0, self._stream["r"]) * self._stream["r"],
                       dtype=np.float64)
        return T if T.ndim else float(T)

    def stream_commands(self, nbytes) -> dict[str, np.ndarray]:
        """Analytical command counts of a streaming read of ``nbytes`` on one channel
        (element-wise over arrays): RD bursts, ACT/PRE per row (plus the rows reopened after each
        refresh), REF and PREA per refresh."""
        T0, R = self._stream_T0(nbytes)
        N = self._refreshes(T0, self._stream["r"])
        nbursts = _cdiv(np.asarray(nbytes, dtype=np.int64), self.access_bytes)
        L = self._stream["L"]
        return {"RD": nbursts, "ACT": R + N * np.minimum(L, R), "PRE": R, "REF": N, "PREA": N}

    def stream_energy_pj(self, nbytes):
        """Energy (pJ) of a streaming read of ``nbytes`` on one channel, from
        :meth:`stream_commands` (PREA: ``pre_pj`` per row it closes, the L+1 open rows)."""
        e = self.spec.energy
        c = self.stream_commands(nbytes)
        L = self._stream["L"]
        return (c["RD"] * e.rd_pj + c["ACT"] * e.act_pj + c["PRE"] * e.pre_pj
                + c["PREA"] * (L + 1) * e.pre_pj + c["REF"] * e.ref_pj)

    @property
    def interleave_banks(self) -> int:
        """Bank groups a streaming controller alternates bursts over so that the bus never
        waits on ``tCCD_L``: ``ceil(tCCD_L / burst_cycles)`` (1 when a row's bursts already
        fill the bus, as on HBM2)."""
        need = _cdiv(self.spec.timing.tccd_l, self.burst_cycles)
        return int(min(max(need, 1), self.bank_groups))

    def streaming_efficiency(self, fidelity: str = "analytical",
                             nbytes_per_channel: int = 4 << 20) -> float:
        """Achieved / peak bandwidth of a long streaming read (default 4 MiB per channel).

        When ``tCCD_L`` exceeds a burst (HBM3), the stream alternates its bursts over
        :attr:`interleave_banks` bank groups (:func:`bank_set_model`, analytical only)."""
        k = self.interleave_banks
        if k > 1:
            if fidelity != "analytical":
                raise ValueError("the command-level stream program reads row by row; a "
                                 "group-interleaved stream has an analytical model only")
            return bank_set_model(self.spec, k, parallel=False).streaming_efficiency(
                fidelity, nbytes_per_channel)
        cyc = self.stream_read_cycles(nbytes_per_channel, fidelity)
        return float(nbytes_per_channel / (float(cyc) * self.channel_bytes_per_cycle))

    # -- PIM GEMV ---------------------------------------------------------------------------------
    def _derive_pim(self) -> dict:
        p, tm, o = self.pim, self.spec.timing, self.spec.organization
        row_elems = o.row_bytes // p.element_bytes
        if row_elems < 1:
            raise ValueError("a row must hold at least one element")
        if p.global_buffer_bytes < row_elems * p.element_bytes:
            raise ValueError(f"the global buffer ({p.global_buffer_bytes} B) must hold one row "
                             f"slice ({row_elems * p.element_bytes} B)")
        gb, nbk, ng = p.gact_banks, self.banks, self.bank_groups
        a_last = np.zeros(nbk + 1, dtype=np.int64)
        nxt = np.zeros(nbk + 1, dtype=np.int64)
        first_mask = 0
        for b in range(min(gb, nbk)):
            first_mask |= 1 << (b % ng)
        for bu in range(1, nbk + 1):
            masks = []
            for k in range(_cdiv(bu, gb)):
                mk = 0
                for b in range(k * gb, min((k + 1) * gb, bu)):
                    mk |= 1 << (b % ng)
                masks.append(mk)
            fw = min(p.faw_weight, 4)
            a = _act_offsets(masks, tm.trrd_s, tm.trrd_l, tm.tfaw, weight=fw)
            a_last[bu] = a[-1]
            # the next tile's first GACT, only as far as activate spacing goes
            nxt[bu] = _act_offsets([first_mask], tm.trrd_s, tm.trrd_l, tm.tfaw,
                                   prior=[(x, mk) for x, mk in zip(a, masks)], weight=fw)[0]
        B = self.burst_cycles
        return dict(row_elems=row_elems, a_last=a_last, nxt=nxt,
                    cm=max(tm.tccd_l, 1), cr=max(tm.tccd_l, B, 1), cw=max(tm.tccd_l, B, 1),
                    gwd=max(tm.cwl + B - 1, tm.tccd_l - 1))

    def _gemv_geometry(self, rows, cols, segment_elems):
        p = self._need_pim()
        R = self._pimt["row_elems"]
        rows, cols, seg = np.broadcast_arrays(np.asarray(rows, dtype=np.int64),
                                              np.asarray(cols, dtype=np.int64),
                                              np.asarray(segment_elems, dtype=np.int64))
        if np.any(rows < 1) or np.any(cols < 1) or np.any(seg < 1):
            raise ValueError("rows, cols and segment_elems must be positive")
        S = _cdiv(cols, R)
        NG = _cdiv(rows, self.banks)
        bu_l = rows - (NG - 1) * self.banks
        return p, R, rows, cols, seg, S, NG, bu_l

    def _slice(self, lo, se, seg):
        """MACs, GWRITE bursts and segments of a column slice [lo, lo + se)."""
        p = self.pim
        M = _cdiv(se, p.multipliers_per_bank)
        W = _cdiv(se * p.element_bytes, self.access_bytes)
        segs = (lo + se - 1) // seg - lo // seg + 1
        return M, W, segs

    def _q(self, bu, segs):
        return _cdiv(bu * segs * RESULT_BYTES, self.access_bytes)

    def _tile(self, bu, M, Q, Wn):
        """(cycles from this tile's first GACT to the next tile's first GACT, completion of this
        tile) - element-wise; ``Wn``: GWRITE bursts opening the next tile (0: none)."""
        tm, pt, B = self.spec.timing, self._pimt, self.burst_cycles
        A = pt["a_last"][bu]
        mac1 = np.maximum(A + max(tm.trcd, 1), pt["gwd"])
        macM = mac1 + (M - 1) * pt["cm"]
        rrQ = macM + pt["cm"] + (Q - 1) * pt["cr"]
        prep = np.maximum(np.maximum(rrQ + 1, A + tm.tras), macM + tm.trtp_l)
        E = rrQ + tm.cl + B
        comp = np.maximum(E, prep + 1)
        nxt0 = np.maximum(prep + max(tm.trp, 1), pt["nxt"][bu])
        gw1 = np.maximum(np.maximum(prep + 1, E - tm.cwl), rrQ + pt["cm"])
        nxtW = np.maximum(nxt0, gw1 + (Wn - 1) * pt["cw"] + 1)
        period = np.where(Wn > 0, nxtW, nxt0)
        ref = np.maximum(prep + max(tm.trp, 1), E)  # a REF here: banks precharged, bus idle
        return period, comp, ref

    def _gemv_T0_r(self, rows, cols, segment_elems):
        p, R, rows, cols, seg, S, NG, bu_l = self._gemv_geometry(rows, cols, segment_elems)
        tm, pt, nbk = self.spec.timing, self._pimt, self.banks
        bu_f = np.full_like(rows, nbk)
        lo_l = (S - 1) * R
        se_l = cols - lo_l
        Mf, Wf, segs_f = self._slice(0, R, seg)
        M_l, W_l, segs_l = self._slice(lo_l, se_l, seg)
        aligned = bool(np.all((R % seg == 0) | (seg % R == 0) | (seg >= cols)))
        zero = np.zeros_like(rows)
        if aligned:
            # full slices are all alike (segments aligned to slices, or one segment spanning the
            # whole matrix row): closed form over tile types
            P_ff, _, _ = self._tile(bu_f, Mf, self._q(bu_f, segs_f), zero)
            P_lf_W, _, _ = self._tile(bu_l, Mf, self._q(bu_l, segs_f), Wf)
            P_lf_Wl, _, _ = self._tile(bu_l, Mf, self._q(bu_l, segs_f), W_l)
            P_fl, _, _ = self._tile(bu_f, M_l, self._q(bu_f, segs_l), zero)
            _, C_ll, _ = self._tile(bu_l, M_l, self._q(bu_l, segs_l), zero)
            W0 = np.where(S >= 2, Wf, W_l)
            T0 = ((W0 - 1) * pt["cw"] + 1
                  + (S - 1) * (NG - 1) * P_ff
                  + np.maximum(S - 2, 0) * P_lf_W + (S >= 2) * P_lf_Wl
                  + (NG - 1) * P_fl + C_ll)
        else:
            # general segments: one pass per column slice (vectorised over shapes)
            T0 = np.zeros(rows.shape, dtype=np.float64)
            Smax = int(S.max())
            for c in range(Smax):
                live = c < S
                lo = c * R
                se = np.clip(cols - lo, 1, R)
                M, W, segs = self._slice(lo, se, seg)
                if c == 0:
                    T0 += (W - 1) * pt["cw"] + 1
                last = c == S - 1
                Mn, Wn, _ = self._slice(lo + R, np.clip(cols - lo - R, 1, R), seg)
                P_f, _, _ = self._tile(bu_f, M, self._q(bu_f, segs), zero)
                P_l, C_l, _ = self._tile(bu_l, M, self._q(bu_l, segs), np.where(last, 0, Wn))
                T0 += np.where(live, (NG - 1) * P_f + np.where(last, C_l, P_l), 0)
        # refresh penalty of the dominant tile: REF at PREP + tRP, next GACT tRFC later
        bu_d = np.where(NG >= 2, nbk, bu_l)
        M_d = np.where(S >= 2, Mf, M_l)
        seg_d = np.where(S >= 2, segs_f, segs_l)
        P_d, _, ref_d = self._tile(bu_d, M_d, self._q(bu_d, seg_d), zero)
        r = ref_d + tm.trfc - P_d
        return T0, r

    def pim_gemv_program(self, rows: int, cols: int, segment_elems: int) -> list[list]:
        """Commands of a PIM GEMV ``rows x cols`` (segments of ``segment_elems``) on one channel,
        one op per row tile (see the module docstring)."""
        p, R, *_ = self._gemv_geometry(rows, cols, segment_elems)
        rows, cols, seg = int(rows), int(cols), int(segment_elems)
        nbk, gb = self.banks, p.gact_banks
        S, NG = _cdiv(cols, R), _cdiv(rows, nbk)
        cache: dict = {}
        gw = (GWRITE, None)
        rr = (READRES, None)
        ops = []
        for c in range(S):
            lo = c * R
            se = min(R, cols - lo)
            M, W, segs = (int(v) for v in self._slice(lo, se, seg))
            for g in range(NG):
                bu = min(nbk, rows - g * nbk)
                Q = int(self._q(bu, segs))
                key = (bu, M, Q, W if g == 0 else 0)
                op = cache.get(key)
                if op is None:
                    allb = tuple(range(bu))
                    op = [gw] * key[3]
                    op += [(GACT, allb[k:k + gb]) for k in range(0, bu, gb)]
                    op += [(MAC, allb)] * M + [rr] * Q + [(PREP, allb)]
                    cache[key] = op
                ops.append(op)
        return ops

    def pim_gemv_cycles(self, rows, cols, segment_elems, fidelity: str = "analytical"):
        """tCK cycles of a PIM GEMV on one channel (refresh included).

        ``fidelity="analytical"`` is element-wise over (broadcast) arrays of ``rows``/``cols``/
        ``segment_elems`` (float64 array, or a float for scalars); ``"command"`` schedules
        :meth:`pim_gemv_program` (scalars, int)."""
        if fidelity == "command":
            return self.schedule(self.pim_gemv_program(rows, cols, segment_elems)).cycles
        if fidelity != "analytical":
            raise ValueError(f"fidelity must be one of {FIDELITIES}, found {fidelity!r}")
        T0, r = self._gemv_T0_r(rows, cols, segment_elems)
        T = np.asarray(T0 + self._refreshes(T0, r) * r, dtype=np.float64)
        return T if T.ndim else float(T)

    def pim_gemv_commands(self, rows, cols, segment_elems) -> dict[str, np.ndarray]:
        """Command counts per kind of a PIM GEMV on one channel (element-wise over arrays):
        GWRITE, GACT, MAC, READRES, PREP and REF (analytical refresh count)."""
        p, R, rows, cols, seg, S, NG, bu_l = self._gemv_geometry(rows, cols, segment_elems)
        nbk, gb = self.banks, p.gact_banks
        lo_l = (S - 1) * R
        Mf, Wf, segs_f = self._slice(0, R, seg)
        M_l, W_l, segs_l = self._slice(lo_l, cols - lo_l, seg)
        G_f, G_l = _cdiv(nbk, gb), _cdiv(bu_l, gb)
        if bool(np.all((R % seg == 0) | (seg % R == 0) | (seg >= cols))):
            rr_full = (S - 1) * ((NG - 1) * self._q(nbk, segs_f) + self._q(bu_l, segs_f))
        else:
            rr_full = np.zeros_like(rows)
            for c in range(int(S.max()) - 1):
                _, _, sg = self._slice(c * R, R, seg)
                rr_full += np.where(c < S - 1, (NG - 1) * self._q(nbk, sg) + self._q(bu_l, sg), 0)
        T0, r = self._gemv_T0_r(rows, cols, seg)
        return {
            "GWRITE": (S - 1) * Wf + W_l,
            "GACT": S * ((NG - 1) * G_f + G_l),
            "MAC": NG * ((S - 1) * Mf + M_l),
            "READRES": rr_full + (NG - 1) * self._q(nbk, segs_l) + self._q(bu_l, segs_l),
            "PREP": S * NG,
            "REF": self._refreshes(T0, r),
        }

    def pim_gemv_energy_pj(self, rows, cols, segment_elems):
        """Energy (pJ) of a PIM GEMV on one channel from :meth:`pim_gemv_commands`
        (MAC = 4 reads, GACT = ``gact_banks`` ACTs, PIM precharge = ``pre_pj`` per bank)."""
        e, gb = self.spec.energy, self._need_pim().gact_banks
        c = self.pim_gemv_commands(rows, cols, segment_elems)
        return (c["GWRITE"] * e.wr_pj + c["GACT"] * gb * (e.act_pj + e.pre_pj)
                + c["MAC"] * MAC_RD_ENERGY_FACTOR * e.rd_pj + c["READRES"] * e.rd_pj
                + c["REF"] * e.ref_pj)

    # -- regular traffic next to PIM ----------------------------------------------------------------
    def mixed_program(self, rows: int, cols: int, segment_elems: int) -> list[list]:
        """A PIM GEMV plus one regular row read (``ACT``, ``bursts_per_row`` RDs, ``PRE``) per row
        tile, on one channel.

        With dual row buffers (NeuPIMs) the regular row is merged into the tile's op: its ACT
        first, its bursts in the gaps between the GACTs (the PIM buffers are untouched), its PRE
        before the PIM precharge. With one row buffer (blocked PIM) regular and PIM ops alternate,
        since a bank cannot hold a regular row while its PIM row is open."""
        p = self._need_pim()
        tiles = self.pim_gemv_program(rows, cols, segment_elems)
        nbr = self.bursts_per_row
        ops = []
        for j, op in enumerate(tiles):
            b = j % self.banks
            if p.row_buffers == 1:
                ops.append(op)
                ops.append([(ACT, b)] + [(RD, b)] * nbr + [(PRE, b)])
                continue
            gpos = [i for i, c in enumerate(op) if c[0] == GACT]
            slots = gpos[2:] if len(gpos) > 2 else gpos[-1:]
            per = _cdiv(nbr, len(slots))
            merged, left = [], nbr
            for i, c in enumerate(op):
                if i == gpos[0]:
                    merged.append((ACT, b))
                if c[0] == PREP:
                    merged.append((PRE, b))
                merged.append(c)
                if i in slots and left:
                    n = min(per, left)
                    merged.extend([(RD, b)] * n)
                    left -= n
            ops.append(merged)
        return ops
