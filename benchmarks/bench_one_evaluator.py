"""The performance targets of issue 19 (one evaluator), timed together.

* ``serve_1000_sharegpt``: ``archsim.api.serve`` of 1000 ShareGPT requests of GPT-3 13B on
  ``neupims`` (TP 4, batch 256), in-process — target < 30 s;
* ``validate_fusemax``: ``archsim validate fusemax`` in a fresh process (imports included) —
  target < 2 s;
* ``llama2_70b_decode_iteration``: one whole Llama-2-70B decode iteration (32 requests x 1024
  tokens of context) in-process on ``npu`` and ``h100`` (TP 8): building the model graph,
  greedy mapping and the graph family's evaluator — target < 50 ms.

Each figure is the median of ``--repeat`` runs after a warm-up (``_timing.timed``).

    python benchmarks/bench_one_evaluator.py       # --repeat N, --json OUT
"""
from __future__ import annotations

import subprocess
import sys

import dataflow
from _timing import bench_args, print_rows, timed, write_results
from archsim import api
from archsim.spec import load_design

TARGETS_S = {"serve_1000_sharegpt": 30.0, "validate_fusemax": 2.0,
             "llama2_70b_decode_iteration npu": 0.05, "llama2_70b_decode_iteration h100": 0.05}


def _iteration(design, tp):
    def run():
        g = dataflow.model_graph("llama2-70b", "decode", 32, kv=1024, tp=tp)
        return api.simulate(design, g)
    return run


def main() -> int:
    args = bench_args(__doc__, repeat=3)
    rows = []
    wall, run = timed(lambda: api.serve("neupims", "gpt3-13b", dataset="sharegpt", batch=256,
                                        requests=1000, tp=4), max(1, args.repeat // 3))
    rows.append({"case": "serve_1000_sharegpt", "wall_s": wall,
                 "result": f"{run.result.iterations} iterations, "
                           f"{run.result.throughput_tokens_per_s:.0f} tok/s"})
    cmd = [sys.executable, "-m", "archsim.cli", "validate", "fusemax"]
    wall, _ = timed(lambda: subprocess.run(cmd, capture_output=True), args.repeat)
    rows.append({"case": "validate_fusemax", "wall_s": wall, "result": "fresh process"})
    for name, tp in (("npu", 1), ("h100", 8)):
        wall, res = timed(_iteration(load_design(name), tp), args.repeat * 3)
        rows.append({"case": f"llama2_70b_decode_iteration {name}", "wall_s": wall,
                     "result": f"{res.seconds * 1e3:.3f} ms simulated"})
    for r in rows:
        r["target_s"] = TARGETS_S[r["case"]]
        r["result"] += f"; target < {r['target_s']:g} s: " + \
            ("OK" if r["wall_s"] < r["target_s"] else "MISSED")
    print_rows(rows, width=36)
    write_results(args.json, rows)
    return 0 if all(r["wall_s"] < r["target_s"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
