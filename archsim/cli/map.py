"""``archsim map``: search a mapping, print it and the evaluator's cost."""
from __future__ import annotations

from archsim.cli.common import (
    add_limit_args, add_workload_args, check_outputs, cli_design, solve_limits, load_workload,
    write_outputs)
from archsim.errors import UserError


def run(args) -> int:
    from archsim import simulate
    from mappers import MEMORY_MAPPERS, get_mapper

    design = cli_design(args)
    if design.rdu is not None:
        raise UserError(f"design {design.name!r} is a dataflow RDU: its mapping (sections, "
                        f"tiers) is searched by `archsim simulate --design {design.name} "
                        f"--partition ilp|greedy|dp`")
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
    mapping = get_mapper(args.mapper)(cascade, design, **opts)
    result = simulate(design, cascade, mapping)
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
    m.add_argument("--mapper", default="greedy",
                   help="greedy (default), opb, ilp-binding; memory mappers: ilp, belady, "
                        "xla, exhaustive")
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
