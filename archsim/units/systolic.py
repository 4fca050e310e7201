"""Systolic array: output-, weight- and input-stationary GEMM timing in closed form.

Timing model (per batch element of a contraction ``Z[m,n] = A[m,k] * B[k,n]``)
-----------------------------------------------------------------------------
The array has ``R`` rows and ``C`` columns of MAC PEs. A dataflow decides which two GEMM
dimensions are spread over the array (``Sr`` over rows, ``Sc`` over columns) and which one is
streamed in time (``T``):

==========  =====  =====  =====  ==============================================
dataflow    Sr     Sc     T      what stays in the PEs
==========  =====  =====  =====  ==============================================
``os``      M      N      K      output partial sums
``ws``      K      N      M      weights (``B``)
``is``      K      M      N      inputs (``A``)
==========  =====  =====  =====  ==============================================

The GEMM is cut into ``ceil(Sr/R) * ceil(Sc/C)`` *folds* that run back to back (a partial fold
takes as long as a full one). One fold takes

* ``os``: ``T + (R - 1) + (C - 1)``: operands enter skewed across the rows (R - 1 cycles) and
  columns (C - 1) while the T products accumulate in place;
* ``ws`` / ``is``: ``R + T + (R - 1) + (C - 1)``: first the stationary operand is loaded, one
  array row per cycle (R), then T operand vectors stream with the same skew.

This is the fold timing of SCALE-Sim v3 (``scalesim`` 3.0.0, ``compute/systolic_compute_*.py``),
which we validate against row by row (../shared/reference/scalesim_gemm.csv). SCALE-Sim reports
the 0-based index of the last busy cycle, i.e. the cycle count minus one;
:func:`scalesim_reported_cycles` converts.

Memory model
------------
Operands live in a scratchpad SRAM (``scratchpad`` in the design). Tensors whose home is an
off-chip level are staged through the scratchpad in tiles ``(Tm, Tn, Tk)`` with double buffering;
the tiling and loop order with the least estimated time (then least traffic) that fits the free
scratchpad is chosen, unless the mapping fixes one. A tile's compute follows the fold model
above, so tiling along the streamed dimension costs extra fold overheads. The task is planned as
three phases: load the first tiles, stream (compute overlapped with the remaining traffic), write
back the last output tile.
"""
from __future__ import annotations

import itertools
from typing import Any, Literal

import numpy as np
from pydantic import NonNegativeFloat, PositiveInt, model_validator

from archsim.core.physics import whole_cycles
from archsim.errors import MappingError
from archsim.units.base import (
    Phase,
    PlanContext,
    StrictModel,
    TaskPlan,
    Traffic,
    UnitModel,
    UnitSpec,
)

Dataflow = Literal["os", "ws", "is"]
DATAFLOWS: tuple[str, ...] = ("os", "ws", "is")
LOOP_ORDERS: tuple[str, ...] = tuple("".join(p) for p in itertools.permutations("mnk"))


class SystolicEnergy(StrictModel):
    """Energy per action of a systolic array."""

    mac_pj: NonNegativeFloat


class SystolicArraySpec(UnitSpec):
    """Design-file entry of a systolic array (``kind: systolic_array``)."""

    kind: Literal["systolic_array"]
    rows: PositiveInt
    cols: PositiveInt
    dataflow: Dataflow
    scratchpad: str
    energy: SystolicEnergy
    arrays: PositiveInt = 1
    double_buffered: bool = False

    @model_validator(mode="after")
    def _db_needs_stationary(self):
        if self.double_buffered and self.dataflow == "os":
            raise ValueError("double_buffered applies to a stationary operand (dataflow ws or "
                             "is), found dataflow 'os'")
        return self


# --------------------------------------------------------------------------- closed forms
def array_roles(dataflow: str, M, N, K):
    """(Sr, Sc, T): the GEMM dimensions mapped on array rows, array columns and time."""
    if dataflow == "os":
        return M, N, K
    if dataflow == "ws":
        return K, N, M
    if dataflow == "is":
        return K, M, N
    raise ValueError(f"unknown dataflow {dataflow!r}; expected one of {', '.join(DATAFLOWS)}")


