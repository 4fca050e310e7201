"""``archsim simulate``: a workload on a design."""
from __future__ import annotations

from pathlib import Path

from archsim.cli.common import (
    MODEL_DEFAULTS, add_limit_args, add_workload_args, check_outputs, cli_design, int_list,
    solve_limits, load_workload, write_json, write_outputs)
from archsim.errors import UserError


def _simulate_spatial(design, args, workload) -> int:
    """``simulate`` on a design with a ``spatial`` section (FuseMax, FLAT, unfused): an
    encoder model (``--model``) or an attention cascade."""
    from archsim import api

    unsupported = [f"--{a}" for a in ("csv", "trace", "plot", "mapping") if getattr(args, a)]
    if args.mapper:
        unsupported.append("--mapper (the design's spatial policy maps attention)")
    if not getattr(args, "model", None):
        if unsupported:
            raise UserError(f"design {design.name!r} runs attention cascades with its spatial "
                            f"model, which writes --json; not {', '.join(unsupported)}")
        check_outputs(args)
        result = api.simulate(design, workload)
        return _spatial_outputs(result, args)
    unsupported += [f"--{f.replace('_', '-')}" for f in ("phase", "kv", "tp", "layers",
                                                         "expert_tokens", "dims")
                    if getattr(args, f, None) is not None]
    if args.attention != MODEL_DEFAULTS["attention"]:
        unsupported.append("--attention (the design's spatial.attention chooses the cascade)")
    if args.past or args.prefills != 1 or args.dtype != "fp16":
        unsupported.append("--past/--prefills/--dtype")
    if unsupported:
        raise UserError(f"design {design.name!r} runs encoder layers with its spatial model, "
                        f"which takes --model, --seq, --batch, --scope and --json; not "
                        f"{', '.join(unsupported)}")
    check_outputs(args)
    result = api.simulate(design, args.model, seq=args.seq or 1024, batch=args.batch or 1,
                          scope=args.scope)
    return _spatial_outputs(result, args)


def _spatial_outputs(result, args) -> int:
    import json

    if args.json:
        try:
            Path(args.json).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        except OSError as exc:
            raise UserError(f"--json {args.json}: cannot write ({exc.strerror})") from None
    if not args.quiet:
        print(result.summary())
    return 0


def _parse_tiers(items):
    if list(items) == ["ilp"]:
        return "ilp"
    tiers = {}
    for text in items:
        name, sep, tier = text.partition("=")
        if not sep or not name.strip() or not tier.strip():
            raise UserError(f"--tier {text!r}: expected TENSOR=TIER, e.g. WQ=ddr")
        tiers[name.strip()] = tier.strip()
    return tiers


