"""``archsim models``: the built-in models."""
from __future__ import annotations

def run(args) -> int:
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


def register(sub) -> None:
    """Add the ``models`` subcommand to ``sub``."""
    mo = sub.add_parser("models", help="list the built-in models")
    mo.add_argument("--json", action="store_true", help="print JSON (name, params, layers, "
                                                        "hidden, heads, kv_heads, experts ...)")
    mo.set_defaults(func=run)
