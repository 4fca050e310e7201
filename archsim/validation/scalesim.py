"""Validation against reference simulators and papers.

``scalesim``: every row of a SCALE-Sim v3 results CSV (../shared/reference/scalesim_gemm.csv) is
simulated on one systolic array of that shape and dataflow, through the same evaluator as any
other workload (the built-in ``sa128`` design with ``--set`` overrides for rows, cols and dataflow,
a scratchpad large enough to hold the operands, and the whole GEMM as one tile, as SCALE-Sim
computes it). Compute cycles are compared in SCALE-Sim's convention (see
:func:`archsim.units.systolic.scalesim_reported_cycles`). Scratchpad reads are reported beside.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from archsim.errors import UserError
from archsim.units.systolic import scalesim_reported_cycles

REQUIRED = ("M", "N", "K", "rows", "cols", "dataflow", "compute_cycles")


def _int(row: dict, key: str, where: str) -> int:
    try:
        return int(float(row[key]))
    except (TypeError, ValueError):
        raise UserError(f"{where}: column {key!r} must be a number, found {row[key]!r}") from None


def simulate_gemm_on_array(M: int, N: int, K: int, rows: int, cols: int, dataflow: str,
                           bits: int = 16):
    """Simulate one GEMM as one tile on a ``rows x cols`` array; returns the Result."""
    import dataflow as df

    from archsim import Mapping, load_design, simulate

    cascade = df.Cascade.from_text(["Z[m,n] = A[m,k] * B[k,n]"], {"m": M, "n": N, "k": K},
                                   name=f"gemm_{M}x{N}x{K}", default_bits=bits)
    el = bits // 8
    capacity = 2 * el * (M * K + K * N + M * N) + 1024
    design = load_design("sa128", [f"units.sa.rows={rows}", f"units.sa.cols={cols}",
                                 f"units.sa.dataflow={dataflow}",
                                 f"memories.spm.capacity_bytes={capacity}"])
    mapping = Mapping(binding={"Z": "sa"}, order=["Z"],
                      placement={"A": "hbm", "B": "hbm", "Z": "hbm"},
                      tiling={"Z": {"M": M, "N": N, "K": K, "order": "mnk"}},
                      mapper="validate-scalesim")
    return simulate(design, cascade, mapping)


def scalesim_rows(path: str | Path) -> list[dict]:
    """Simulate every row of a SCALE-Sim CSV; one dict per row with ours vs reference."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: missing columns {', '.join(missing)}; expected at least "
                            f"{', '.join(REQUIRED)}")
        rows = list(reader)
    out = []
    for i, row in enumerate(rows, start=2):
        where = f"{path}:{i}"
        M, N, K, R, C = (_int(row, k, where) for k in ("M", "N", "K", "rows", "cols"))
        df = row["dataflow"].strip().lower()
        if df not in ("os", "ws", "is"):
            raise UserError(f"{where}: dataflow must be os, ws or is, found {row['dataflow']!r}")
        ref = _int(row, "compute_cycles", where)
        try:
            res = simulate_gemm_on_array(M, N, K, R, C, df)
        except (UserError, ValueError) as exc:
            raise UserError(f"{where}: {exc}") from None
        task = res.timeline[0]
        ours = scalesim_reported_cycles(task.details["unit_compute_cycles"])
        rec = {"M": M, "N": N, "K": K, "rows": R, "cols": C, "dataflow": df,
               "ours_compute_cycles": ours, "ref_compute_cycles": ref,
               "error_pct": 100.0 * (ours - ref) / ref if ref else float(ours != 0) * 100}
        spm_reads = task.details.get("spm_element_reads", {})
        for ours_key, ref_key in (("a_reads", "sram_ifmap_reads"), ("b_reads", "sram_filter_reads")):
            if ref_key in row and row[ref_key] not in ("", None) and ours_key in spm_reads:
                rec[f"ours_{ref_key}"] = spm_reads[ours_key]
                rec[f"ref_{ref_key}"] = _int(row, ref_key, where)
        if "scalesim_wall_s" in row and row["scalesim_wall_s"]:
            rec["ref_wall_s"] = float(row["scalesim_wall_s"])
        out.append(rec)
    return out


def format_scalesim(rows: list[dict], tolerance_pct: float) -> str:
    """Table of ours vs SCALE-Sim compute cycles."""
    head = (f"{'M':>5} {'N':>5} {'K':>5} {'array':>8} {'df':>3} {'ours':>10} {'scalesim':>10} "
            f"{'error%':>8}  {'ifmap rd':>9} {'filter rd':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        flag = "" if abs(r["error_pct"]) <= tolerance_pct else "  <-- over tolerance"
        def rd(key, r=r):
            if f"ours_{key}" not in r:
                return "-"
            return "ok" if r[f"ours_{key}"] == r[f"ref_{key}"] else f"{r[f'ours_{key}']}"
        lines.append(f"{r['M']:>5} {r['N']:>5} {r['K']:>5} {r['rows']:>3}x{r['cols']:<4} "
                     f"{r['dataflow']:>3} {r['ours_compute_cycles']:>10} "
                     f"{r['ref_compute_cycles']:>10} {r['error_pct']:>8.3f}  "
                     f"{rd('sram_ifmap_reads'):>9} {rd('sram_filter_reads'):>9}{flag}")
    worst = max((abs(r["error_pct"]) for r in rows), default=0.0)
    lines.append(f"{len(rows)} rows, worst |error| {worst:.3f}%  (scratchpad reads: ok = equal)")
    return "\n".join(lines)


def write_json(rows: list[dict], path) -> None:
    """Per-row objects as a JSON list."""
    try:
        Path(path).write_text(json.dumps(rows, indent=2) + "\n")
    except OSError as exc:
        raise UserError(f"--json {path}: cannot write ({exc.strerror})") from None
