"""Memory-plan reports: a text table and a figure of scratchpad occupancy over time."""
from __future__ import annotations


def describe_memory(mapping, cascade) -> str:
    """Text: budget, traffic, solver status, then one line per buffer."""
    mem, info = mapping.memory, mapping.info
    solver = info.get("solver", {})
    gap = solver.get("gap")
    lines = [f"memory plan in {mem['level']!r} (backing {mem['backing']!r}): budget "
             f"{mem['budget_bytes']:,} B ({info.get('budget', 'bytes')}), peak "
             f"{info.get('peak_bytes', 0):,} B, arena {info.get('arena_bytes') or 0:,} B",
             f"off-chip traffic: non-compulsory {info.get('non_compulsory_bytes', 0):,} B, "
             f"compulsory {info.get('compulsory_bytes', 0):,} B",
             f"solver: {solver.get('solver', mapping.mapper)} {solver.get('status', '-')}"
             + (f", objective {solver['objective']:,.0f}" if solver.get("objective")
                is not None else "")
             + (f", bound {solver['bound']:,.0f}" if solver.get("bound") is not None else "")
             + (f", gap {gap:.2%}" if gap is not None else "")
             + (f", {solver['nodes']:,} nodes" if solver.get("nodes") is not None else "")
             + (f", stopped by its {solver['limit']} limit" if solver.get("limit") else ""),
             "  tensor           steps      offset       bytes  starts with"]
    for t, a, b, off, loaded in mapping.memory_buffers():
        lines.append(f"  {t:<16} {a:>3}..{b:<4} {off:>10,} {cascade.tensor_bytes(t):>11,}  "
                     f"{'load' if loaded else 'create'}")
    if mem.get("spilled"):
        lines.append("  spilled: " + ", ".join(mem["spilled"]))
    return "\n".join(lines)


def plot_memory(mapping, cascade, path) -> None:
    """Save a figure of the memory plan: each buffer a rectangle (steps x bytes at its
    offset), loads hatched, and the budget as a line."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    mem = mapping.memory
    fig, ax = plt.subplots(figsize=(10, 5))
    cmap = plt.get_cmap("tab20")
    names = sorted({t for t, *_ in mapping.memory_buffers()})
    color = {t: cmap(i % 20) for i, t in enumerate(names)}
    for t, a, b, off, loaded in mapping.memory_buffers():
        size = cascade.tensor_bytes(t)
        ax.add_patch(Rectangle((a - 0.45, off), b - a + 0.9, size, facecolor=color[t],
                               edgecolor="black", linewidth=0.4, hatch="//" if loaded else None))
        if size > 0.04 * mem["budget_bytes"]:
            ax.text((a + b) / 2, off + size / 2, t, ha="center", va="center", fontsize=7)
    ax.axhline(mem["budget_bytes"], color="red", linestyle="--", label="budget")
    ax.set_xlim(-0.6, len(mapping.order) - 0.4)
    ax.set_ylim(0, mem["budget_bytes"] * 1.05)
    ax.set_xlabel("step (one operator each)")
    ax.set_ylabel(f"offset in {mem['level']} (bytes)")
    info = mapping.info
    ax.set_title(f"{mapping.mapper}: non-compulsory {info.get('non_compulsory_bytes', 0):,} B "
                 f"(hatched: loaded)")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
