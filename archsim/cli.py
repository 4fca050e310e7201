"""The ``archsim`` command line.

User errors (a bad design file, an unknown rank, an impossible mapping, a missing file) print one
line ``archsim: error: ...`` on stderr and exit with code 2; nothing prints a traceback unless
``ARCHSIM_DEBUG=1`` is set.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from archsim.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------- helpers
def _parse_ranks(text: str | None) -> dict[str, int]:
    if not text:
        return {}
    ranks: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, val = part.partition("=")
        if not sep:
            raise UserError(f"--ranks {text!r}: expected name=size pairs like m=64,n=64,k=64")
        try:
            ranks[name.strip()] = int(val)
        except ValueError:
            raise UserError(f"--ranks: size of {name.strip()!r} must be an integer, "
                            f"found {val!r}") from None
    return ranks


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{what} {text!r}: expected an integer or a comma-separated list of "
                        f"integers") from None
    if not values:
        raise UserError(f"{what}: expected at least one integer")
    return values


def _parse_dims(text: str | None) -> dict[str, int]:
    dims = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, val = part.partition("=")
        if not sep or not val.strip().isdigit():
            raise UserError(f"--dims {text!r}: expected name=size pairs like batch=8,seq=128")
        dims[name.strip()] = int(val)
    return dims


def _load_model_workload(args):
    """Build the cascade for ``--model`` (built-in name, config.json or .onnx)."""
    import dataflow

    for flag in ("batch", "seq", "tp", "layers"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise UserError(f"--{flag} must be a positive integer, found {value}")
    if args.model.endswith(".onnx"):
        from dataflow.onnx_import import import_onnx

        if not Path(args.model).is_file():
            raise UserError(f"--model {args.model}: no such file")
        return import_onnx(args.model, name=args.name, dims=_parse_dims(args.dims),
                           default_batch=args.batch)
    if args.model.endswith(".json") and not Path(args.model).is_file():
        raise UserError(f"--model {args.model}: no such file")
    kv = _int_list(args.kv, "--kv") if args.kv else None
    if kv is not None and len(kv) == 1:
        kv = kv[0]
    experts = _int_list(args.expert_tokens, "--expert-tokens") if args.expert_tokens else None
    return dataflow.model_graph(args.model, args.phase, args.batch or 1, args.seq or 1024, kv,
                                past=args.past, prefills=args.prefills, tp=args.tp or 1,
                                dtype=args.dtype, attention=args.attention,
                                layers=args.layers, expert_tokens=experts, scope=args.scope,
                                name=args.name)


def _load_workload(args):
    import dataflow

    ranks = _parse_ranks(args.ranks)
    given = [f for f, v in (("--einsum", args.einsum), ("--cascade", args.cascade),
                            ("--model", getattr(args, "model", None))) if v]
    if len(given) > 1:
        raise UserError(f"give one workload: {' and '.join(given)} were both given")
    if getattr(args, "model", None):
        if ranks:
            raise UserError("--ranks applies to --cascade/--einsum; a --model takes --batch, "
                            "--seq, --kv, --tp, --dtype")
        return _load_model_workload(args)
    model_only = [f"--{f.replace('_', '-')}" for f in MODEL_FLAGS
                  if getattr(args, f, None) not in (None, MODEL_DEFAULTS.get(f))]
    if model_only:
        raise UserError(f"{', '.join(model_only)} need --model NAME|config.json|model.onnx")
    if args.einsum:
        if not ranks:
            raise UserError("--einsum needs --ranks with every rank's size, e.g. "
                            "--ranks m=64,n=64,k=64")
        cascade = dataflow.Cascade.from_text(args.einsum, ranks, name=args.name or "cli",
                                             default_bits=args.bits)
        used = {r for e in cascade.einsums for r in e.rank_vars()}
        used |= {r for t in cascade.tensors.values() for r in t.ranks}
        unused = [r for r in ranks if r not in used]
        if unused:
            raise UserError(f"--ranks: unknown rank {unused[0]!r}; the einsums use "
                            f"{', '.join(r for r in cascade.ranks if r in used)}")
        return cascade
    if args.cascade:
        return dataflow.load_cascade(args.cascade, ranks_override=ranks or None)
    raise UserError("no workload: give --model NAME, --cascade NAME|FILE or --einsum TEXT "
                    "--ranks ...")


MODEL_FLAGS = ("phase", "batch", "seq", "kv", "past", "prefills", "tp", "dtype", "attention",
               "layers", "scope", "expert_tokens", "dims")
MODEL_DEFAULTS = {"dtype": "fp16", "attention": "3pass", "scope": "model", "past": 0,
                  "prefills": 1}


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from dataflow import DTYPES, PHASES
    from dataflow.attention import ATTENTION_KINDS

    g = p.add_argument_group("model workload (--model)")
    g.add_argument("--model", help="built-in model (see `archsim models`), a HuggingFace "
                                   "config.json or an .onnx file")
    g.add_argument("--phase", choices=PHASES, help="prefill: --batch prompts of --seq tokens; "
                   "decode: --batch requests, one new token each, context --kv (default --seq);"
                   " mixed: those decodes plus --prefills prompt chunks of --seq tokens "
                   "(default: decode for decoders, prefill for encoders)")
    g.add_argument("--batch", type=int, help="requests in the iteration (default 1)")
    g.add_argument("--seq", type=int, help="prompt tokens (prefill) or context length "
                                           "(decode) (default 1024)")
    g.add_argument("--kv", help="decode context length per request: one value or a "
                                "comma-separated list with one per request")
    g.add_argument("--past", type=int, default=0, help="cached tokens before each prompt "
                                                       "chunk (chunked prefill; default 0)")
    g.add_argument("--prefills", type=int, default=1, help="prompt chunks in a mixed "
                                                           "iteration (default 1)")
    g.add_argument("--tp", type=int, help="tensor-parallel degree: simulate one device's "
                                          "shard (default 1)")
    g.add_argument("--dtype", choices=list(DTYPES), default="fp16",
                   help="element type of weights, activations and KV cache (default fp16)")
    g.add_argument("--attention", choices=ATTENTION_KINDS, default="3pass",
                   help="attention cascade (default 3pass)")
    g.add_argument("--layers", type=int, help="number of layers (default: the model's)")
    g.add_argument("--scope", choices=("model", "layers", "attention"), default="model",
                   help="whole model, the repeated layers only, or one attention")
    g.add_argument("--expert-tokens", help="tokens routed to each expert, comma-separated "
                                           "(default uniform routing)")
    g.add_argument("--dims", help="sizes of symbolic ONNX dimensions, e.g. batch=8,seq=128")


def _add_workload_args(p: argparse.ArgumentParser, design: bool = True) -> None:
    if design:
        p.add_argument("--design", required=True,
                       help="built-in design name or design YAML path")
        p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                       help="override a design key, e.g. units.sa.rows=256 (repeatable)")
        p.add_argument("--fidelity", choices=["analytical", "command"], default="analytical",
                       help="DRAM/PIM timing: closed form (default) or the command-level model")
    _add_model_args(p)
    w = p.add_argument_group("workload")
    w.add_argument("--cascade", help="built-in cascade name or cascade YAML path")
    w.add_argument("--einsum", action="append", metavar="TEXT",
                   help="an einsum, e.g. 'Z[m,n] = A[m,k] * B[k,n]' (repeatable: a cascade)")
    w.add_argument("--ranks", help="rank sizes, e.g. m=1024,n=4096,k=1024 (also overrides a "
                                   "cascade file's sizes)")
    w.add_argument("--bits", type=int, default=16,
                   help="element bits of tensors inferred from --einsum (default 16)")
    w.add_argument("--name", help="workload name in reports")
    if not design:
        return
    o = p.add_argument_group("outputs")
    o.add_argument("--json", metavar="OUT", help="write the result as JSON")
    o.add_argument("--csv", metavar="OUT", help="write the per-task timeline as CSV")
    o.add_argument("--trace", metavar="OUT", help="write a Chrome/Perfetto trace (JSON)")
    o.add_argument("--plot", metavar="OUT", help="write a timeline/utilization figure (png/svg/pdf)")
    o.add_argument("--quiet", action="store_true", help="print nothing on success")


PLOT_FORMATS = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp")


def _add_limit_args(parser, what: str) -> None:
    """``--node-limit``, ``--time-limit`` and ``--threads`` of the solver facade."""
    parser.add_argument("--node-limit", type=int, metavar="N",
                        help=f"{what}: branch-and-bound nodes the solver may explore (default "
                             f"20000); a solve stopped by it returns its best mapping with "
                             f"the bound and gap, marked limit: nodes, the same on any machine")
    parser.add_argument("--time-limit", type=float, metavar="S",
                        help=f"{what}: also stop the solver after S seconds of wall-clock "
                             f"time (default: none); such a result is marked limit: time and "
                             f"may differ between runs and machines")
    parser.add_argument("--threads", type=int, metavar="N",
                        help=f"{what}: solver threads (default 1: reproducible results)")


def _limits(args):
    """The SolveLimits the solver options of ``args`` ask for."""
    from archsim.core.solve import limits_from

    return limits_from(getattr(args, "node_limit", None), getattr(args, "time_limit", None),
                       getattr(args, "threads", None))


def _check_outputs(args) -> None:
    """Fail before simulating if an output cannot be written (missing directory, plot format)."""
    for attr in ("json", "csv", "trace", "plot", "out"):
        out = getattr(args, attr, None)
        if out:
            parent = Path(out).parent
            if not parent.is_dir():
                raise UserError(f"--{attr} {out}: directory {parent} does not exist")
    if args.plot and Path(args.plot).suffix.lower() not in PLOT_FORMATS:
        raise UserError(f"--plot {args.plot}: unsupported figure format "
                        f"{Path(args.plot).suffix or '(no extension)'!r}; expected one of "
                        f"{', '.join(PLOT_FORMATS)}")


def _write_outputs(result, args) -> None:
    for attr, method in (("json", "to_json"), ("csv", "to_csv"), ("trace", "to_chrome_trace"),
                         ("plot", "plot")):
        out = getattr(args, attr)
        if out:
            parent = Path(out).parent
            if not parent.exists():
                raise UserError(f"--{attr} {out}: directory {parent} does not exist")
            try:
                getattr(result, method)(out)
            except OSError as exc:
                raise UserError(f"--{attr} {out}: cannot write ({exc.strerror})") from None


# --------------------------------------------------------------------------- commands
def _design(args):
    import dataclasses

    from archsim import load_design

    design = load_design(args.design, args.set)
    return dataclasses.replace(design, fidelity=args.fidelity)


def _simulate_spatial(design, args) -> int:
    """``simulate --model`` on a design with a ``spatial`` section (FuseMax, FLAT, unfused)."""
    import json

    from archsim.spatial import simulate_model

    unsupported = [f"--{a}" for a in ("csv", "trace", "plot", "mapping") if getattr(args, a)]
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
    _check_outputs(args)
    result = simulate_model(design, args.model, seq=args.seq or 1024, batch=args.batch or 1,
                            scope=args.scope)
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        except OSError as exc:
            raise UserError(f"--json {args.json}: cannot write ({exc.strerror})") from None
    if not args.quiet:
        print(result.summary())
    return 0


def _write_json(data, path: str) -> None:
    import json

    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise UserError(f"--json {path}: cannot write ({exc.strerror})") from None


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


def _simulate_rdu(design, args) -> int:
    """``simulate --model`` on a dataflow-RDU design (SN40L): fused or unfused sections."""
    from archsim.rdu import simulate_model

    tiers = _parse_tiers(args.tier)
    if not getattr(args, "model", None):
        from archsim.rdu import simulate_cascade

        cascade = _load_workload(args)
        unsupported = [f"--{a}" for a in ("csv", "trace", "plot", "mapping") if getattr(args, a)]
        if unsupported:
            raise UserError(f"design {design.name!r} runs workloads as RDU sections, which "
                            f"write --json; not {', '.join(unsupported)}")
        _check_outputs(args)
        result = simulate_cascade(design, cascade, fusion=args.fusion or "fused",
                                  partitioner=args.partition, sockets=args.sockets or 1,
                                  orchestration=args.orchestration, tiers=tiers,
                                  limits=_limits(args))
        if args.json:
            _write_json(result.to_dict(), args.json)
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
    _check_outputs(args)
    kv = None
    if args.kv:
        kv = _int_list(args.kv, "--kv")
        kv = kv[0] if len(kv) == 1 else kv
    dtype = "bf16" if args.dtype == MODEL_DEFAULTS["dtype"] else args.dtype
    result = simulate_model(design, args.model, phase=args.phase, batch=args.batch or 1,
                            seq=args.seq or 1024, kv=kv, sockets=args.sockets or 1,
                            fusion=args.fusion or "fused", partitioner=args.partition,
                            orchestration=args.orchestration, dtype=dtype,
                            layers=args.layers, scope=args.scope, tiers=tiers,
                            limits=_limits(args))
    if args.json:
        _write_json(result.to_dict(), args.json)
    if not args.quiet:
        print(result.summary())
    return 0


def cmd_simulate(args) -> int:
    from archsim import Mapping, simulate

    design = _design(args)
    if design.rdu is not None:
        return _simulate_rdu(design, args)
    rdu_only = [f"--{f}" for f in ("sockets", "fusion", "partition", "orchestration")
                if getattr(args, f, None) is not None] + (["--tier"] if args.tier else [])
    if rdu_only:
        raise UserError(f"{', '.join(rdu_only)} apply to dataflow-RDU designs (e.g. sn40l); "
                        f"design {design.name!r} has no rdu section")
    if design.spatial is not None and getattr(args, "model", None):
        return _simulate_spatial(design, args)
    cascade = _load_workload(args)
    _check_outputs(args)
    mapping = Mapping.load(args.mapping) if args.mapping else None
    result = simulate(design, cascade, mapping, mapper=args.mapper)
    _write_outputs(result, args)
    if not args.quiet:
        print(result.summary())
    return 0


def cmd_map(args) -> int:
    from archsim import simulate
    from mappers import MEMORY_MAPPERS, get_mapper

    design = _design(args)
    if design.rdu is not None:
        raise UserError(f"design {design.name!r} is a dataflow RDU: its mapping (sections, "
                        f"tiers) is searched by `archsim simulate --design {design.name} "
                        f"--partition ilp|greedy|dp`")
    cascade = _load_workload(args)
    _check_outputs(args)
    memory = args.mapper in MEMORY_MAPPERS
    given = [f for f, v in (("--budget", args.budget), ("--window", args.window)) if v]
    if args.mapper == "rl" and args.window:
        raise UserError("--window applies to ilp, belady, xla and exhaustive; the RL mapper "
                        "keeps program order")
    if not memory and args.mapper != "rl" and given:
        raise UserError(f"{', '.join(given)} apply to the memory mappers "
                        f"({', '.join(MEMORY_MAPPERS)}), not --mapper {args.mapper}")
    limits = _limits(args)
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
    _write_outputs(result, args)
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


def cmd_designs(args) -> int:
    from archsim.spec import builtin_designs, load_design

    if args.action == "show":
        if not args.name:
            raise UserError("designs show needs a design name or path")
        d = load_design(args.name, args.set)
        print(f"# {d.name} (hash {d.hash}) from {d.source}")
        print(d.to_yaml(), end="")
        return 0
    if args.action not in (None, "list"):
        raise UserError(f"unknown designs action {args.action!r}; expected list or show")
    for name in builtin_designs():
        d = load_design(name)
        desc = " ".join(d.description.split())
        print(f"{name:<20} {desc[:90]}")
    return 0


def cmd_cascades(args) -> int:
    import dataflow

    if args.action == "show":
        if not args.name:
            raise UserError("cascades show needs a cascade name or path")
        print(dataflow.load_cascade(args.name).summary())
        return 0
    for name in dataflow.builtin_cascades():
        c = dataflow.load_cascade(name)
        print(f"{name:<22} {len(c.einsums)} einsums, ranks "
              + ",".join(f"{k}={v}" for k, v in c.ranks.items()))
    return 0


def cmd_models(args) -> int:
    import json

    import dataflow

    rows = [m.summary() for m in dataflow.builtin_models()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<14} {'params':>9} {'layers':>6} {'hidden':>6} {'heads':>5} "
          f"{'kv':>3} {'experts':>7}  source")
    for r in rows:
        experts = f"{r['experts']}/top{r['top_k']}" if r["experts"] else "-"
        params = r["params"]
        text = f"{params / 1e9:.2f}B" if params >= 1e9 else f"{params / 1e6:.1f}M"
        print(f"{r['name']:<14} {text:>9} {r['layers']:>6} {r['hidden']:>6} {r['heads']:>5} "
              f"{r['kv_heads']:>3} {experts:>7}  {r['source'].split(';')[0][:60]}")
    return 0


def cmd_workload(args) -> int:
    from archsim import workload_report

    cascade = _load_workload(args)
    outputs = {"json": args.json, "csv": args.csv, "graph": args.graph}
    for flag, out in outputs.items():
        if out and not Path(out).parent.is_dir():
            raise UserError(f"--{flag} {out}: directory {Path(out).parent} does not exist")
    if args.graph and Path(args.graph).suffix.lower() not in PLOT_FORMATS:
        raise UserError(f"--graph {args.graph}: unsupported figure format; expected one of "
                        f"{', '.join(PLOT_FORMATS)}")
    try:
        if args.json:
            workload_report.write_rows(cascade, args.json, "json")
        if args.csv:
            workload_report.write_rows(cascade, args.csv, "csv")
        if args.graph:
            workload_report.draw_graph(cascade, args.graph)
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename}: {exc.strerror}") from None
    if args.yaml:
        print(cascade.to_yaml(), end="")
    elif not args.quiet:
        print(workload_report.format_workload(cascade))
    return 0


def _report_figures(figs, text: str, json_path) -> int:
    """Print a paper comparison, write its JSON; exit 1 if a toleranced figure is off."""
    from archsim.validate_neupims import write_json

    print(text)
    if json_path:
        write_json(figs, json_path)
    bad = [f for f in figs if f.ok is False]
    if bad:
        print(f"FAIL: {', '.join(f.name for f in bad)} outside tolerance", file=sys.stderr)
        return 1
    return 0


def cmd_validate(args) -> int:
    from archsim import validate

    if args.target == "scalesim":
        if not args.csv:
            raise UserError("validate scalesim needs --csv FILE (columns M,N,K,rows,cols,"
                            "dataflow,compute_cycles)")
        rows = validate.scalesim_rows(args.csv)
        if not rows:
            raise UserError(f"{args.csv}: no data rows to validate")
        print(validate.format_scalesim(rows, args.tolerance))
        if args.json:
            validate.write_json(rows, args.json)
        bad = [r for r in rows if abs(r["error_pct"]) > args.tolerance]
        if bad:
            which = "; ".join(f"{r['M']}x{r['N']}x{r['K']} on {r['rows']}x{r['cols']} "
                              f"{r['dataflow']}: {r['error_pct']:+.3f}%" for r in bad[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            print(f"FAIL: {len(bad)} of {len(rows)} rows off by more than {args.tolerance}%: "
                  f"{which}{more}", file=sys.stderr)
            return 1
        print(f"PASS: all {len(rows)} rows within {args.tolerance}%")
        return 0
    if args.target == "neupims":
        from archsim import validate_neupims as vn

        figs = vn.neupims_figures(requests_per_batch=args.requests_per_batch,
                                  progress=False, fidelity=args.fidelity)
        return _report_figures(figs, vn.format_figures(figs), args.json)
    if args.target == "fusemax":
        from archsim import validate_fusemax as vf

        figs = vf.fusemax_figures()
        return _report_figures(figs, vf.format_fusemax(figs), args.json)
    if args.target == "duplex":
        from archsim import validate_duplex as vd

        figs = vd.duplex_figures(requests_per_batch=args.requests_per_batch)
        return _report_figures(figs, vd.format_duplex(figs), args.json)
    if args.target == "sn40l":
        from archsim import validate_sn40l as vs

        figs = vs.sn40l_figures()
        return _report_figures(figs, vs.format_sn40l(figs), args.json)
    raise UserError(f"unknown validation target {args.target!r}; available: scalesim, neupims, "
                    f"duplex, fusemax, sn40l")


def _on_off(text: str):
    if text == "auto":
        return "auto"
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on, off or auto, found {text!r}")


def _on_off_strict(text: str) -> bool:
    value = _on_off(text)
    if value == "auto":
        raise argparse.ArgumentTypeError("expected on or off, found 'auto'")
    return value


def cmd_serve(args) -> int:
    import json

    from archsim.serving import plot_serving
    from archsim.serving.run import serve

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


def cmd_coe(args) -> int:
    from archsim.coe import simulate_coe

    if args.json and not Path(args.json).parent.is_dir():
        raise UserError(f"--json {args.json}: directory {Path(args.json).parent} does not exist")
    if args.cache_experts is not None and args.cache_experts < 0:
        raise UserError(f"--cache-experts must be >= 0, found {args.cache_experts}")
    result = simulate_coe(args.design, experts=args.experts, batch=args.batch,
                          output_tokens=args.output_tokens, prompt_tokens=args.prompt_tokens,
                          baseline=args.baseline, expert=args.expert, router=args.router,
                          sockets=args.sockets, cache_experts=args.cache_experts,
                          batches=args.batches, seed=args.seed, routing=args.routing,
                          overrides=tuple(args.set))
    if args.json:
        _write_json(result.to_dict(), args.json)
    if not args.quiet:
        print(result.summary())
    return 0


def _parse_problem_spec(text: str) -> tuple[tuple[str, ...], int]:
    kinds_text, _, count = text.partition(":")
    kinds = tuple(k.strip() for k in kinds_text.split(",") if k.strip())
    bad = [k for k in kinds if k not in ("decoder", "cnn", "random")]
    if not kinds or bad:
        raise UserError(f"--problems {text!r}: expected KINDS[:COUNT] with kinds from decoder, "
                        f"cnn, random, e.g. decoder,cnn,random:128")
    try:
        n = int(count) if count else 128
    except ValueError:
        raise UserError(f"--problems {text!r}: COUNT must be an integer") from None
    if n < 1:
        raise UserError(f"--problems {text!r}: COUNT must be positive")
    return kinds, n


def cmd_rl(args) -> int:
    import json

    from mappers import rl

    kinds, count = _parse_problem_spec(args.problems)
    for attr in ("out", "log", "json"):
        out = getattr(args, attr, None)
        if out and not Path(out).parent.is_dir():
            raise UserError(f"--{attr} {out}: directory {Path(out).parent} does not exist")
    if args.action == "train":
        if args.steps < 1:
            raise UserError(f"--steps must be positive, found {args.steps}")
        res = rl.train(steps=args.steps, seed=args.seed, problems=count, kinds=kinds,
                       out=args.out, log=args.log, progress=not args.quiet)
        if not args.quiet:
            print(f"trained {res['steps']:,} steps in {res['seconds']:.1f} s "
                  f"({res['episodes']} episodes): {res['policy']}, {res['numpy_policy']}; "
                  f"learning curve {res['log']}")
        return 0
    pool = rl.problem_pool(count, seed=args.seed, kinds=kinds)
    policy = rl.NumpyPolicy.load(args.policy) if args.policy else None
    with_ilp = args.ilp or args.time_limit is not None or args.node_limit is not None
    rows = rl.evaluate_policy(pool, policy, samples=args.samples, ilp=with_ilp,
                              ilp_limits=_limits(args), seed=args.seed)
    summary = rl.summarize(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    if not args.quiet:
        cols = ["rl", "xla", "belady", "random"] + (["ilp"] if with_ilp else [])
        print(f"{'graph':<28} {'ops':>4} " + " ".join(f"{c:>12}" for c in cols))
        for r in rows:
            print(f"{r['graph'][:28]:<28} {r['operators']:>4} "
                  + " ".join(f"{r[c]:>12,}" for c in cols))
        print("non-compulsory bytes per mapper; " + ", ".join(
            f"{k} {v:.2f}" for k, v in summary.items()))
    return 0


def cmd_sweep(args) -> int:
    from archsim import sweep

    if args.target == "plot":
        if not args.results or not args.x or not args.y:
            raise UserError("sweep plot needs RESULTS, --x and --y")
        out = args.out or str(Path(args.results).with_suffix(".png"))
        if Path(out).suffix.lower() not in PLOT_FORMATS:
            raise UserError(f"--out {out}: unsupported figure format")
        if not Path(out).parent.is_dir():
            raise UserError(f"--out {out}: directory {Path(out).parent} does not exist")
        n = sweep.plot(args.results, args.x, args.y, out, color=args.color,
                       maximize=tuple(args.maximize or ()))
        if not args.quiet:
            print(f"{out}: {n} points on the Pareto front")
        return 0
    if args.results or args.x or args.y or args.color:
        raise UserError("RESULTS, --x, --y and --color belong to `archsim sweep plot`")
    spec = sweep.load_spec(args.target)
    out = args.out or str(Path(args.target).with_suffix(".csv"))
    rep = sweep.run_sweep(spec, out, workers=args.workers, scheduler=args.scheduler,
                          progress=not args.quiet, retry_errors=args.retry_errors)
    if not args.quiet:
        print(f"{rep.path}: {rep.total} points, {rep.skipped} already done, {rep.ran} run "
              f"({rep.failed} failed) in {rep.seconds:.1f} s on {rep.scheduler}")
        if rep.stale:
            print(f"{rep.stale} rows that are not points of this sweep (another model "
                  f"version or spec) moved to {rep.stale_path}")
    return 0


def cmd_regress(args) -> int:
    from archsim import regress

    return regress.main(Path(args.golden), update=args.update)


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``archsim`` command."""
    from archsim import __version__

    p = _Parser(prog="archsim", description="Cycle-approximate simulator and mapper for "
                                            "LLM/DNN accelerators.")
    p.add_argument("--version", action="version", version=f"archsim {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    s = sub.add_parser("simulate", help="simulate a workload on a design")
    _add_workload_args(s)
    s.add_argument("--mapping", metavar="FILE", help="a mapping JSON (from `archsim map --out`)")
    s.add_argument("--mapper", default="greedy", help="mapper used when no --mapping is given")
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
    _add_limit_args(r, "--partition ilp, --tier ilp")
    s.set_defaults(func=cmd_simulate)

    m = sub.add_parser("map", help="search a mapping, print it and its cost")
    _add_workload_args(m)
    m.add_argument("--mapper", default="greedy",
                   help="greedy (default), opb, ilp-binding; memory mappers: ilp, belady, "
                        "xla, exhaustive")
    m.add_argument("--budget", metavar="MR|MH|MP|BYTES",
                   help="memory mappers: scratchpad budget (default its capacity); MR = the "
                        "largest operator's working set, MP = the least spill-free peak, MH "
                        "between")
    m.add_argument("--objective", choices=["traffic", "time"], default="traffic",
                   help="ilp: minimise non-compulsory off-chip bytes (default) or total time")
    _add_limit_args(m, "ilp, ilp-binding")
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
    m.set_defaults(func=cmd_map)

    d = sub.add_parser("designs", help="list built-in designs, or show one resolved")
    d.add_argument("action", nargs="?", choices=["list", "show"])
    d.add_argument("name", nargs="?")
    d.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    d.set_defaults(func=cmd_designs)

    c = sub.add_parser("cascades", help="list built-in cascades, or show one")
    c.add_argument("action", nargs="?", choices=["list", "show"])
    c.add_argument("name", nargs="?")
    c.set_defaults(func=cmd_cascades)

    mo = sub.add_parser("models", help="list the built-in models")
    mo.add_argument("--json", action="store_true", help="print JSON (name, params, layers, "
                                                        "hidden, heads, kv_heads, experts ...)")
    mo.set_defaults(func=cmd_models)

    wl = sub.add_parser("workload", help="print a workload's einsums (FLOPs, bytes, op/B), "
                                         "draw its graph")
    _add_workload_args(wl, design=False)
    wl.add_argument("--json", metavar="OUT", help="write the per-einsum rows as JSON")
    wl.add_argument("--csv", metavar="OUT", help="write the per-einsum rows as CSV")
    wl.add_argument("--graph", metavar="OUT", help="draw the dependency graph (png/svg/pdf)")
    wl.add_argument("--yaml", action="store_true", help="print the cascade as YAML instead")
    wl.add_argument("--quiet", action="store_true", help="print nothing")
    wl.set_defaults(func=cmd_workload)

    v = sub.add_parser("validate", help="compare models against reference results")
    v.add_argument("target", choices=["scalesim", "neupims", "duplex", "fusemax", "sn40l"])
    v.add_argument("--csv", help="SCALE-Sim results CSV (see ../shared/reference)")
    v.add_argument("--tolerance", type=float, default=1.0, metavar="PCT",
                   help="largest allowed |error| in percent (default 1)")
    v.add_argument("--json", metavar="OUT", help="write per-row results as JSON")
    v.add_argument("--requests-per-batch", type=float, default=3.0, metavar="R",
                   help="neupims, duplex: requests simulated per run = R x batch (default 3)")
    v.add_argument("--fidelity", choices=["analytical", "command"], default="analytical",
                   help="neupims: PIM timing model")
    v.set_defaults(func=cmd_validate)

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
    sv.add_argument("--expert-coprocessing", type=_on_off_strict, default=None, metavar="on|off",
                    help="xPU + PIM designs: split an MoE layer's experts over both processors")
    sv.add_argument("--attention-coprocessing", type=_on_off_strict, default=None,
                    metavar="on|off", help="xPU + PIM designs: prefill attention on the xPU "
                    "while decode attention runs on the PIM")
    sv.add_argument("--seed", type=int, default=0, help="seed of lengths and arrivals")
    sv.add_argument("--interleave", type=_on_off, default=None, metavar="on|off|auto",
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
    sv.set_defaults(func=cmd_serve)

    ce = sub.add_parser("coe", help="Composition of Experts on an RDU node vs a DGX baseline")
    ce.add_argument("--design", default="sn40l", help="RDU design (default sn40l)")
    ce.add_argument("--experts", type=int, default=150, help="experts (default 150)")
    ce.add_argument("--batch", type=int, default=8, help="requests per batch (default 8)")
    ce.add_argument("--output-tokens", type=int, default=20,
                    help="tokens generated per request (default 20)")
    ce.add_argument("--prompt-tokens", type=int, default=128,
                    help="prompt tokens per request (default 128)")
    ce.add_argument("--baseline", default="dgx-h100",
                    choices=["dgx-h100", "dgx-a100", "dgx-a100-40"],
                    help="GPU node to compare with (default dgx-h100)")
    ce.add_argument("--expert", default="llama2-7b", help="expert model (default llama2-7b)")
    ce.add_argument("--router", default="llama2-7b", help="router model (default llama2-7b)")
    ce.add_argument("--sockets", type=int, default=8, help="RDU sockets (default 8)")
    ce.add_argument("--cache-experts", type=int, default=None,
                    help="experts the HBM cache holds (default: all that fit)")
    ce.add_argument("--batches", type=int, default=64,
                    help="batches averaged after the cache warm-up (default 64)")
    ce.add_argument("--seed", type=int, default=0, help="seed of the routing (default 0)")
    ce.add_argument("--routing", choices=["request", "batch"], default="request",
                    help="request: each request picks its expert (default); batch: one "
                         "expert per batch")
    ce.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                    help="override a key of the RDU design")
    ce.add_argument("--json", metavar="OUT", help="write the result as JSON")
    ce.add_argument("--quiet", action="store_true", help="print nothing")
    ce.set_defaults(func=cmd_coe)

    rl = sub.add_parser("rl", help="train or evaluate the RL memory mapper")
    rl.add_argument("action", choices=["train", "eval"])
    rl.add_argument("--problems", default="decoder,cnn,random:128", metavar="SPEC",
                    help="KINDS[:COUNT]: graph kinds (decoder, cnn, random) and how many "
                         "problems to draw (default decoder,cnn,random:128)")
    rl.add_argument("--steps", type=int, default=500_000, help="train: environment steps "
                                                               "(default 500000)")
    rl.add_argument("--seed", type=int, default=0, help="seed of problems and training")
    rl.add_argument("--out", default="policy.zip", metavar="FILE",
                    help="train: the model (.zip; a NumPy .npz is written beside it)")
    rl.add_argument("--log", metavar="CSV", help="train: learning curve (default OUT.csv)")
    rl.add_argument("--policy", metavar="FILE", help="eval: policy (default: the shipped one)")
    rl.add_argument("--samples", type=int, default=8,
                    help="eval: best of K rollouts (default 8, as --mapper rl)")
    rl.add_argument("--ilp", action="store_true",
                    help="eval: also map every problem with the memory ILP")
    _add_limit_args(rl, "eval --ilp")
    rl.add_argument("--json", metavar="OUT", help="eval: write the rows as JSON")
    rl.add_argument("--quiet", action="store_true", help="no progress bar or table")
    rl.set_defaults(func=cmd_rl)

    sw = sub.add_parser("sweep", help="run a design-space sweep (SPEC.yaml), or plot its "
                                      "results (sweep plot RESULTS --x A --y B)")
    sw.add_argument("target", metavar="SPEC.yaml|plot",
                    help="a sweep file to run or resume, or `plot`")
    sw.add_argument("results", nargs="?", help="plot: the results CSV")
    sw.add_argument("--out", metavar="FILE", help="results CSV (default SPEC.csv); plot: the "
                                                   "figure (default RESULTS.png)")
    sw.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    sw.add_argument("--scheduler", metavar="local|tcp://HOST:PORT",
                    help="run on Dask: local starts a LocalCluster, or a scheduler address")
    sw.add_argument("--retry-errors", action="store_true",
                    help="run points that failed before again")
    sw.add_argument("--x", help="plot: x column")
    sw.add_argument("--y", help="plot: y column")
    sw.add_argument("--color", help="plot: color column")
    sw.add_argument("--maximize", action="append", metavar="COLUMN",
                    help="plot: a column to maximise on the Pareto front (default minimise)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    sw.set_defaults(func=cmd_sweep)

    r = sub.add_parser("regress", help="re-run the golden cycle-count cases and show a diff")
    r.add_argument("--update", action="store_true", help="rewrite the golden files")
    r.add_argument("--golden", default="tests/golden", metavar="DIR",
                   help="directory of golden case files (default tests/golden)")
    r.set_defaults(func=cmd_regress)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``archsim`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from dataflow import CascadeError
    except ImportError:  # pragma: no cover
        CascadeError = ValueError  # type: ignore
    try:
        return int(args.func(args) or 0)
    except (UserError, CascadeError) as exc:
        if os.environ.get("ARCHSIM_DEBUG"):
            raise
        msg = " ".join(str(exc).split("\n"))
        print(f"archsim: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `archsim designs | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
