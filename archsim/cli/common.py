"""What the ``archsim`` commands share: the one-line-error parser, workload and design
arguments, solver limits, output checks."""
from __future__ import annotations

import argparse
from pathlib import Path

from archsim.errors import UserError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_ranks(text: str | None) -> dict[str, int]:
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


def int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{what} {text!r}: expected an integer or a comma-separated list of "
                        f"integers") from None
    if not values:
        raise UserError(f"{what}: expected at least one integer")
    return values


def parse_dims(text: str | None) -> dict[str, int]:
    dims = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, val = part.partition("=")
        if not sep or not val.strip().isdigit():
            raise UserError(f"--dims {text!r}: expected name=size pairs like batch=8,seq=128")
        dims[name.strip()] = int(val)
    return dims


def load_model_workload(args):
    """Build the cascade for ``--model`` (built-in name, config.json or .onnx)."""
    import dataflow

    for flag in ("batch", "seq", "tp", "layers"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise UserError(f"--{flag} must be a positive integer, found {value}")
    if args.model.endswith(".onnx"):
        from dataflow.onnx import import_onnx

        if not Path(args.model).is_file():
            raise UserError(f"--model {args.model}: no such file")
        return import_onnx(args.model, name=args.name, dims=parse_dims(args.dims),
                           default_batch=args.batch)
    if args.model.endswith(".json") and not Path(args.model).is_file():
        raise UserError(f"--model {args.model}: no such file")
    kv = int_list(args.kv, "--kv") if args.kv else None
    if kv is not None and len(kv) == 1:
        kv = kv[0]
    experts = int_list(args.expert_tokens, "--expert-tokens") if args.expert_tokens else None
    return dataflow.model_graph(args.model, args.phase, args.batch or 1, args.seq or 1024, kv,
                                past=args.past, prefills=args.prefills, tp=args.tp or 1,
                                dtype=args.dtype, attention=args.attention,
                                layers=args.layers, expert_tokens=experts, scope=args.scope,
                                name=args.name)


def load_workload(args):
    import dataflow

    ranks = parse_ranks(args.ranks)
    given = [f for f, v in (("--einsum", args.einsum), ("--cascade", args.cascade),
                            ("--model", getattr(args, "model", None))) if v]
    if len(given) > 1:
        raise UserError(f"give one workload: {' and '.join(given)} were both given")
    if getattr(args, "model", None):
        if ranks:
            raise UserError("--ranks applies to --cascade/--einsum; a --model takes --batch, "
                            "--seq, --kv, --tp, --dtype")
        return load_model_workload(args)
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


def add_model_args(p: argparse.ArgumentParser) -> None:
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


def add_workload_args(p: argparse.ArgumentParser, design: bool = True) -> None:
    if design:
        p.add_argument("--design", required=True,
                       help="built-in design name or design YAML path")
        p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                       help="override a design key, e.g. units.sa.rows=256 (repeatable)")
        p.add_argument("--fidelity", choices=["analytical", "command"], default="analytical",
                       help="DRAM/PIM timing: closed form (default) or the command-level model")
    add_model_args(p)
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


def add_limit_args(parser, what: str) -> None:
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


def solve_limits(args):
    """The SolveLimits the solver options of ``args`` ask for."""
    from archsim.core.solve import limits_from

    return limits_from(getattr(args, "node_limit", None), getattr(args, "time_limit", None),
                       getattr(args, "threads", None))


def check_outputs(args) -> None:
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


def write_outputs(result, args) -> None:
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


def cli_design(args):
    import dataclasses

    from archsim import load_design

    design = load_design(args.design, args.set)
    return dataclasses.replace(design, fidelity=args.fidelity)


def write_json(data, path: str) -> None:
    import json

    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise UserError(f"--json {path}: cannot write ({exc.strerror})") from None


def on_off(text: str):
    if text == "auto":
        return "auto"
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on, off or auto, found {text!r}")


def on_off_strict(text: str) -> bool:
    value = on_off(text)
    if value == "auto":
        raise argparse.ArgumentTypeError("expected on or off, found 'auto'")
    return value
