"""``archsim serve``: LLM serving with continuous batching."""
from __future__ import annotations

from pathlib import Path

from archsim.cli.common import on_off, on_off_strict
from archsim.errors import UserError


def run(args) -> int:
    import json

    from archsim.experiments.serving import plot_serving
    from archsim.experiments.serving.run import serve

    for attr in ("json", "plot"):
        out = getattr(args, attr)
        if out and not Path(out).parent.is_dir():
            raise UserError(f"--{attr} {out}: directory {Path(out).parent} does not exist")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UserError(f"--plot {args.plot}: unsupported figure format "
                        f"{Path(args.plot).suffix or '(no extension)'!r}; expected .png, .svg "
                        f"or .pdf")
    if args.requests is not None and args.requests < 1:
        raise UserError(f"--requests must be positive, found {args.requests}")
    if args.qps is not None and args.qps <= 0:
        raise UserError(f"--qps must be positive, found {args.qps}")
    run = serve(args.design, args.model, dataset=args.dataset, batch=args.batch,
                requests=args.requests, qps=args.qps, devices=args.devices, tp=args.tp,
                pp=args.pp, seed=args.seed, interleave=args.interleave,
                fidelity=args.fidelity, dtype=args.dtype, progress=not args.quiet,
                overrides=tuple(args.set), ep=args.ep, placement=args.placement,
                expert_coprocessing=args.expert_coprocessing,
                attention_coprocessing=args.attention_coprocessing)
    data = run.to_dict()
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        except OSError as exc:
            raise UserError(f"--json {args.json}: cannot write ({exc.strerror})") from None
    if args.plot:
        plot_serving(run.result, args.plot)
    if not args.quiet:
        c, r = run.config, run.result
        par = f"tp {c['tp']}, ep {c['ep']}" if c["ep"] > 1 else f"tp {c['tp']}, pp {c['pp']}"
        print(f"{c['model']} on {c['design']} x{c['devices']} ({par}), "
              f"{c['dataset']}, batch {c['batch']}, {c['requests']} requests, "
              f"KV capacity {c['kv_capacity_tokens']:,} tokens/device")
        print(f"throughput {r.throughput_tokens_per_s:,.1f} tokens/s over {r.makespan_s:.3f} s "
              f"({r.iterations} iterations, mean batch {r.mean_batch:.1f}, "
              f"{r.preemptions} preemptions)")
        fmt = lambda d: "  ".join(f"{k} {v * 1e3:.2f} ms" if v is not None else f"{k} -"  # noqa
                                  for k, v in d.items() if k in ("p50", "p90", "p99"))
        print(f"TTFT {fmt(r.ttft_s)}")
        print(f"TBT  {fmt(r.tbt_s)}")
        units = "  ".join(f"{n} {u['utilization'] * 100:.1f}%" for n, u in r.units.items())
        print(f"utilization {units}")
        print(f"energy {r.energy_j:.3f} J, {r.energy_per_token_j * 1e3:.3f} mJ/token")
    return 0


def register(sub) -> None:
    """Add the ``serve`` subcommand to ``sub``."""
    sv = sub.add_parser("serve", help="simulate LLM serving with continuous batching")
    sv.add_argument("--design", required=True, help="built-in design name or design file")
    sv.add_argument("--model", required=True, help="built-in model name or config.json")
    sv.add_argument("--dataset", default="sharegpt",
                    help="sharegpt | alpaca | fixed:LIN,LOUT | a trace file (CSV or JSONL with "
                         "input_tokens, output_tokens[, arrival_s]); default sharegpt")
    sv.add_argument("--batch", type=int, default=256, help="most requests running at once")
    sv.add_argument("--requests", type=int, default=None,
                    help="number of requests (default 1000, or every line of a trace file)")
    sv.add_argument("--qps", type=float, default=None,
                    help="Poisson arrival rate in requests/s (default: closed loop)")
    sv.add_argument("--devices", type=int, default=None,
                    help="devices (default: tp x pp, i.e. 1 without --tp/--pp)")
    sv.add_argument("--tp", type=int, default=None, help="tensor-parallel degree")
    sv.add_argument("--pp", type=int, default=None, help="pipeline-parallel degree")
    sv.add_argument("--ep", type=int, default=None,
                    help="expert-parallel nodes (xPU designs; default: devices beyond a node)")
    sv.add_argument("--placement", choices=["fastest", "xpu", "pim"], default=None,
                    help="xPU + PIM designs: where operations run (default: the design's policy)")
    sv.add_argument("--expert-coprocessing", type=on_off_strict, default=None, metavar="on|off",
                    help="xPU + PIM designs: split an MoE layer's experts over both processors")
    sv.add_argument("--attention-coprocessing", type=on_off_strict, default=None,
                    metavar="on|off", help="xPU + PIM designs: prefill attention on the xPU "
                    "while decode attention runs on the PIM")
    sv.add_argument("--seed", type=int, default=0, help="seed of lengths and arrivals")
    sv.add_argument("--interleave", type=on_off, default=None, metavar="on|off|auto",
                    help="sub-batch interleaving; auto: per iteration, whichever is faster "
                         "(default: the design's policy)")
    sv.add_argument("--fidelity", choices=["analytical", "command"], default="analytical",
                    help="PIM GEMV timing: closed form or command-level DRAM model")
    sv.add_argument("--dtype", default="fp16", choices=["fp32", "fp16", "bf16", "fp8", "int8"])
    sv.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="override a design key")
    sv.add_argument("--json", metavar="OUT", help="write the result as JSON")
    sv.add_argument("--plot", metavar="OUT", help="plot batch, utilization, TTFT/TBT")
    sv.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    sv.set_defaults(func=run)
