"""``archsim map``: search a mapping, print it and the evaluator's cost."""
from __future__ import annotations

from archsim.cli.common import (
    MODEL_DEFAULTS, add_limit_args, add_workload_args, check_outputs, cli_design, int_list,
    load_workload, solve_limits, write_json, write_outputs)
from archsim.errors import UserError


def _map_rdu(design, args) -> int:
    """``map`` on a dataflow-RDU design: the partitioner named by ``--mapper`` cuts the
    workload into sections; the family evaluates them."""
    from archsim import api
    from archsim.families.rdu import PARTITIONERS

    methods = [m for m in PARTITIONERS if m != "unfused"]
    mapper = args.mapper or "ilp"
    if mapper not in methods:
        raise UserError(f"design {design.name!r} is a dataflow RDU: --mapper chooses its "
                        f"section partitioner, one of {', '.join(methods)}; not {mapper!r}")
    given = [f for f, v in (("--budget", args.budget), ("--window", args.window),
                            ("--policy", args.policy), ("--out", args.out)) if v]
    given += [f"--{a}" for a in ("csv", "trace", "plot") if getattr(args, a)]
    if given:
        raise UserError(f"{', '.join(given)} do not apply to RDU section mapping (it writes "
                        f"--json)")
    if args.model:
        bad = [f"--{f}" for f in ("tp", "expert_tokens", "dims") if getattr(args, f, None)]
        if bad:
            raise UserError(f"{', '.join(bad)} do not apply to RDU model graphs")
        kv = None
        if args.kv:
            kv = int_list(args.kv, "--kv")
            kv = kv[0] if len(kv) == 1 else kv
        dtype = "bf16" if args.dtype == MODEL_DEFAULTS["dtype"] else args.dtype
        workload, options = args.model, {"phase": args.phase, "batch": args.batch or 1,
                                         "seq": args.seq or 1024, "kv": kv, "dtype": dtype,
                                         "layers": args.layers, "scope": args.scope}
    else:
        workload, options = load_workload(args), {}
    check_outputs(args)
    _, result = api.map(design, workload, mapper=mapper, limits=solve_limits(args), **options)
    if args.json:
        write_json(result.to_dict(), args.json)
    if not args.quiet:
        print(result.summary())
    return 0


def run(args) -> int:
    from archsim import api
    from mappers import MEMORY_MAPPERS

    design = cli_design(args)
    family = api.family_for(design, args.model).name
    if family == "rdu":
        return _map_rdu(design, args)
    if family == "spatial":
        raise UserError(f"design {design.name!r} is a spatial attention array: its spatial "
                        f"policy binds and tiles attention (P1 the largest block whose state "
                        f"fits the buffer), so there is nothing to search; use `archsim "
                        f"simulate --design {design.name}`")
    args.mapper = args.mapper or "greedy"
    cascade = load_workload(args)
    check_outputs(args)
    memory = args.mapper in MEMORY_MAPPERS
    given = [f for f, v in (("--budget", args.budget), ("--window", args.window)) if v]
    if args.mapper == "rl" and args.window:
        raise UserError("--window applies to ilp, belady, xla and exhaustive; the RL mapper "
                        "keeps program order")
    if not memory and args.mapper != "rl" and given:
        raise UserError(f"{', '.join(given)} apply to the memory mappers "
                        f"({', '.join(MEMORY_MAPPERS)}), not --mapper {args.mapper}")
    limits = solve_limits(args)
    rl_only = [f for f, v in (("--policy", args.policy), ("--samples", args.samples != 8))
               if v]
    if rl_only and args.mapper != "rl":
        raise UserError(f"{', '.join(rl_only)} apply to --mapper rl")
    if args.samples < 1:
        raise UserError(f"--samples must be positive, found {args.samples}")
    opts = {}
    if args.mapper == "rl":
        opts = {"budget": args.budget, "policy": args.policy, "samples": args.samples}
    elif memory:
        opts = {"budget": args.budget, "window": args.window, "objective": args.objective,
                "limits": limits}
    elif args.mapper == "ilp-binding":
        opts = {"limits": limits}
    mapping, result = api.map(design, cascade, mapper=args.mapper, mapper_options=opts)
    if args.out:
        try:
            mapping.save(args.out)
        except OSError as exc:
            raise UserError(f"--out {args.out}: cannot write ({exc.strerror})") from None
    plot = args.plot
    if plot and mapping.memory is not None:
        from mappers.plot import plot_memory

        plot_memory(mapping, cascade, plot)
        args.plot = None
    write_outputs(result, args)
    args.plot = plot
    if not args.quiet:
        print(mapping.describe(cascade))
        if mapping.memory is not None:
            from mappers.plot import describe_memory

            print(describe_memory(mapping, cascade))
        print(f"cost: {result.cycles:,} cycles ({result.seconds * 1e6:.3f} us), "
              f"{result.energy_pj / 1e6:.3f} uJ")
        print(result.summary())
        if result.estimate is not None and result.estimate.get("mapper_is"):
            print(f"  ({args.mapper}'s estimate is {result.estimate['mapper_is']})")
    return 0


def register(sub) -> None:
    """Add the ``map`` subcommand to ``sub``."""
    m = sub.add_parser("map", help="search a mapping, print it and its cost")
    add_workload_args(m)
    m.add_argument("--mapper", default=None,
                   help="greedy (default), opb, ilp-binding; memory mappers: ilp, belady, "
                        "xla, exhaustive, rl; on an RDU design (sn40l) the section "
                        "partitioner: ilp (default), greedy, dp")
    m.add_argument("--budget", metavar="MR|MH|MP|BYTES",
                   help="memory mappers: scratchpad budget (default its capacity); MR = the "
                        "largest operator's working set, MP = the least spill-free peak, MH "
                        "between")
    m.add_argument("--objective", choices=["traffic", "time"], default="traffic",
                   help="ilp: minimise non-compulsory off-chip bytes (default) or total time")
    add_limit_args(m, "ilp, ilp-binding")
    m.add_argument("--window", type=int, metavar="N",
                   help="memory mappers: steps an operator may move from program order "
                        "(default: any for up to 12 operators, else 2)")
    m.add_argument("--policy", metavar="FILE",
                   help="rl: a trained policy (.npz, or a MaskablePPO .zip; default the one "
                        "shipped with archsim)")
    m.add_argument("--samples", type=int, default=8, metavar="K",
                   help="rl: best of the deterministic rollout and K-1 seeded sampled ones "
                        "(default 8; 1 = the deterministic rollout only)")
    m.add_argument("--out", metavar="FILE", help="save the mapping as JSON")
    m.set_defaults(func=run)
