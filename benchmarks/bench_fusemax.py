"""Time the spatial-array model: the whole FuseMax evaluation table (4 models x 6 lengths x
3 designs, one encoder layer each: attention + linear layers), one attention evaluation with
its mapping search, one without, and `archsim validate fusemax`.

Each case is the median of ``--repeat`` runs after a warm-up (`_timing.timed`).

    python benchmarks/bench_fusemax.py             # --repeat N, --json OUT
"""
from __future__ import annotations

import argparse

from _timing import timed, write_results
from archsim import load_design
from archsim import validate_fusemax as vf
from archsim.spatial import AttentionShape, evaluate_attention, map_attention


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    flat = load_design("flat")
    shape = AttentionShape(64, 12, 262144, 262144, 64, 64)
    mapping = map_attention(flat, shape)
    cases = [
        ("table: 4 models x 6 lengths x 3 designs", vf.table),
        ("flat bert-base 256K: map + evaluate", lambda: evaluate_attention(flat, shape)),
        ("flat bert-base 256K: evaluate a mapping", lambda: evaluate_attention(flat, shape,
                                                                              mapping)),
        ("validate fusemax (all figures)", vf.fusemax_figures),
    ]
    rows = []
    for name, fn in cases:
        wall, _ = timed(fn, args.repeat)
        rows.append({"case": name, "wall_s": wall})
    print(f"{'case':<44} {'wall':>10}")
    for r in rows:
        print(f"{r['case']:<44} {r['wall_s'] * 1e3:>8.2f}ms")
    write_results(args.json, rows)


if __name__ == "__main__":
    main()
