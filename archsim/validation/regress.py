"""Golden cycle-count regression.

Each ``tests/golden/*.json`` file is one case: what to simulate and the figures it produced when
the file was last updated on purpose::

    {
      "description": "why this case exists",
      "design": "sa128", "set": [],
      "workload": {"cascade": "attention"},  # or {"einsum": [...], "ranks": {...}}
                                             # or {"random": {"n": 200, "seed": 1, ...}}
                                             # or {"model": "llama2-7b", "phase": "decode",
                                             #     "batch": 32, "seq": 1024, ...}
                                             # or {"spatial": {"model": "bert-base",
                                             #     "seq": 4096, "batch": 64, "scope": ...}}
                                             #     (encoders on a spatial design)
                                             # or {"rdu": {"model": "llama2-7b", "phase":
                                             #     "decode", "sockets": 8, "fusion": ...}}
                                             #     (model graphs on a dataflow RDU)
                                             # or {"serve": {"model": "gpt3-7b",
                                             #     "requests": 200, ...}}
                                             #     (archsim.api.serve options)
                                             # or {"coe": {"experts": 150, ...}}
                                             #     (archsim.api.coe options)
      "mapper": "greedy",
      "model_version": "graph-1",          # the family's model version that produced expected
      "expected": {"cycles": ..., "units": {...}, "memory": {...}, "energy_pj": ...}
    }

``archsim regress`` re-runs every case and prints a diff of the figures that changed (exit 1);
``archsim regress --update`` rewrites ``expected`` and prints the same diff, so the change can be
reviewed and explained in the commit. To add a case, write the file without ``expected`` and run
``--update``.

A changed figure is a changed model, so ``--update`` records it only together with a new model
version of the case's family (:data:`archsim.core.identity.MODEL_VERSIONS`): while the golden's
``model_version`` is still the current one, the update is refused and says which number to bump.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archsim.errors import UserError

CASE_KEYS = {"description", "design", "set", "workload", "mapper", "model_version",
             "expected"}
ENERGY_RTOL = 1e-9


def case_inputs(case: dict, source: str = "<case>"):
    """``(design, workload, options)`` of a golden case: the design with its ``set``
    overrides, a cascade or a model name, and the family's options."""
    import dataflow

    from archsim.spec import load_design

    unknown = set(case) - CASE_KEYS
    if unknown:
        raise UserError(f"{source}: unknown keys {sorted(unknown)}; expected {sorted(CASE_KEYS)}")
    design = load_design(case["design"], case.get("set", []))
    wl = case.get("workload") or {}
    for key in ("spatial", "rdu", "serve"):       # model workloads: (design, model, options)
        if key in wl:
            options = dict(wl[key])
            return design, options.pop("model"), options
    if "cascade" in wl:
        cascade = dataflow.load_cascade(wl["cascade"], ranks_override=wl.get("ranks"))
    elif "einsum" in wl:
        cascade = dataflow.Cascade.from_text(wl["einsum"], wl["ranks"],
                                             name=wl.get("name", Path(source).stem),
                                             default_bits=wl.get("bits", 16))
    elif "random" in wl:
        cascade = dataflow.random_cascade(**wl["random"])
    elif "model" in wl:
        cascade = dataflow.model_graph(**wl)
    else:
        raise UserError(f"{source}: workload needs 'cascade', 'einsum' + 'ranks', 'random', "
                        f"'model', 'spatial' or 'rdu'")
    return design, cascade, {}


def run_case(case: dict, source: str = "<case>"):
    """Simulate one golden case through :func:`archsim.api.simulate`; returns its result."""
    from archsim import api

    wl = case.get("workload") or {}
    if "coe" in wl:                               # the RDU node vs its DGX baseline
        return api.coe(case["design"], overrides=tuple(case.get("set", [])), **wl["coe"])
    design, workload, options = case_inputs(case, source)
    if "serve" in wl:
        return api.serve(design, workload, **options)
    if api.family_for(design, workload).name == "graph":
        options["mapper"] = case.get("mapper", "greedy")
    elif "mapper" in case:
        options["mapper"] = case["mapper"]
    return api.simulate(design, workload, **options)


def result_model_version(result) -> str:
    """The model version a case's figures come from: its family's (``graph-3``), and for a
    CoE result also its DGX baseline's (``rdu-1+graph-3``)."""
    from archsim.core.identity import model_version

    version = model_version(result.identity["family"])
    if "baseline_model_version" in result.identity:
        version += "+" + result.identity["baseline_model_version"]
    return version


def case_family(case: dict, source: str = "<case>") -> str:
    """The model family that answers a case (:func:`archsim.families.family_for`)."""
    from archsim.families import family_for

    wl = case.get("workload") or {}
    if "coe" in wl:
        return "rdu"
    if "serve" in wl:
        return "graph"                  # the serving models are the graph family's
    design, workload, _ = case_inputs(case, source)
    return family_for(design, workload).name


def _sig(x: float | None, digits: int = 12) -> float | None:
    """``x`` to ``digits`` significant digits (float sums may differ in the last bits)."""
    return None if x is None else float(f"{x:.{digits}g}")


