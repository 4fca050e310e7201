"""Time the spatial-array model: the whole FuseMax evaluation table (4 models x 6 lengths x
3 designs, one encoder layer each: attention + linear layers), one attention evaluation with
its mapping search, one without, and `archsim validate fusemax`.

Each case is the median of ``--repeat`` runs after a warm-up (`_timing.timed`).

    python benchmarks/bench_fusemax.py             # --repeat N, --json OUT
"""
from __future__ import annotations


from _timing import bench_args, print_rows, timed, write_results
from archsim import load_design
from archsim.validation import fusemax as vf
from archsim.families.spatial import AttentionShape, evaluate_attention, map_attention


def main() -> None:
    args = bench_args(__doc__, repeat=5)
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
    print_rows(rows, 44)
    write_results(args.json, rows)


if __name__ == "__main__":
    main()
