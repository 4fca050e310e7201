"""``archsim coe``: Composition of Experts on an RDU node vs a DGX baseline."""
from __future__ import annotations

from pathlib import Path

from archsim.cli.common import write_json
from archsim.errors import UserError


def run(args) -> int:
    from archsim.experiments.coe import simulate_coe

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
        write_json(result.to_dict(), args.json)
    if not args.quiet:
        print(result.summary())
    return 0


def register(sub) -> None:
    """Add the ``coe`` subcommand to ``sub``."""
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
    ce.set_defaults(func=run)
