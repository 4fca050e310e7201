"""Command-level model of one HBM (pseudo-)channel: an in-order command scheduler and a checker.

A *program* is a list of *ops*; an op is a list of *commands*; a command is a plain tuple
``(kind, banks)``. ``kind`` is one of the integer codes below (``ACT`` ... ``PREP``) or its name
as a string; ``banks`` is

- a bank index (int) for the single-bank commands ``ACT``, ``PRE``, ``RD``, ``WR``;
- a tuple of bank indices, or ``None`` for every bank, for ``GACT``, ``MAC``, ``PREP``;
- ignored (use ``None``) for the channel-wide commands ``REF``, ``PREA``, ``GWRITE``, ``READRES``.

Banks are numbered ``0 .. banks-1`` of the channel and bank ``b`` belongs to bank group
``b % bank_groups``: consecutive bank numbers are in different bank groups.

Scheduling rule
---------------
Commands issue in program order, at most one per cycle on the command bus: each command issues
at the earliest cycle ``t >= previous issue + 1`` that satisfies every constraint below (all in
tCK cycles; "group" = bank group):

====================  ==========================================================================
``tRCD``              ACT/GACT -> RD/WR/MAC on that bank (row buffer)
``tRP``               PRE/PREP/PREA -> ACT/GACT on that bank (row buffer); every bank precharged
                      for tRP before REF
``tRAS``              ACT/GACT -> PRE/PREP/PREA of that bank (row buffer)
``tRTP``              RD/MAC -> PRE of that bank (row buffer); uses ``trtp_l`` (the read and the
                      precharge are in the same bank, hence the same bank group); ``trtp_s``, the
                      RD -> PRE delay across bank groups in JESD235, constrains nothing here
                      because a precharge only waits for reads of its own bank
``tWR``               end of write data -> PRE of that bank (row buffer)
``tRRD``              activate -> activate: ``trrd_l`` if the two touch a common bank group,
                      else ``trrd_s``. A GACT is **one** activate command on the bus whatever
                      the number of banks it opens; it touches the groups of all its banks
``tFAW``              at most 4 activates in any window of ``tfaw`` cycles; a GACT counts as
                      ``PimGeometry.faw_weight`` activates (by default the banks it opens: tFAW
                      is the activation power budget and a GACT draws that many ACTs' worth)
``tCCD``              column -> column (RD, WR, MAC, GWRITE, READRES): ``tccd_l`` if they touch a
                      common bank group, else ``tccd_s``. MAC touches the groups of its banks
                      (all groups for an all-bank MAC, so successive MACs are ``tccd_l`` apart);
                      GWRITE and READRES use the channel's global buffer / result path shared by
                      all banks, so they touch every group
``tWTR``              end of WR data -> RD: ``twtr_l`` same group, ``twtr_s`` otherwise (GWRITE
                      writes the global buffer, not a bank, and is exempt)
data bus              RD/READRES occupy the data bus for ``burst_cycles`` from ``CL`` after
                      issue, WR/GWRITE from ``CWL`` after issue. Bursts never overlap and pass
                      in command order (the device cannot reorder data; this is the
                      read -> write turnaround with no extra bubble)
global buffer         a MAC issues only after the data of every earlier GWRITE has arrived
``tRFC``              REF needs every row buffer closed and the data bus idle (the last burst
                      has ended); nothing issues for ``trfc`` after it
====================  ==========================================================================

Row buffers. Each bank has one row buffer for regular ``ACT/RD/WR/PRE``. With
``PimGeometry.row_buffers == 2`` (NeuPIMs) each bank has a second, *PIM* row buffer, used by
``GACT``, ``MAC`` and ``PREP`` (the PIM precharge): the two buffers have independent
tRCD/tRAS/tRP/tRTP/tWR state, but share the command bus, the data bus, the column-command
spacing (tCCD) and the activate budget (tRRD, tFAW), which are channel resources. With one row
buffer (Newton-style "blocked" PIM) the PIM commands use the regular buffer. ``PREA`` closes
every buffer. An ``ACT``/``GACT`` to an open buffer, or a column command to a closed one, is a
program error (:class:`ScheduleError`); a ``PRE``/``PREP`` to a closed buffer is a no-op that
still takes its command slot (JEDEC).

Refresh. REF is due every ``trefi`` cycles (deadlines ``trefi, 2 trefi, ...``). Ops are
refresh-atomic: before starting an op the scheduler schedules it tentatively; if the op would not
complete (last issue + 1, last data) by the next deadline, it instead closes any open rows
(``PREA``), issues ``REF``, waits ``trfc``, re-opens the rows the op expects open (those it
reads before activating: ``ACT``, or ``GACT`` in groups of the PIM geometry's ``gact_banks``)
and then runs the op. This is NeuPIMs' rule "a PIM op starts only if it completes before the
next refresh"; regular-traffic ops follow the same rule, so a refresh is issued early, or (when
the previous op ended just before the deadline) postponed by at most a PREA + tRP. The next
deadline is one ``trefi`` after the one just served, so on average one REF per ``trefi``. An op
longer than a whole refresh window runs after its REF anyway (it then straddles the next
deadline); a scheduler that fell more than a window behind issues REFs back to back to catch up.

Speed: the scheduler keeps its state in flat Python lists and ints (no per-command objects) and
costs about a microsecond per command; programs built from repeated op objects (as the
generators of :mod:`archsim.units.hbm` make them) are cheap to count.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from archsim.units.dram_spec import DramSpec, PimGeometry

ACT, PRE, RD, WR, REF, PREA, GACT, MAC, GWRITE, READRES, PREP = range(11)
KIND_NAMES: tuple[str, ...] = ("ACT", "PRE", "RD", "WR", "REF", "PREA", "GACT", "MAC",
                               "GWRITE", "READRES", "PREP")
KIND_CODES: dict[str, int] = {n: i for i, n in enumerate(KIND_NAMES)}
COLUMN_KINDS = frozenset({RD, WR, MAC, GWRITE, READRES})
ACTIVATE_KINDS = frozenset({ACT, GACT})
PIM_KINDS = frozenset({GACT, MAC, PREP})

_NEG = -(1 << 40)


class ScheduleError(ValueError):
    """The program is not legal (e.g. RD to a closed bank, ACT to an open one)."""


def _code(kind) -> int:
    return KIND_CODES[kind] if isinstance(kind, str) else int(kind)


@dataclass
class ScheduleResult:
    """Outcome of :func:`schedule` on one channel. Cycles are tCK cycles from 0.

    - ``cycles``: completion of the program (last command issue + 1, last data burst end, or the
      end of a trailing REF's tRFC, whichever is latest).
    - ``counts``: issued commands per kind name (refresh-inserted PREA/REF/ACT/GACT included).
    - ``refreshes``: number of REF commands issued.
    - ``op_spans``: int64 array (n_ops, 2): issue cycle of each op's first command and the op's
      completion (an empty op gets ``(c, c)`` at the current cycle).
    - ``ref_cycles``: issue cycles of the REF commands.
    - with ``record=True``: ``issue`` (int64 array), ``commands`` (the issued command tuples, in
      order, refresh insertions included) and ``op_index`` (op of each issued command, -1 for a
      refresh insertion) - the input of :func:`check_trace`.
    """

    cycles: int
    counts: dict[str, int]
    refreshes: int
    op_spans: np.ndarray
    ref_cycles: np.ndarray
    issue: np.ndarray | None = None
    commands: list | None = None
    op_index: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


class _Channel:
    """Mutable timing state of one channel and the command-issue loop."""

    def __init__(self, spec: DramSpec, pim: PimGeometry | None):
        o, tm = spec.organization, spec.timing
        for a, b in (("tccd_l", "tccd_s"), ("trrd_l", "trrd_s"), ("twtr_l", "twtr_s")):
            if getattr(tm, a) < getattr(tm, b):
                raise ValueError(f"{a} ({getattr(tm, a)}) must be at least {b} ({getattr(tm, b)})")
        self.nb = nb = o.banks
        self.ng = ng = o.bank_groups
        self.dual = pim is not None and pim.row_buffers == 2
        self.poff = nb if self.dual else 0          # flat index offset of the PIM row buffers
        self.gact_banks = pim.gact_banks if pim is not None else 4
        self.faw_weight = min(pim.faw_weight, 4) if pim is not None else 1
        n2 = 2 * nb
        self.grp = [(i % nb) % ng for i in range(n2)]
        self.opn = [False] * n2
        self.actt = [_NEG] * n2      # last activate of the buffer (tRCD, tRAS)
        self.actok = [0] * n2        # earliest next activate (PRE + tRP)
        self.colt = [_NEG] * n2      # last RD/MAC of the buffer (tRTP)
        self.wrt = [_NEG] * n2       # last write data end + tWR
        self.lact = [_NEG] * ng      # last activate touching each group
        self.lcol = [_NEG] * ng      # last column command touching each group
        self.lwr = [_NEG] * ng       # last WR data end per group
        # prev, blocked, lact_any, fa, fb, fc, fd (last four activates, fd oldest), lcol_any,
        # lwr_any, bus (end of the last burst), gwl (last GWRITE data end)
        self.sc = [-1, 0, _NEG, _NEG, _NEG, _NEG, _NEG, _NEG, _NEG, 0, _NEG]
        self.T = (tm.trcd, tm.trp, tm.tras, tm.trrd_s, tm.trrd_l, tm.tfaw, tm.tccd_s, tm.tccd_l,
                  tm.twr, tm.trtp_l, tm.twtr_s, tm.twtr_l, tm.trfc, tm.cl, tm.cwl,
                  o.burst_cycles)
        self._multi: dict = {}

    # -- state snapshots (tentative scheduling of an op) ---------------------------------------
    def snapshot(self):
        return (self.sc[:], self.opn[:], self.actt[:], self.actok[:], self.colt[:], self.wrt[:],
                self.lact[:], self.lcol[:], self.lwr[:])

    def restore(self, s):
        (self.sc, self.opn, self.actt, self.actok, self.colt, self.wrt, self.lact, self.lcol,
         self.lwr) = (x[:] for x in s)

    def _info(self, banks):
        """(lo, hi, idx, groups, all_groups) of a multi-bank command's PIM row buffers."""
        key = id(banks)
        hit = self._multi.get(key)
        if hit is not None and hit[0] is banks:
            return hit[1]
        bl = list(range(self.nb)) if banks is None else [int(b) for b in (
            (banks,) if isinstance(banks, (int, np.integer)) else banks)]
        if not bl:
            raise ScheduleError("multi-bank command with no banks")
        for b in bl:
            if not 0 <= b < self.nb:
                raise ScheduleError(f"bank {b} out of range 0..{self.nb - 1}")
        idx = [self.poff + b for b in bl]
        contiguous = idx == list(range(idx[0], idx[0] + len(idx)))
        lo, hi = (idx[0], idx[-1] + 1) if contiguous else (None, None)
        groups = sorted({b % self.ng for b in bl})
        info = (lo, hi, idx, groups, len(groups) == self.ng)
        self._multi[key] = (banks, info)
        return info

    # -- the issue loop --------------------------------------------------------------------------
    def run(self, cmds, rec_t, rec_c):
        """Issue ``cmds`` in order; return (first issue cycle, completion of these commands)."""
        (prev, blocked, lact_any, fa, fb, fc, fd, lcol_any, lwr_any, bus, gwl) = self.sc
        opn, actt, actok, colt, wrt = self.opn, self.actt, self.actok, self.colt, self.wrt
        lact, lcol, lwr, grp = self.lact, self.lcol, self.lwr, self.grp
        (trcd, trp, tras, trrd_s, trrd_l, tfaw, tccd_s, tccd_l, twr, trtp, twtr_s, twtr_l, trfc,
         cl, cwl, bl) = self.T
        nb, ng, info_of = self.nb, self.ng, self._info
        faw_w = self.faw_weight
        first = None
        comp = 0
        record = rec_t is not None
        for cmd in cmds:
            k, b = cmd
            if k.__class__ is str:
                k = KIND_CODES[k]
            t = prev + 1
            if t < blocked:
                t = blocked
            if k == RD or k == WR:
                if not opn[b]:
                    raise ScheduleError(f"{KIND_NAMES[k]} to closed bank {b}")
                g = grp[b]
                x = actt[b] + trcd
                if x > t:
                    t = x
                x = lcol[g] + tccd_l
                if x > t:
                    t = x
                x = lcol_any + tccd_s
                if x > t:
                    t = x
                if k == RD:
                    x = lwr[g] + twtr_l
                    if x > t:
                        t = x
                    x = lwr_any + twtr_s
                    if x > t:
                        t = x
                    x = bus - cl
                    if x > t:
                        t = x
                    bus = t + cl + bl
                    colt[b] = t
                else:
                    x = bus - cwl
                    if x > t:
                        t = x
                    bus = t + cwl + bl
                    lwr[g] = bus
                    lwr_any = bus
                    wrt[b] = bus + twr
                lcol[g] = t
                lcol_any = t
                if bus > comp:
                    comp = bus
            elif k == MAC:
                lo, hi, idx, groups, allg = info_of(b)
                if lo is not None:
                    if not all(opn[lo:hi]):
                        raise ScheduleError("MAC to a bank whose PIM row is closed")
                    x = max(actt[lo:hi]) + trcd
                else:
                    if not all([opn[i] for i in idx]):
                        raise ScheduleError("MAC to a bank whose PIM row is closed")
                    x = max([actt[i] for i in idx]) + trcd
                if x > t:
                    t = x
                if allg:
                    x = lcol_any + tccd_l
                else:
                    x = max([lcol[g] for g in groups]) + tccd_l
                    if x > t:
                        t = x
                    x = lcol_any + tccd_s
                if x > t:
                    t = x
                if gwl > t:
                    t = gwl
                if lo is not None:
                    colt[lo:hi] = [t] * (hi - lo)
                else:
                    for i in idx:
                        colt[i] = t
                for g in groups:
                    lcol[g] = t
                lcol_any = t
                if t + 1 > comp:
                    comp = t + 1
            elif k == ACT or k == GACT:
                if k == ACT:
                    if opn[b]:
                        raise ScheduleError(f"ACT to open bank {b}")
                    x = actok[b]
                    g = grp[b]
                    y = lact[g] + trrd_l
                    groups = (g,)
                    idx = (b,)
                else:
                    lo, hi, idx, groups, allg = info_of(b)
                    if any([opn[i] for i in idx]):
                        raise ScheduleError("GACT to a bank whose PIM row is open")
                    x = max([actok[i] for i in idx])
                    y = max([lact[g] for g in groups]) + trrd_l
                if x > t:
                    t = x
                if y > t:
                    t = y
                x = lact_any + trrd_s
                if x > t:
                    t = x
                w = faw_w if k == GACT else 1
                # the window holds at most 4 activates: the (5 - w)-th latest must be tfaw ago
                x = (fd, fc, fb, fa)[w - 1] + tfaw
                if x > t:
                    t = x
                for i in idx:
                    opn[i] = True
                    actt[i] = t
                for g in groups:
                    lact[g] = t
                lact_any = t
                if w == 1:
                    fd, fc, fb, fa = fc, fb, fa, t
                else:
                    hist4 = (fd, fc, fb, fa)[w:] + (t,) * w
                    fd, fc, fb, fa = hist4[-4:]
                if t + 1 > comp:
                    comp = t + 1
            elif k == PRE or k == PREP or k == PREA:
                if k == PRE:
                    idx = (b,)
                elif k == PREP:
                    idx = info_of(b)[2]
                else:
                    idx = range(2 * nb)
                closing = [i for i in idx if opn[i]]
                for i in closing:
                    x = actt[i] + tras
                    y = colt[i] + trtp
                    if y > x:
                        x = y
                    y = wrt[i]
                    if y > x:
                        x = y
                    if x > t:
                        t = x
                for i in closing:
                    opn[i] = False
                    actok[i] = t + trp
                if t + 1 > comp:
                    comp = t + 1
            elif k == GWRITE or k == READRES:
                x = lcol_any + tccd_l
                if x > t:
                    t = x
                lat = cwl if k == GWRITE else cl
                x = bus - lat
                if x > t:
                    t = x
                bus = t + lat + bl
                if k == GWRITE:
                    gwl = bus
                lcol[:] = [t] * ng
                lcol_any = t
                if bus > comp:
                    comp = bus
            elif k == REF:
                if any(opn):
                    raise ScheduleError("REF with an open row")
                x = max(actok)
                if x > t:
                    t = x
                if bus > t:                     # the device is idle: every burst has passed
                    t = bus
                blocked = t + trfc
                if blocked > comp:
                    comp = blocked
            else:
                raise ScheduleError(f"unknown command kind {k!r}")
            prev = t
            if first is None:
                first = t
            if record:
                rec_t.append(t)
                rec_c.append(cmd)
        self.sc = [prev, blocked, lact_any, fa, fb, fc, fd, lcol_any, lwr_any, bus, gwl]
        return (prev + 1 if first is None else first), comp

    # -- refresh ----------------------------------------------------------------------------------
    def reopen_commands(self, op, was_open: set[int]) -> list:
        """ACT/GACT commands re-opening the buffers ``op`` reads before activating them."""
        seen: set[int] = set()
        regular, pim = [], []
        for cmd in op:
            k, b = cmd
            k = _code(k)
            if k == RD or k == WR:
                if b not in seen:
                    seen.add(b)
                    if b in was_open:
                        regular.append((ACT, b))
            elif k == ACT or k == PRE:
                seen.add(b)
            elif k in PIM_KINDS:
                for i in self._info(b)[2]:
                    if i not in seen:
                        seen.add(i)
                        if k == MAC and i in was_open:
                            pim.append(i - self.poff)
            elif k == PREA or k == REF:
                break
        gb = self.gact_banks
        return regular + [(GACT, tuple(pim[j:j + gb])) for j in range(0, len(pim), gb)]


def schedule(program, spec: DramSpec, pim: PimGeometry | None = None, *, refresh: bool = True,
             record: bool = False) -> ScheduleResult:
    """Schedule ``program`` (list of ops, each a list of ``(kind, banks)`` commands) on one
    channel with the in-order rule of this module; returns a :class:`ScheduleResult` (tCK cycles).

    ``refresh=False`` disables refresh; ``record=True`` keeps the issued trace (for
    :func:`check_trace`)."""
    ch = _Channel(spec, pim)
    trefi = spec.timing.trefi
    next_due = trefi
    rec_t: list | None = [] if record else None
    rec_c: list | None = [] if record else None
    rec_op: list | None = [] if record else None
    spans = np.zeros((len(program), 2), dtype=np.int64)
    ref_cycles: list[int] = []
    counts = [0] * len(KIND_NAMES)
    op_counts: dict[int, tuple] = {}
    total = 0

    def add_counts(cmds):
        for k, _ in cmds:
            counts[_code(k)] += 1

    def run_inserted(cmds):
        """Issue commands the refresh inserts (not part of any op)."""
        nonlocal total
        n0 = len(rec_t) if record else 0
        _, c = ch.run(cmds, rec_t, rec_c)
        total = max(total, c)
        add_counts(cmds)
        if record:
            rec_op.extend([-1] * (len(rec_t) - n0))

    def do_refresh(op):
        nonlocal next_due
        was_open = {i for i, o in enumerate(ch.opn) if o}
        cmds = ([(PREA, None)] if was_open else []) + [(REF, None)]
        while True:
            run_inserted(cmds)
            ref_cycles.append(ch.sc[1] - spec.timing.trfc)
            next_due += trefi
            if ch.sc[1] < next_due:
                break
            cmds = [(REF, None)]            # fell a whole window behind: catch up
        reopen = ch.reopen_commands(op, was_open)
        if reopen:
            run_inserted(reopen)

    for oi, op in enumerate(program):
        if not op:
            spans[oi] = ch.sc[0] + 1
            continue
        if refresh:
            snap = ch.snapshot()
            n0 = len(rec_t) if record else 0
            first, comp = ch.run(op, rec_t, rec_c)
            if comp > next_due:
                ch.restore(snap)
                if record:
                    del rec_t[n0:], rec_c[n0:]
                do_refresh(op)
                n0 = len(rec_t) if record else 0
                first, comp = ch.run(op, rec_t, rec_c)
        else:
            n0 = len(rec_t) if record else 0
            first, comp = ch.run(op, rec_t, rec_c)
        if record:
            rec_op.extend([oi] * (len(rec_t) - n0))
        spans[oi] = first, comp
        if comp > total:
            total = comp
        key = id(op)
        hit = op_counts.get(key)
        if hit is None or hit[0] is not op:
            c = [0] * len(KIND_NAMES)
            for k, _ in op:
                c[_code(k)] += 1
            hit = op_counts[key] = (op, c)
        for i, v in enumerate(hit[1]):
            counts[i] += v
    return ScheduleResult(
        cycles=int(total),
        counts={n: counts[i] for i, n in enumerate(KIND_NAMES)},
        refreshes=len(ref_cycles),
        op_spans=spans,
        ref_cycles=np.asarray(ref_cycles, dtype=np.int64),
        issue=np.asarray(rec_t, dtype=np.int64) if record else None,
        commands=rec_c,
        op_index=np.asarray(rec_op, dtype=np.int64) if record else None,
    )


# ------------------------------------------------------------------------------------------------
# Independent trace checker
# ------------------------------------------------------------------------------------------------
def check_trace(commands, issue, spec: DramSpec, pim: PimGeometry | None = None, *,
                limit: int = 50) -> list[str]:
    """Verify that a scheduled trace obeys every constraint listed in the module docstring.

    ``commands``: the issued ``(kind, banks)`` tuples in issue order (refresh insertions
    included); ``issue``: their issue cycles. Returns a list of violations (empty when the trace
    is legal), each starting with the constraint's name (``tRCD``, ``tRP``, ``tRAS``, ``tRTP``,
    ``tWR``, ``tRRD``, ``tFAW``, ``tCCD``, ``tWTR``, ``bus``, ``bus-order``, ``gbuf``, ``tRFC``,
    ``ref-idle``,
    ``cmd-bus``, ``state``); at most ``limit`` are reported.

    This is written independently of the scheduler: pairwise timing constraints are checked on
    whole arrays (every pair of activates / column commands closer than the constraint), bank
    constraints by replaying each row buffer's own command history.
    """
    o, tm = spec.organization, spec.timing
    nb, ng, bl = o.banks, o.bank_groups, o.burst_cycles
    dual = pim is not None and pim.row_buffers == 2
    poff = nb if dual else 0
    allmask = (1 << ng) - 1
    out: list[str] = []

    def bad(msg):
        if len(out) < limit:
            out.append(msg)

    n = len(commands)
    t = np.asarray(issue, dtype=np.int64)
    if t.shape != (n,):
        return [f"cmd-bus: {n} commands but {t.size} issue cycles"]
    kinds = np.array([_code(c[0]) for c in commands], dtype=np.int64)

    def bank_list(k, b):
        if k in (ACT, PRE, RD, WR):
            return [int(b)]
        if k in PIM_KINDS:
            if b is None:
                return list(range(nb))
            return [int(b)] if isinstance(b, (int, np.integer)) else [int(x) for x in b]
        return []

    banks = [bank_list(int(k), c[1]) for k, c in zip(kinds, commands)]
    masks = np.zeros(n, dtype=np.int64)
    for j, (k, bs) in enumerate(zip(kinds, banks)):
        if k in (GWRITE, READRES, PREA, REF):
            masks[j] = allmask
        else:
            m = 0
            for b in bs:
                if not 0 <= b < nb:
                    bad(f"state: command #{j} names bank {b} outside 0..{nb - 1}")
                m |= 1 << (b % ng)
            masks[j] = m

    def desc(j):
        return f"#{j} {KIND_NAMES[kinds[j]]} {commands[j][1]!r} at {t[j]}"

    # command bus: one command per cycle, in order
    if n > 1:
        for j in np.nonzero(np.diff(t) < 1)[0][:limit]:
            bad(f"cmd-bus: {desc(j + 1)} not after {desc(j)}")

    def pairwise(sel, name, near, far):
        """Every pair (i < j) in ``sel`` with t_j - t_i < (near if groups intersect else far)."""
        pos = np.nonzero(sel)[0]
        tt, mm = t[pos], masks[pos]
        for lag in range(1, max(near, far) + 1):
            if lag >= len(pos):
                break
            d = tt[lag:] - tt[:-lag]
            if d.min(initial=1 << 40) >= max(near, far):
                break
            need = np.where((mm[lag:] & mm[:-lag]) != 0, near, far)
            for i in np.nonzero(d < need)[0][:limit]:
                bad(f"{name}: {desc(pos[i + lag])} only {d[i]} cycles after {desc(pos[i])} "
                    f"(needs {need[i]})")

    is_act = np.isin(kinds, list(ACTIVATE_KINDS))
    pairwise(is_act, "tRRD", tm.trrd_l, tm.trrd_s)
    # tFAW: a GACT spends ``faw_weight`` activates of the window (PimGeometry.faw_weight)
    w_gact = min(pim.faw_weight, 4) if pim is not None else 1
    pa0 = np.nonzero(is_act)[0]
    pa = np.repeat(pa0, np.where(kinds[pa0] == GACT, w_gact, 1))
    if len(pa) > 4:
        d = t[pa[4:]] - t[pa[:-4]]
        for i in np.nonzero(d < tm.tfaw)[0][:limit]:
            bad(f"tFAW: five activates within {d[i] + 1} cycles, {desc(pa[i])} .. "
                f"{desc(pa[i + 4])} (window {tm.tfaw})")
    pairwise(np.isin(kinds, list(COLUMN_KINDS)), "tCCD", tm.tccd_l, tm.tccd_s)

    # data bus: no overlap, command order
    is_rd = np.isin(kinds, [RD, READRES])
    is_wr = np.isin(kinds, [WR, GWRITE])
    pb = np.nonzero(is_rd | is_wr)[0]
    start = t[pb] + np.where(is_rd[pb], tm.cl, tm.cwl)
    end = start + bl
    order = np.argsort(start, kind="stable")
    s_sorted, e_sorted = start[order], end[order]
    for i in np.nonzero(s_sorted[1:] < e_sorted[:-1])[0][:limit]:
        bad(f"bus: burst of {desc(pb[order[i + 1]])} [{s_sorted[i + 1]}, {e_sorted[i + 1]}) "
            f"overlaps burst of {desc(pb[order[i]])} [{s_sorted[i]}, {e_sorted[i]})")
    for i in np.nonzero(start[1:] < start[:-1])[0][:limit]:
        bad(f"bus-order: burst of {desc(pb[i + 1])} at {start[i + 1]} passes the earlier "
            f"command {desc(pb[i])}'s burst at {start[i]}")

    # tRFC: nothing within trfc after a REF, and no burst still on the bus when it issues
    pr = np.nonzero(kinds == REF)[0]
    for j in pr:
        busy = pb[(pb < j) & (end > t[j])] if len(pb) else pb
        if len(busy):
            bad(f"ref-idle: {desc(j)} while the burst of {desc(busy[-1])} is on the bus")
        k_end = np.searchsorted(t, t[j] + tm.trfc, side="left")
        if k_end > j + 1:
            bad(f"tRFC: {desc(j + 1)} within {tm.trfc} cycles of {desc(j)}")

    # tWTR and the global buffer: walk in order
    wr_end_g = [None] * ng
    gw_end = None
    for j in range(n):
        k = kinds[j]
        if k == WR:
            g = banks[j][0] % ng
            e = int(t[j]) + tm.cwl + bl
            wr_end_g[g] = e if wr_end_g[g] is None else max(wr_end_g[g], e)
        elif k == RD:
            g = banks[j][0] % ng
            for h in range(ng):
                if wr_end_g[h] is not None:
                    need = wr_end_g[h] + (tm.twtr_l if h == g else tm.twtr_s)
                    if t[j] < need:
                        bad(f"tWTR: {desc(j)} before {need} (write data ended {wr_end_g[h]})")
        elif k == GWRITE:
            gw_end = int(t[j]) + tm.cwl + bl
        elif k == MAC and gw_end is not None and t[j] < gw_end:
            bad(f"gbuf: {desc(j)} before the GWRITE data arrived at {gw_end}")

    # row buffers: replay each buffer's own history
    nbuf = 2 * nb
    is_open = [False] * nbuf
    act_at = [None] * nbuf
    col_at = [None] * nbuf       # last RD/MAC since the activate
    wr_at = [None] * nbuf        # last write data end since the activate
    closed_at = [None] * nbuf

    def close(j, i):
        tj = int(t[j])
        if tj < act_at[i] + tm.tras:
            bad(f"tRAS: {desc(j)} closes buffer {i} activated at {act_at[i]}")
        if col_at[i] is not None and tj < col_at[i] + tm.trtp_l:
            bad(f"tRTP: {desc(j)} closes buffer {i} read at {col_at[i]}")
        if wr_at[i] is not None and tj < wr_at[i] + tm.twr:
            bad(f"tWR: {desc(j)} closes buffer {i} written until {wr_at[i]}")
        is_open[i] = False
        closed_at[i] = tj

    for j in range(n):
        k = int(kinds[j])
        tj = int(t[j])
        off = poff if k in PIM_KINDS else 0
        if k in (ACT, GACT):
            for b in banks[j]:
                i = off + b
                if is_open[i]:
                    bad(f"state: {desc(j)} activates open buffer {i}")
                if closed_at[i] is not None and tj < closed_at[i] + tm.trp:
                    bad(f"tRP: {desc(j)} activates buffer {i} precharged at {closed_at[i]}")
                is_open[i] = True
                act_at[i] = tj
                col_at[i] = wr_at[i] = None
        elif k in (RD, WR, MAC):
            for b in banks[j]:
                i = off + b
                if not is_open[i]:
                    bad(f"state: {desc(j)} accesses closed buffer {i}")
                    continue
                if tj < act_at[i] + tm.trcd:
                    bad(f"tRCD: {desc(j)} only {tj - act_at[i]} cycles after the activate of "
                        f"buffer {i} at {act_at[i]}")
                if k == WR:
                    wr_at[i] = tj + tm.cwl + bl
                else:
                    col_at[i] = tj
        elif k in (PRE, PREP):
            for b in banks[j]:
                if is_open[off + b]:
                    close(j, off + b)
        elif k == PREA:
            for i in range(nbuf):
                if is_open[i]:
                    close(j, i)
        elif k == REF:
            for i in range(nbuf):
                if is_open[i]:
                    bad(f"state: {desc(j)} with buffer {i} open")
                elif closed_at[i] is not None and tj < closed_at[i] + tm.trp:
                    bad(f"tRP: {desc(j)} only {tj - closed_at[i]} cycles after buffer {i} "
                        f"was precharged")
    return out
