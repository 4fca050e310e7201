"""Time the dataflow-RDU model (SN40L, archsim/families/rdu.py and archsim/experiments/coe.py): whole-model runs as
fused or unfused sections on 8 sockets, the ILP and DP partitioners on one layer body, the
Composition-of-Experts model, and `archsim validate sn40l` end to end.

* **cold**: the design is loaded, the model graph built and every section planned and
  partitioned inside the timed call (the graph cache, ``archsim.families.rdu.shard_graph``, is
  cleared before each run);
* **warm**: the design is loaded and the graph cached; section planning and the partition
  (the ILP) still run in every call, as they do for every `archsim simulate`;
* **partition**: one layer body (Llama-2-7B prefill 4K, TP8: 24 einsums) cut by ``ilp``
  (PuLP + HiGHS) and ``dp`` on a fresh :class:`archsim.families.rdu.SectionModel` (so both pay for
  planning every candidate section), and once more with the section plans already cached
  (the partitioner alone);
* **coe**: `simulate_coe` with 150 experts against the DGX H100, with its run-time caches
  cleared (cold) and filled (warm);
* **cli**: `archsim validate sn40l` in a fresh process (imports included; it exits 1 while
  some figures are outside tolerance, which does not stop the timing).

Each in-process case is the median of ``--repeat`` runs after a warm-up (`_timing.timed`).

    python benchmarks/bench_sn40l.py               # --repeat N, --json OUT
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _timing import bench_args, print_rows, timed, write_results
from archsim import load_design
from archsim.experiments import coe
from archsim.api import simulate
from archsim.families import rdu
from mappers.partition import partition

PREFILL_7B = dict(phase="prefill", batch=1, seq=4096, sockets=8)
DECODE_7B = dict(phase="decode", batch=1, seq=4096, sockets=8)


def cold(fn):
    """``fn`` with the model-graph and CoE run-time caches cleared first."""
    def run():
        rdu.clear_graph_cache()
        coe._rdu_run_s.cache_clear()
        coe._gpu_run_s.cache_clear()
        return fn()
    return run


def partition_times(method: str, repeat: int) -> tuple[float, float, int]:
    """(median seconds on a fresh section model, median seconds with every section plan
    cached, sections) of ``method`` on the Llama-2-7B prefill layer body."""
    design = load_design("sn40l")
    cascade = rdu.shard_graph("llama2-7b", "prefill", 1, 4096, None, 8, "bf16", None, "model")
    body = next(names for seg, names, _ in rdu.segments(cascade) if seg == "layers")
    fresh, cached = [], []
    for _ in range(repeat + 1):                       # the first run is the warm-up
        model = rdu.SectionModel(cascade, design, sockets=8)
        t0 = time.perf_counter()
        part = partition(model, body, method)
        fresh.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        partition(model, body, method)
        cached.append(time.perf_counter() - t0)
    return statistics.median(fresh[1:]), statistics.median(cached[1:]), len(part.sections)


def cli_wall(argv: list[str], repeat: int) -> tuple[float, int]:
    """(median wall seconds, exit code) of `archsim ARGV` in a fresh Python process."""
    cmd = [sys.executable, "-m", "archsim.cli"] + argv
    times, rc = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        times.append(time.perf_counter() - t0)
    return statistics.median(times), rc


def main() -> None:
    args = bench_args(__doc__, repeat=5)
    sn40l = load_design("sn40l")

    def sim(design, model, fusion="fused", **kw):
        return lambda: simulate(design, model, fusion=fusion, **kw)

    cases = [
        ("llama2-7b prefill 4K x8 fused, cold (ILP)", cold(sim("sn40l", "llama2-7b",
                                                              **PREFILL_7B))),
        ("llama2-7b prefill 4K x8 fused, warm graph", sim(sn40l, "llama2-7b", **PREFILL_7B)),
        ("llama2-7b decode 4K x8 fused, cold", cold(sim("sn40l", "llama2-7b", **DECODE_7B))),
        ("llama2-7b prefill 4K x8 unfused, cold", cold(sim("sn40l", "llama2-7b", "unfused",
                                                          **PREFILL_7B))),
        ("llama2-7b decode 4K x8 unfused, cold", cold(sim("sn40l", "llama2-7b", "unfused",
                                                         **DECODE_7B))),
        ("llama2-70b prefill 4K x8 fused, cold", cold(sim("sn40l", "llama2-70b",
                                                         **PREFILL_7B))),
        ("coe 150 experts vs dgx-h100, cold", cold(lambda: coe.simulate_coe(
            "sn40l", experts=150, batch=8, output_tokens=20))),
        ("coe 150 experts vs dgx-h100, warm", lambda: coe.simulate_coe(
            "sn40l", experts=150, batch=8, output_tokens=20)),
    ]
    rows = []
    for name, fn in cases:
        wall, out = timed(fn, args.repeat)
        if isinstance(out, rdu.RduResult):
            info = f"{out.seconds * 1e3:.3f} ms simulated, {out.kernel_launches} launches"
        else:
            info = f"speedup {out.speedup:.2f}x"
        rows.append({"case": name, "wall_s": wall, "result": info})
    for method in ("ilp", "dp"):
        fresh, cached, nsec = partition_times(method, args.repeat)
        rows.append({"case": f"partition one layer body: {method}", "wall_s": fresh,
                     "result": f"{nsec} sections"})
        rows.append({"case": f"partition one layer body: {method}, plans cached",
                     "wall_s": cached, "result": f"{nsec} sections"})
    wall, rc = cli_wall(["validate", "sn40l"], args.repeat)
    rows.append({"case": "archsim validate sn40l (fresh process)", "wall_s": wall,
                 "result": f"exit code {rc}"})

    print_rows(rows, 48)
    write_results(args.json, rows)


if __name__ == "__main__":
    main()