def cycles_per_fold(dataflow: str, rows: int, cols: int, T):
    """Cycles one fold takes with ``T`` operand vectors streamed (see the module docstring)."""
    preload = 0 if dataflow == "os" else rows
    return preload + T + (rows - 1) + (cols - 1)


def fold_count(dataflow: str, rows: int, cols: int, M, N, K):
    """Number of folds of an ``M x N x K`` GEMM: ceil(Sr/R) * ceil(Sc/C)."""
    Sr, Sc, _ = array_roles(dataflow, M, N, K)
    return -(-np.asarray(Sr) // rows) * -(-np.asarray(Sc) // cols)


def gemm_compute_cycles(M, N, K, rows: int, cols: int, dataflow: str, arrays: int = 1,
                        double_buffered: bool = False):
    """Cycles to compute ``Z[M,N] = A[M,K] B[K,N]`` on ``arrays`` R x C arrays, memory never
    stalling.

    The folds are dealt to the arrays evenly (``ceil(folds / arrays)`` each). Without double
    buffering the folds of an array run back to back as in SCALE-Sim. With
    ``double_buffered`` (ws/is) the next fold's stationary operand is shifted in while the
    current fold streams, as in the TPU v1 matrix unit (Jouppi et al., ISCA'17: weights are
    double-buffered), and consecutive folds' wavefronts follow each other: an array takes
    ``R + (f - 1) * max(T, R) + T + (R - 1) + (C - 1)`` cycles for ``f`` folds.
    Accepts integers or NumPy integer arrays (element-wise); a zero-sized GEMM takes 0 cycles.
    """
    _, _, T = array_roles(dataflow, M, N, K)
    T = np.asarray(T)
    folds = -(-fold_count(dataflow, rows, cols, M, N, K) // arrays)
    if double_buffered and dataflow != "os":
        cyc = np.where(folds > 0, rows + (folds - 1) * np.maximum(T, rows) + T + (rows - 1)
                       + (cols - 1), 0)
    else:
        cyc = folds * cycles_per_fold(dataflow, rows, cols, T)
    return cyc if np.ndim(cyc) else int(cyc)


def scalesim_reported_cycles(cycles: int) -> int:
    """SCALE-Sim's ``compute_cycles`` for a run of ``cycles`` cycles (0-based last-cycle index)."""
    return max(int(cycles) - 1, 0)


def sram_accesses(M, N, K, rows: int, cols: int, dataflow: str) -> dict[str, Any]:
    """Scratchpad element accesses of one GEMM, as SCALE-Sim counts them.

    Returns ``a_reads`` (the M x K operand), ``b_reads`` (K x N), ``out_writes`` and
    ``out_reads`` (partial sums read back to accumulate across row folds; SCALE-Sim does not
    count these). The stationary operand is read once; the streamed ones once per fold of the
    other spatial dimension.
    """
    M, N, K = (np.asarray(x) for x in (M, N, K))
    ceil = lambda a, b: -(-a // b)  # noqa: E731
    if dataflow == "os":
        a_reads, b_reads = M * K * ceil(N, cols), K * N * ceil(M, rows)
        out_writes, out_reads = M * N, 0 * M
    elif dataflow == "ws":
        a_reads, b_reads = M * K * ceil(N, cols), K * N
        out_writes = M * N * ceil(K, rows)
        out_reads = out_writes - M * N
    elif dataflow == "is":
        a_reads, b_reads = M * K, K * N * ceil(M, cols)
        out_writes = M * N * ceil(K, rows)
        out_reads = out_writes - M * N
    else:
        raise ValueError(f"unknown dataflow {dataflow!r}")
    out = dict(a_reads=a_reads, b_reads=b_reads, out_writes=out_writes, out_reads=out_reads)
    return {k: (v if np.ndim(v) else int(v)) for k, v in out.items()}


def _tile_classes(size: int, tile: np.ndarray):
    """The (count, extent) pairs of a dimension of ``size`` cut into tiles of ``tile``."""
    full = size // tile
    rem = size - full * tile
    return ((full, tile), ((rem > 0).astype(np.int64), rem))


def tiled_totals(M: int, N: int, K: int, Tm, Tn, Tk, rows: int, cols: int, dataflow: str,
                 arrays: int = 1, double_buffered: bool = False):
    """Compute cycles and scratchpad accesses summed over the tiles of a tiled GEMM.

    ``Tm``, ``Tn``, ``Tk`` are arrays of candidate tile sizes (broadcast together). At most two
    tile extents exist per dimension (full and remainder), so this sums 8 closed-form classes.
    Returns ``(cycles, accesses)`` with arrays of the broadcast shape; ``accesses`` holds the
    :func:`sram_accesses` counts plus ``folds``.
    """
    Tm, Tn, Tk = np.broadcast_arrays(*(np.asarray(x, dtype=np.int64) for x in (Tm, Tn, Tk)))
    cycles = np.zeros(Tm.shape, dtype=np.int64)
    acc = {k: np.zeros(Tm.shape, dtype=np.int64)
           for k in ("a_reads", "b_reads", "out_writes", "out_reads", "folds")}
    for (cm, sm), (cn, sn), (ck, sk) in itertools.product(
        _tile_classes(M, Tm), _tile_classes(N, Tn), _tile_classes(K, Tk)
    ):
        count = cm * cn * ck
        cycles += count * gemm_compute_cycles(sm, sn, sk, rows, cols, dataflow, arrays,
                                              double_buffered)
        acc["folds"] += count * fold_count(dataflow, rows, cols, sm, sn, sk)
        s = sram_accesses(sm, sn, sk, rows, cols, dataflow)
        for key in ("a_reads", "b_reads", "out_writes", "out_reads"):
            acc[key] += count * s[key]
    # partial sums of K tiles after the first are read back and re-accumulated on chip
    k_tiles = -(-K // Tk)
    acc["out_reads"] += (k_tiles - 1) * M * N
    return cycles, acc


def _candidates(size: int, step: int) -> np.ndarray:
    """Tile sizes to try for a dimension: the full size and step * 2^i below it."""
    vals = {size}
    t = step
    while t < size:
        vals.add(t)
        t *= 2
    return np.array(sorted(vals), dtype=np.int64)


def _loop_factors(order: str, trips: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """How many times each operand is moved between the scratchpad and its home.

    ``order`` lists tile loops outer to inner. An operand indexed by a set of loops is fetched
    again whenever a loop *outside* its innermost indexing loop advances without indexing it.
    """
    idx = {"a": "mk", "b": "kn", "out": "mn"}
    out = {}
    for t, uses in idx.items():
        inner = max(order.index(ch) for ch in uses)
        f = np.ones_like(trips["m"])
        for pos in range(inner):
            if order[pos] not in uses:
                f = f * trips[order[pos]]
        out[t] = f
    return out


# --------------------------------------------------------------------------- unit model
class SystolicArray(UnitModel):
    """Timing and energy of einsums that are plain contractions on a systolic array."""

    kind = "systolic_array"
    spec_class = SystolicArraySpec

    @property
    def rows(self) -> int:
        return self.spec.rows

    @property
    def cols(self) -> int:
        return self.spec.cols

    def peak_ops_per_cycle(self) -> float:
        """Peak MACs per unit cycle (rows * cols * arrays)."""
        return float(self.rows * self.cols * self.spec.arrays)

    def own_unsupported_reason(self, cascade, einsum: str) -> str | None:
        """None for two-operand products reduced by '+', else why the array cannot run it."""
        if cascade.contraction(einsum) is None:
            return "not a two-operand product reduced by '+' (a systolic array runs GEMMs)"
        return None

    def plan(self, ctx: PlanContext) -> TaskPlan:
        """Plan a contraction: choose (or check) a tiling, then cost the three phases."""
        cas = ctx.cascade
        con = cas.contraction(ctx.einsum)
        if con is None:
            raise MappingError(f"einsum {ctx.einsum!r} cannot run on systolic array "
                               f"{self.name!r}: {self.unsupported_reason(cas, ctx.einsum)}")
        B, M, N, K = con.B, con.M, con.N, con.K
        out_t = con.out
        spm = self.spec.scratchpad
        el = {t: cas.tensors[n].bits / 8 for t, n in (("a", con.a), ("b", con.b), ("out", out_t))}
        home = {t: ctx.placement[n] for t, n in (("a", con.a), ("b", con.b), ("out", out_t))}
        # operands homed outside the scratchpad are staged through it in tiles
        staged = {t: home[t] != spm for t in home}
        bw = ctx.bandwidth_bytes_per_cycle

        tiling = self._choose_tiling(M, N, K, el, staged, home, ctx, bw)
        Tm, Tn, Tk, order = tiling["M"], tiling["N"], tiling["K"], tiling["order"]

        cyc, acc = tiled_totals(M, N, K, Tm, Tn, Tk, self.rows, self.cols, self.spec.dataflow,
                                self.spec.arrays, self.spec.double_buffered)
        unit_cycles = int(cyc) * B
        compute_cycles = whole_cycles(unit_cycles * self.cycle_scale)
        trips = {d: np.int64(-(-s // t)) for d, s, t in (("m", M, Tm), ("n", N, Tn), ("k", K, Tk))}
        f = {k: int(v) for k, v in _loop_factors(order, trips).items()}

        size = {"a": M * K, "b": K * N, "out": M * N}
        traffic = Traffic()
        # array <-> scratchpad (SCALE-Sim style element counts, times element size)
        traffic.read(spm, B * (int(acc["a_reads"]) * el["a"] + int(acc["b_reads"]) * el["b"]
                               + int(acc["out_reads"]) * el["out"]))
        traffic.write(spm, B * int(acc["out_writes"]) * el["out"])
        # scratchpad <-> home levels for staged operands; partial sums written back and
        # re-fetched when the K loop is outside the output's innermost loop
        moved = {}
        for t in ("a", "b"):
            if staged[t]:
                moved[t] = B * size[t] * f[t] * el[t]
                traffic.move(home[t], spm, moved[t])
        if staged["out"]:
            w = B * size["out"] * f["out"] * el["out"]
            r = B * size["out"] * (f["out"] - 1) * el["out"]
            moved["out"] = w + r
            traffic.move(spm, home["out"], w)
            traffic.move(home["out"], spm, r)

        # phases: first input tiles, steady stream, last output tile
        tile_bytes = {"a": min(Tm, M) * min(Tk, K) * el["a"], "b": min(Tk, K) * min(Tn, N) * el["b"],
                      "out": min(Tm, M) * min(Tn, N) * el["out"]}
        first, last = Traffic(), Traffic()
        for t in ("a", "b"):
            if staged[t]:
                first.move(home[t], spm, tile_bytes[t])
        if staged["out"]:
            last.move(spm, home["out"], tile_bytes["out"])
        pro, epi = first.totals(), last.totals()
        total = traffic.totals()
        steady = {lvl: max(total[lvl] - pro.get(lvl, 0) - epi.get(lvl, 0), 0.0) for lvl in total}
        phases = []
        if pro:
            phases.append(Phase("load first tiles", 0.0, pro))
        phases.append(Phase("stream", float(compute_cycles), {k: v for k, v in steady.items() if v}))
        if epi:
            phases.append(Phase("write back last tile", 0.0, epi))

        macs = B * M * N * K
        reads, writes = traffic.as_ints()
        details = {
            "dataflow": self.spec.dataflow,
            "gemm": {"B": B, "M": M, "N": N, "K": K},
            "tiling": {"M": int(Tm), "N": int(Tn), "K": int(Tk), "order": order},
            "folds": int(B * acc["folds"]),
            "unit_compute_cycles": unit_cycles,
            "spm_element_reads": {k: int(B * acc[k]) for k in
                                  ("a_reads", "b_reads", "out_writes", "out_reads")},
            "offchip_bytes": {t: int(v) for t, v in moved.items()},
        }
        return TaskPlan(
            phases=phases,
            compute_cycles=compute_cycles,
            ops={"mac": macs},
            read_bytes=reads,
            write_bytes=writes,
            unit_energy_pj=macs * self.spec.energy.mac_pj,
            useful_cycles=macs / self.peak_ops_per_cycle() * self.cycle_scale,
            details=details,
        )

    # ------------------------------------------------------------------ tiling search
    def _choose_tiling(self, M, N, K, el, staged, home, ctx: PlanContext, bw) -> dict[str, Any]:
        """The tiling fixed by the mapping (checked), or the fastest one that fits."""
        R, C, df = self.rows, self.cols, self.spec.dataflow
        Sr_dim, Sc_dim, _ = array_roles(df, "M", "N", "K")
        step = {"M": 1, "N": 1, "K": 1}
        step[Sr_dim], step[Sc_dim] = R, C
        if ctx.tiling:
            t = dict(ctx.tiling)
            unknown = set(t) - {"M", "N", "K", "order"}
            if unknown:
                raise MappingError(f"einsum {ctx.einsum!r}: unknown tiling keys {sorted(unknown)}; "
                                   "expected M, N, K (tile sizes) and order (e.g. 'nmk')")
            Tm, Tn, Tk = (int(t.get(d, s)) for d, s in (("M", M), ("N", N), ("K", K)))
            order = str(t.get("order", "mnk"))
            if order not in LOOP_ORDERS:
                raise MappingError(f"einsum {ctx.einsum!r}: tiling order {order!r} is not a "
                                   f"permutation of 'mnk'")
            if min(Tm, Tn, Tk) <= 0:
                raise MappingError(f"einsum {ctx.einsum!r}: tile sizes must be positive")
            need = self._footprint(np.array([min(Tm, M)]), np.array([min(Tn, N)]),
                                   np.array([min(Tk, K)]), el, staged)[0]
            if need > ctx.staging_bytes:
                raise MappingError(
                    f"einsum {ctx.einsum!r}: tiles M={Tm} N={Tn} K={Tk} need {int(need)} bytes of "
                    f"double-buffered staging in {self.spec.scratchpad!r} but only "
                    f"{ctx.staging_bytes} are free")
            return {"M": min(Tm, M), "N": min(Tn, N), "K": min(Tk, K), "order": order}

        cm, cn, ck = (_candidates(s, step[d]) for d, s in (("M", M), ("N", N), ("K", K)))
        Tm, Tn, Tk = (a.ravel() for a in np.meshgrid(cm, cn, ck, indexing="ij"))
        foot = self._footprint(Tm, Tn, Tk, el, staged)
        fits = foot <= ctx.staging_bytes
        if not fits.any():
            smallest = int(foot.min())
            raise MappingError(
                f"einsum {ctx.einsum!r} on {self.name!r}: the smallest tile set needs {smallest} "
                f"bytes of double-buffered staging in {self.spec.scratchpad!r} but only "
                f"{ctx.staging_bytes} are free")
        Tm, Tn, Tk, foot = Tm[fits], Tn[fits], Tk[fits], foot[fits]
        cyc, _ = tiled_totals(M, N, K, Tm, Tn, Tk, R, C, df, self.spec.arrays,
                              self.spec.double_buffered)
        cyc = cyc * self.cycle_scale
        trips = {"m": -(-M // Tm), "n": -(-N // Tn), "k": -(-K // Tk)}
        size = {"a": M * K, "b": K * N, "out": M * N}
        best = None
        for order in LOOP_ORDERS:
            f = _loop_factors(order, trips)
            mem_t = np.zeros_like(cyc, dtype=float)
            per_level: dict[str, np.ndarray] = {}
            traffic = np.zeros_like(cyc, dtype=float)
            for t in ("a", "b", "out"):
                if not staged[t]:
                    continue
                mult = f[t] if t != "out" else 2 * f[t] - 1
                b = size[t] * mult * el[t]
                per_level[home[t]] = per_level.get(home[t], 0) + b
                traffic = traffic + b
            for lvl, b in per_level.items():
                mem_t = np.maximum(mem_t, b / bw[lvl])
            est = np.maximum(cyc, mem_t)
            # lexicographic: time, then traffic, then footprint, then candidate index
            keys = np.lexsort((foot, traffic, np.round(est, 6)))
            i = keys[0]
            cand = (round(float(est[i]), 6), float(traffic[i]), float(foot[i]),
                    LOOP_ORDERS.index(order))
            if best is None or cand < best[0]:
                best = (cand, {"M": int(Tm[i]), "N": int(Tn[i]), "K": int(Tk[i]), "order": order})
        return best[1]

    @staticmethod
    def _footprint(Tm, Tn, Tk, el, staged) -> np.ndarray:
        """Double-buffered scratchpad bytes for staged operand tiles."""
        foot = np.zeros(np.shape(Tm), dtype=float)
        if staged["a"]:
            foot = foot + Tm * Tk * el["a"]
        if staged["b"]:
            foot = foot + Tk * Tn * el["b"]
        if staged["out"]:
            foot = foot + Tm * Tn * el["out"]
        return 2 * foot