def _simulate_rdu(design, args, workload) -> int:
    """``simulate`` on a dataflow-RDU design (SN40L): fused or unfused sections of a model
    (``workload`` its name) or of a cascade."""
    from archsim import api

    tiers = _parse_tiers(args.tier)
    if not getattr(args, "model", None):
        cascade = workload
        unsupported = [f"--{a}" for a in ("csv", "trace", "plot", "mapping") if getattr(args, a)]
        if unsupported:
            raise UserError(f"design {design.name!r} runs workloads as RDU sections, which "
                            f"write --json; not {', '.join(unsupported)}")
        check_outputs(args)
        result = api.simulate(design, cascade, fusion=args.fusion or "fused",
                              partitioner=args.partition, sockets=args.sockets or 1,
                              orchestration=args.orchestration, tiers=tiers,
                              limits=solve_limits(args))
        if args.json:
            write_json(result.to_dict(), args.json)
        if not args.quiet:
            print(result.summary())
        return 0
    unsupported = [f"--{a}" for a in ("csv", "trace", "plot", "mapping") if getattr(args, a)]
    unsupported += [f"--{f.replace('_', '-')}" for f in ("tp", "expert_tokens", "dims")
                    if getattr(args, f, None) is not None]
    if args.attention != MODEL_DEFAULTS["attention"] or args.past or args.prefills != 1:
        unsupported.append("--attention/--past/--prefills")
    if unsupported:
        raise UserError(f"design {design.name!r} runs model graphs as RDU sections, which take "
                        f"--model, --phase, --batch, --seq, --kv, --sockets, --fusion, "
                        f"--partition, --orchestration, --dtype, --layers, --scope and --json; "
                        f"not {', '.join(unsupported)} (use --sockets for tensor parallelism)")
    for flag in ("batch", "seq", "layers", "sockets"):
        value = getattr(args, flag, None)
        if value is not None and value <= 0:
            raise UserError(f"--{flag} must be a positive integer, found {value}")
    check_outputs(args)
    kv = None
    if args.kv:
        kv = int_list(args.kv, "--kv")
        kv = kv[0] if len(kv) == 1 else kv
    dtype = "bf16" if args.dtype == MODEL_DEFAULTS["dtype"] else args.dtype
    result = api.simulate(design, args.model, phase=args.phase, batch=args.batch or 1,
                          seq=args.seq or 1024, kv=kv, sockets=args.sockets or 1,
                          fusion=args.fusion or "fused", partitioner=args.partition,
                          orchestration=args.orchestration, dtype=dtype,
                          layers=args.layers, scope=args.scope, tiers=tiers,
                          limits=solve_limits(args))
    if args.json:
        write_json(result.to_dict(), args.json)
    if not args.quiet:
        print(result.summary())
    return 0


def _refuse_rdu_flags(design, args) -> None:
    rdu_only = [f"--{f}" for f in ("sockets", "fusion", "partition", "orchestration")
                if getattr(args, f, None) is not None] + (["--tier"] if args.tier else [])
    if rdu_only:
        raise UserError(f"{', '.join(rdu_only)} apply to dataflow-RDU designs (e.g. sn40l); "
                        f"design {design.name!r} has no rdu section")


def run(args) -> int:
    from archsim import Mapping, api

    design = cli_design(args)
    model = getattr(args, "model", None)
    if model:
        workload = model
    else:
        if design.rdu is None:
            _refuse_rdu_flags(design, args)
        workload = load_workload(args)
    family = api.family_for(design, workload).name
    if family == "rdu":
        return _simulate_rdu(design, args, workload)
    _refuse_rdu_flags(design, args)
    if family == "spatial":
        return _simulate_spatial(design, args, workload)
    cascade = load_workload(args) if model else workload
    check_outputs(args)
    mapping = Mapping.load(args.mapping) if args.mapping else None
    result = api.simulate(design, cascade, mapping, mapper=args.mapper)
    write_outputs(result, args)
    if not args.quiet:
        print(result.summary())
    return 0


def register(sub) -> None:
    """Add the ``simulate`` subcommand to ``sub``."""
    s = sub.add_parser("simulate", help="simulate a workload on a design")
    add_workload_args(s)
    s.add_argument("--mapping", metavar="FILE", help="a mapping JSON (from `archsim map --out`)")
    s.add_argument("--mapper", default=None,
                   help="mapper used when no --mapping is given (default greedy)")
    r = s.add_argument_group("dataflow RDU designs (sn40l)")
    r.add_argument("--sockets", type=int, help="sockets joined by tensor parallelism "
                                                "(default 1)")
    r.add_argument("--fusion", choices=["fused", "unfused"],
                   help="fused sections (default) or one operator per kernel")
    r.add_argument("--partition", choices=["ilp", "greedy", "dp"],
                   help="how fused sections are found (default ilp: exact)")
    r.add_argument("--orchestration", choices=["hardware", "software"],
                   help="kernel launches (default: the design's)")
    r.add_argument("--tier", action="append", default=[], metavar="TENSOR=TIER",
                   help="place a persistent tensor in sram, hbm or ddr instead of the "
                        "default policy (repeatable), e.g. --tier WQ=ddr; --tier ilp places "
                        "all of them with the tier-placement ILP")
    add_limit_args(r, "--partition ilp, --tier ilp")
    s.set_defaults(func=run)
