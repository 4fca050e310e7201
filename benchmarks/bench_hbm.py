"""Time the HBM model's two fidelities and print how well they agree (see README.md here).

The device is NeuPIMs' HBM2 (32 channels x 32 banks, 1 KiB rows, BL4, tCK 1 ns; 16 multipliers
per bank). For each pattern: the closed form (``fidelity="analytical"``, one shape), the
command-level scheduler (``fidelity="command"``: program generation + scheduling), the cycles of
both and their relative difference; then the closed form vectorised over many shapes at once.
"""
from __future__ import annotations

import argparse

import numpy as np
from _timing import timed, write_results

from archsim.units.dram_spec import DramSpec, PimGeometry
from archsim.units.hbm import HbmModel

NEUPIMS = DramSpec(
    organization=dict(channels=32, bank_groups=4, banks_per_group=8, rows=32768, row_bytes=1024,
                      bus_bits=128, burst_length=4, tck_s=1.0e-9),
    timing=dict(cl=14, trcd=14, trp=14, tras=34, trrd_s=4, trrd_l=6, tfaw=30, tccd_s=1, tccd_l=2,
                twr=16, trtp_s=4, trtp_l=6, trfc=260, trefi=3900),
    energy=dict(act_pj=0, pre_pj=0, rd_pj=0, wr_pj=0, ref_pj=0))
PIM = PimGeometry(multipliers_per_bank=16, gact_banks=4, row_buffers=2)

STREAMS = [64 << 10, 1 << 20, 8 << 20]
LOGITS = [(32, 128), (1024, 128), (4096, 128), (4096, 1024), (4096, 4096)]   # rows=tokens
ATTEND = [(128, 32), (128, 1024), (128, 4096)]                               # cols=tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    m = HbmModel(NEUPIMS, PIM)
    rows = []

    def bench(pattern, label, fn):
        ta, a = timed(lambda: fn("analytical"), args.repeat)
        tc, c = timed(lambda: fn("command"), max(1, args.repeat // 2))
        rows.append({"pattern": pattern, "shape": label, "analytical_s": ta, "command_s": tc,
                     "analytical_cycles": float(a), "command_cycles": int(c),
                     "error_pct": 100.0 * (float(a) - c) / c})

    for n in STREAMS:
        bench("stream_read", f"{n >> 10} KiB", lambda f, n=n: m.stream_read_cycles(n, f))
    for r, c in LOGITS:
        bench("pim_gemv_logits", f"{r}x{c}", lambda f, r=r, c=c: m.pim_gemv_cycles(r, c, 128, f))
    for r, c in ATTEND:
        bench("pim_gemv_attend", f"{r}x{c}", lambda f, r=r, c=c: m.pim_gemv_cycles(r, c, 128, f))

    print(f"{'pattern':<17} {'shape':>10} {'analytical':>11} {'command':>11} "
          f"{'cycles (cmd)':>13} {'error':>8}")
    for r in rows:
        print(f"{r['pattern']:<17} {r['shape']:>10} {r['analytical_s'] * 1e6:>8.1f} us "
              f"{r['command_s'] * 1e3:>8.2f} ms {r['command_cycles']:>13,} "
              f"{r['error_pct']:>+7.3f}%")
    print()
    print("max |error| per pattern:")
    for p in dict.fromkeys(r["pattern"] for r in rows):
        err = max(abs(r["error_pct"]) for r in rows if r["pattern"] == p)
        print(f"  {p:<17} {err:.3f}%")

    rng = np.random.default_rng(0)
    tokens = rng.integers(16, 4096, size=512)
    t_vec, _ = timed(lambda: (m.pim_gemv_cycles(tokens, 128, 128),
                              m.pim_gemv_cycles(128, tokens, 128)), args.repeat)
    print(f"\nvectorised closed form, 512 requests x (logits + attend): {t_vec * 1e3:.2f} ms")
    print(f"streaming efficiency (4 MiB/channel): {m.streaming_efficiency():.4f} analytical, "
          f"{m.streaming_efficiency('command'):.4f} command")
    rows.append({"pattern": "vectorised_512x2", "seconds": t_vec})
    write_results(args.json, rows)


if __name__ == "__main__":
    main()