def figures(result) -> dict[str, Any]:
    """The regressed figures of a result."""
    if hasattr(result, "baseline_switch_seconds"):    # CoE (archsim.experiments.coe)
        return {"seconds": _sig(result.seconds), "baseline_seconds": _sig(result.baseline_seconds),
                "switch_seconds": _sig(result.switch_seconds),
                "baseline_switch_seconds": _sig(result.baseline_switch_seconds),
                "hit_rate": _sig(result.hit_rate), "baseline_hit_rate": _sig(result.baseline_hit_rate),
                "cache_experts": result.cache_experts,
                "baseline_cache_experts": result.baseline_cache_experts,
                "oom": result.oom, "baseline_oom": result.baseline_oom}
    if hasattr(result, "config") and hasattr(result, "result"):   # serve (ServeRun)
        r = result.result
        return {"iterations": r.iterations, "preemptions": r.preemptions,
                "output_tokens": r.output_tokens_total, "makespan_s": _sig(r.makespan_s),
                "throughput_tokens_per_s": _sig(r.throughput_tokens_per_s),
                "ttft_s": {k: _sig(v) for k, v in r.ttft_s.items()},
                "tbt_s": {k: _sig(v) for k, v in r.tbt_s.items()},
                "energy_j": _sig(r.energy_j), "peak_kv_tokens": r.peak_kv_tokens}
    if hasattr(result, "kernel_launches"):    # dataflow RDU (archsim.families.rdu.RduResult)
        return {
            "cycles": result.cycles,
            "kernel_launches": result.kernel_launches,
            "sections": {seg: len(p.sections) for seg, p in result.partitions.items()},
            "memory": {t: {"bytes": round(b)} for t, b in result.memory_bytes.items()},
        }
    if hasattr(result, "attention"):          # spatial model (archsim.families.spatial.ModelResult)
        d = result.to_dict()
        return {
            "cycles": round(result.cycles, 3),
            "units": {n: {"busy_cycles": round(u["busy_cycles"], 3)}
                      for n, u in d["units"].items()},
            "memory": {"dram": {"bytes": round(result.attention.dram_bytes * result.layers)}},
            "energy_pj": round(result.energy_pj, 3),
        }
    return {
        "cycles": result.cycles,
        "units": {n: {"busy_cycles": u.busy_cycles, "compute_cycles": u.compute_cycles,
                      "tasks": u.tasks} for n, u in result.units.items()},
        "memory": {n: {"read_bytes": m.read_bytes, "write_bytes": m.write_bytes}
                   for n, m in result.memory.items()},
        "energy_pj": round(result.energy_pj, 3),
    }


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): d}


def diff(old: dict | None, new: dict) -> list[str]:
    """Lines ``key: old -> new (+x%)`` for every figure that changed."""
    if old is None:
        return ["(new case)"]
    a, b = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            if key.endswith("energy_pj") and abs(va - vb) <= ENERGY_RTOL * max(abs(va), 1):
                continue
            pct = f" ({100 * (vb - va) / va:+.3f}%)" if va else ""
            lines.append(f"{key}: {va:,} -> {vb:,}{pct}")
        else:
            lines.append(f"{key}: {va!r} -> {vb!r}")
    return lines


def check(golden_dir: Path, update: bool = False) -> dict[str, list[str]]:
    """Run every case in ``golden_dir``; returns case name -> diff lines (empty: unchanged)."""
    return run_cases(golden_dir, update)[0]


def run_cases(golden_dir: Path, update: bool = False
              ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Run every case in ``golden_dir``: (case name -> diff lines, case name -> why its
    update was refused). With ``update`` the changed cases are rewritten, except those whose
    figures changed under an unchanged model version."""
    if not golden_dir.is_dir():
        raise UserError(f"{golden_dir}: golden directory not found (run from the repository "
                        "root or pass --golden DIR)")
    files = sorted(golden_dir.glob("*.json"))
    if not files:
        raise UserError(f"{golden_dir}: no golden case files (*.json)")
    from archsim.core.identity import MODEL_VERSIONS

    out: dict[str, list[str]] = {}
    refused: dict[str, str] = {}
    for f in files:
        try:
            case = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{f}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        result = run_case(case, str(f))
        new = figures(result)
        lines = diff(case.get("expected"), new)
        fam = result.identity["family"]
        version = result_model_version(result)
        recorded = case.get("model_version")
        if recorded != version:
            lines.append(f"model_version: {recorded} -> {version}")
        out[f.stem] = lines
        if update and lines:
            figures_changed = case.get("expected") is not None and \
                any(not ln.startswith("model_version:") for ln in lines)
            if figures_changed and recorded == version:
                refused[f.stem] = (f"figures changed but the {fam} model version is still "
                                   f"{version}: bump MODEL_VERSIONS[{fam!r}] (now "
                                   f"{MODEL_VERSIONS[fam]}) in archsim/core/identity.py, then "
                                   f"update again")
                continue
            case["model_version"] = version
            case["expected"] = new
            keys = [k for k in ("description", "design", "set", "workload", "mapper",
                                "model_version", "expected") if k in case]
            f.write_text(json.dumps({k: case[k] for k in keys}, indent=2) + "\n")
    return out, refused


def main(golden_dir: Path, update: bool = False) -> int:
    """CLI body of ``archsim regress``; returns the exit code."""
    results, refused = run_cases(golden_dir, update)
    changed = {k: v for k, v in results.items() if v}
    for name, lines in results.items():
        status = "changed" if lines else "ok"
        if update and lines:
            status = "NOT updated" if name in refused else "updated"
        print(f"{name}: {status}")
        for line in lines:
            print(f"    {line}")
        if name in refused:
            print(f"    {refused[name]}")
    if refused:
        print(f"{len(refused)} of {len(results)} golden cases changed without a model version "
              f"bump; nothing was written for them")
        return 1
    if changed and not update:
        print(f"{len(changed)} of {len(results)} golden cases differ; if the change is intended, "
              "run `archsim regress --update` and say why in the commit message")
        return 1
    print(f"{len(results)} golden cases, {len(changed)} {'updated' if update else 'changed'}")
    return 0
