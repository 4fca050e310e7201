"""Exports of a :class:`~archsim.result.GraphResult`: text summary, JSON, CSV, Chrome trace, figure."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from archsim.result import GraphResult


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"  # pragma: no cover


def summary_text(r: "GraphResult") -> str:
    """Human-readable summary: totals, units, memories, energy."""
    lines = [
        f"design {r.design} ({r.design_hash})  workload {r.workload}  mapper {r.mapper}",
        f"cycles {r.cycles:,}  ({r.seconds * 1e6:.3f} us at {r.clock_hz / 1e9:g} GHz)   "
        f"energy {r.energy_pj / 1e6:.3f} uJ",
        "units:",
    ]
    for n, u in r.units.items():
        lines.append(f"  {n:<8} {u.kind:<15} busy {u.busy_cycles:>12,}  stall {u.stall_cycles:>12,}"
                     f"  utilization {u.utilization:6.1%}  tasks {u.tasks}")
    lines.append("memory:")
    for n, m in r.memory.items():
        lines.append(f"  {n:<8} read {_fmt_bytes(m.read_bytes):>12}  write "
                     f"{_fmt_bytes(m.write_bytes):>12}  bandwidth used {m.bandwidth_utilization:6.1%}")
    lines.append("energy: " + ", ".join(f"{k} {v / 1e6:.3f} uJ"
                                        for k, v in r.energy_breakdown_pj.items()))
    est = r.estimate
    if est is not None:
        lines.append(estimate_line(r.mapper, est))
    return "\n".join(lines)


def estimate_line(mapper: str, est: dict) -> str:
    """``mapper estimate: 3,361 cycles; evaluator: 3,709 cycles (+10.4%)``."""
    unit = "cycles" if est["quantity"] == "cycles" else "non-compulsory bytes"
    def fmt(v):
        return f"{v:,.0f}" if isinstance(v, (int, float)) else "-"
    line = f"{mapper} estimate: {fmt(est['mapper'])} {unit}; evaluator: {fmt(est['evaluator'])}"
    if isinstance(est["evaluator"], (int, float)) and isinstance(est["mapper"], (int, float)):
        if est["mapper"]:
            line += f" ({100 * (est['evaluator'] - est['mapper']) / est['mapper']:+.1f}%)"
    return line


def write_json(r: "GraphResult", path) -> None:
    """The full result as JSON (summary, mapping and timeline)."""
    Path(path).write_text(json.dumps(r.to_dict(), indent=2) + "\n")


CSV_COLUMNS = ("einsum", "unit", "start_cycle", "end_cycle", "compute_cycles", "stall_cycles",
               "energy_pj", "ops", "read_bytes", "write_bytes", "text")


def write_csv(r: "GraphResult", path) -> None:
    """One row per task. Dict-valued columns (ops, bytes per level) are ``key=value;...``."""
    def flat(d):
        return ";".join(f"{k}={v}" for k, v in d.items())

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for t in r.timeline:
            w.writerow([t.einsum, t.unit, t.start_cycle, t.end_cycle, t.compute_cycles,
                        t.stall_cycles, f"{t.energy_pj:.6g}", flat(t.ops), flat(t.read_bytes),
                        flat(t.write_bytes), t.text])


def chrome_trace(r: "GraphResult") -> dict:
    """Chrome trace-event document: one track per unit, one slice per task and phase.

    Timestamps are microseconds (the format's unit), converted from cycles with ``clock_hz``.
    """
    us_per_cycle = 1e6 / r.clock_hz
    tids = {u: i + 1 for i, u in enumerate(r.units)}
    events: list[dict] = [{"ph": "M", "pid": 1, "tid": 0, "name": "process_name",
                           "args": {"name": f"{r.design} / {r.workload}"}}]
    for u, tid in tids.items():
        events.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_name",
                       "args": {"name": f"{u} ({r.units[u].kind})"}})
        events.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_sort_index",
                       "args": {"sort_index": tid}})
    for t in r.timeline:
        events.append({
            "ph": "X", "pid": 1, "tid": tids[t.unit], "name": t.einsum, "cat": "task",
            "ts": t.start_cycle * us_per_cycle,
            "dur": max(t.end_cycle - t.start_cycle, 0) * us_per_cycle,
            "args": {"einsum": t.text, "compute_cycles": t.compute_cycles,
                     "stall_cycles": t.stall_cycles, "ops": t.ops,
                     "read_bytes": t.read_bytes, "write_bytes": t.write_bytes},
        })
        for name, a, b in t.phases:
            if b > a:
                events.append({"ph": "X", "pid": 1, "tid": tids[t.unit], "name": name,
                               "cat": "phase", "ts": a * us_per_cycle,
                               "dur": (b - a) * us_per_cycle})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"design": r.design, "workload": r.workload, "cycles": r.cycles}}


def write_chrome_trace(r: "GraphResult", path) -> None:
    """Write :func:`chrome_trace` as JSON (ui.perfetto.dev and chrome://tracing open it)."""
    Path(path).write_text(json.dumps(chrome_trace(r)) + "\n")


def plot_result(r: "GraphResult", path) -> None:
    """Timeline (one row per unit, stalls hatched) and per-unit utilization, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    units = list(r.units)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 1.2 + 0.6 * len(units)),
                                  gridspec_kw={"width_ratios": [4, 1]})
    cmap = plt.get_cmap("tab10")
    for t in r.timeline:
        y = units.index(t.unit)
        dur = t.end_cycle - t.start_cycle
        ax.broken_barh([(t.start_cycle, min(t.compute_cycles, dur))], (y - 0.35, 0.7),
                       color=cmap(y % 10))
        if t.stall_cycles:
            ax.broken_barh([(t.start_cycle + t.compute_cycles, t.stall_cycles)], (y - 0.35, 0.7),
                           facecolor="white", edgecolor=cmap(y % 10), hatch="//")
    ax.set_yticks(range(len(units)), units)
    ax.set_xlabel("cycle")
    ax.set_xlim(0, max(r.cycles, 1))
    ax.set_title(f"{r.design} / {r.workload}: {r.cycles:,} cycles (hatched: memory stall)")
    ax2.barh(range(len(units)), [r.units[u].utilization for u in units],
             color=[cmap(i % 10) for i in range(len(units))])
    ax2.set_yticks(range(len(units)), units)
    ax2.set_xlim(0, 1)
    ax2.set_xlabel("utilization")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
