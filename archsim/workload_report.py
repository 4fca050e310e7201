"""What ``archsim workload`` prints and draws: per-einsum operations, bytes and op/B.

Rows count one instance of each einsum (``instances`` says how many times a repeated layer
runs); the total row counts every instance. FLOPs are 2 per multiply-accumulate and 1 per other
operation; op/B is FLOPs per byte of distinct data read and written, as in roofline plots and
Duplex's placement rule (../shared/reference/duplex.md).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from dataflow import Cascade

COLUMNS = ("einsum", "role", "instances", "flops", "read_bytes", "write_bytes", "op_per_byte",
           "gemm", "text")


def workload_rows(cascade: "Cascade") -> list[dict]:
    """Return one dict per einsum: name, role tag, instances, FLOPs, read/write bytes, op/B
    (FLOPs per byte), GEMM shape ``BxMxNxK`` when it is a contraction, and its text."""
    rows = []
    for e in cascade.einsums:
        rd, wr = cascade.einsum_bytes(e.name)
        fl = cascade.flops(e.name)
        con = cascade.contraction(e.name)
        rows.append({
            "einsum": e.name, "role": cascade.tag(e.name, "role", ""),
            "instances": cascade.multiplicity(e.name), "flops": fl, "read_bytes": rd,
            "write_bytes": wr, "op_per_byte": fl / (rd + wr) if rd + wr else 0.0,
            "gemm": f"{con.B}x{con.M}x{con.N}x{con.K}" if con else "", "text": e.text,
        })
    return rows


def totals(rows: list[dict]) -> dict:
    """Return whole-workload FLOPs and bytes (every instance counted) and their op/B."""
    fl = sum(r["flops"] * r["instances"] for r in rows)
    rd = sum(r["read_bytes"] * r["instances"] for r in rows)
    wr = sum(r["write_bytes"] * r["instances"] for r in rows)
    return {"flops": fl, "read_bytes": rd, "write_bytes": wr,
            "op_per_byte": fl / (rd + wr) if rd + wr else 0.0}


def _si(n: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def format_workload(cascade: "Cascade") -> str:
    """Return the per-einsum table as fixed-width text, with a header line and a total row."""
    rows = workload_rows(cascade)
    head = ["einsum", "role", "x", "FLOPs", "read B", "write B", "op/B", "GEMM BxMxNxK", "text"]
    body = [[r["einsum"], r["role"], str(r["instances"]), _si(r["flops"]), _si(r["read_bytes"]),
             _si(r["write_bytes"]), f"{r['op_per_byte']:.3g}", r["gemm"], r["text"]]
            for r in rows]
    t = totals(rows)
    body.append(["total", "", "", _si(t["flops"]), _si(t["read_bytes"]), _si(t["write_bytes"]),
                 f"{t['op_per_byte']:.3g}", "", "(every instance counted)"])
    widths = [max(len(row[i]) for row in body + [head]) for i in range(len(head) - 1)]
    lines = [f"workload {cascade.name}: {len(cascade.einsums)} einsums"
             + "".join(f"; repeat {r.name} x{r.count} ({r.first} .. {r.last})"
                       for r in cascade.repeats)]
    if cascade.description:
        lines.append(" ".join(cascade.description.split()))
    for row in [head] + body:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])] + \
            [c.rjust(w) for c, w in zip(row[2:-2], widths[2:-1])] + \
            [row[-2].ljust(widths[-1]), row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def write_rows(cascade: "Cascade", path, fmt: str) -> None:
    """Write the rows as ``json`` (with totals) or ``csv``."""
    rows = workload_rows(cascade)
    if fmt == "json":
        Path(path).write_text(json.dumps({"workload": cascade.name,
                                          "repeats": [r.__dict__ for r in cascade.repeats],
                                          "totals": totals(rows), "einsums": rows},
                                         indent=2) + "\n")
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def draw_graph(cascade: "Cascade", path) -> None:
    """Draw the einsum dependency graph (left to right by dependency depth, coloured by role,
    repeated bodies labelled with their count) to an image file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    dag = cascade.dag().copy()
    for layer, nodes in enumerate(nx.topological_generations(dag)):
        for n in nodes:
            dag.nodes[n]["layer"] = layer
    pos = nx.multipartite_layout(dag, subset_key="layer")
    roles = sorted({cascade.tag(n, "role", "") for n in dag.nodes})
    cmap = plt.get_cmap("tab20")
    colour = {r: cmap(i % 20) for i, r in enumerate(roles)}
    depth = max((d["layer"] for _, d in dag.nodes(data=True)), default=0) + 1
    width = min(max(8.0, depth * 0.9), 60.0)
    height = min(max(4.0, max(len(g) for g in nx.topological_generations(dag)) * 0.5), 40.0)
    fig, ax = plt.subplots(figsize=(width, height))
    nx.draw_networkx_edges(dag, pos, ax=ax, arrows=True, arrowsize=8, edge_color="#888888",
                           width=0.6)
    for role in roles:
        nodes = [n for n in dag.nodes if cascade.tag(n, "role", "") == role]
        nx.draw_networkx_nodes(dag, pos, nodelist=nodes, node_color=[colour[role]],
                               node_size=260, ax=ax, label=role or "(untagged)")
    labels = {n: n + (f" x{cascade.multiplicity(n)}" if cascade.multiplicity(n) > 1 else "")
              for n in dag.nodes}
    nx.draw_networkx_labels(dag, pos, labels=labels, font_size=6, ax=ax)
    if len(roles) > 1 or roles != [""]:
        ax.legend(loc="upper left", fontsize=7, frameon=False, ncols=2)
    ax.set_title(f"{cascade.name}: {len(cascade.einsums)} einsums")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
