"""``archsim validate duplex``: Duplex against the H100 baseline, next to the paper's figures.

Every figure of ../shared/reference/duplex.md "Headline results" that the issue tolerances
is re-derived by running the serving simulator (:func:`archsim.experiments.serving.run.serve`) on the
built-in designs (``duplex``, ``h100``) with the paper's workloads: Mixtral and Llama-3-70B on
4 devices, fixed (input, output) lengths from (256, 256) to (4096, 4096), batch 32-128,
closed loop, FP16, uniform expert routing. Nothing here is fitted.
"""
from __future__ import annotations

import numpy as np

from archsim.validation.neupims import Figure, format_figures, write_json  # noqa: F401 (re-export)

#: the paper's figures (../shared/reference/duplex.md, Headline results)
PAPER = {
    "best_over_h100_without_coprocessing": 2.51,
    "best_over_h100": 2.67,
    "coprocessing_gain": 1.04,
    "gpu_decode_attention_utilization": 0.02,
    "gpu_moe_utilization": 0.11,
    "energy_per_token_ratio_mixtral": 1 - 0.33,
}
MODELS = ("mixtral-8x7b", "llama3-70b")
LENGTHS = ((256, 256), (1024, 1024), (4096, 4096))
BATCHES = (32, 64, 128)
DEVICES = 4
FOOTER = ("configurations: fixed (input, output) lengths, closed loop, fp16, uniform expert "
          "routing; Mixtral and Llama-3-70B on 4 devices (tp 4, NVLink); duplex and h100 with "
          "the same devices; requests per run = R x batch")


def duplex_figures(models=MODELS, lengths=LENGTHS, batches=BATCHES,
                   requests_per_batch: float = 2.0, seed: int = 0) -> list[Figure]:
    """Run the configurations and return the compared figures."""
    from archsim.experiments.serving.run import serve

    cache: dict = {}

    def run(design, model, lens, batch, **kw):
        key = (design, model, lens, batch, tuple(sorted(kw.items())))
        if key not in cache:
            n = max(int(requests_per_batch * batch), 1)
            cache[key] = serve(design, model, dataset=f"fixed:{lens[0]},{lens[1]}",
                               batch=batch, requests=n, devices=DEVICES, seed=seed, **kw).result
        return cache[key]

    off = dict(expert_coprocessing=False, attention_coprocessing=False)
    grid = [(m, lens, b) for m in models for lens in lengths for b in batches]
    label = lambda m, lens, b: f"{m} ({lens[0]},{lens[1]}) batch {b}"  # noqa: E731
    speed, speed_off, gain, energy = {}, {}, {}, {}
    for m, lens, b in grid:
        h = run("h100", m, lens, b)
        d = run("duplex", m, lens, b)
        d0 = run("duplex", m, lens, b, **off)
        k = label(m, lens, b)
        speed[k] = d.throughput_tokens_per_s / h.throughput_tokens_per_s
        speed_off[k] = d0.throughput_tokens_per_s / h.throughput_tokens_per_s
        gain[k] = d.throughput_tokens_per_s / d0.throughput_tokens_per_s
        energy[k] = (m, d.energy_per_token_j / h.energy_per_token_j)
    figs = []

    def best(name, table, desc):
        k = max(table, key=table.get)
        figs.append(Figure(name, desc, PAPER[name], table[k], 15.0, [k],
                           {"mean over configurations": round(float(np.mean(list(
                               table.values()))), 4),
                            **{c: round(v, 4) for c, v in table.items()}}))

    best("best_over_h100_without_coprocessing", speed_off,
         "best throughput duplex (op/B placement, no co-processing) / h100")
    best("best_over_h100", speed,
         "best throughput duplex (with expert and attention co-processing) / h100")
    g = float(np.mean(list(gain.values())))
    figs.append(Figure("coprocessing_gain", "throughput duplex with / without co-processing, "
                       "mean over configurations", PAPER["coprocessing_gain"], g, None,
                       list(gain), {c: round(v, 4) for c, v in gain.items()},
                       bounds=(1.0, 1.1)))
    mix = {c: v for c, (m, v) in energy.items() if m.startswith("mixtral")}
    if mix:
        e = float(np.mean(list(mix.values())))
        p = PAPER["energy_per_token_ratio_mixtral"]
        figs.append(Figure("energy_per_token_ratio_mixtral", "energy per token duplex / h100, "
                           "Mixtral, mean over configurations", p, e, None, list(mix),
                           {c: round(v, 4) for c, v in mix.items()},
                           bounds=(round(p - 0.10, 4), round(p + 0.10, 4))))
    figs.extend(utilization_figures(models))
    figs.extend(op_per_byte_figures(models))
    return figs


def _decode_ops(design: str, model: str, batch: int = 64, context: int = 2048):
    """The placed operations of one decode layer (batch requests at ``context``)."""
    from archsim.experiments.serving.coprocessing import CoProcessingModel
    from archsim.spec import load_design

    cm = CoProcessingModel(load_design(design), model, tp=DEVICES)
    return cm, cm.layer_report([], np.full(batch, context))


def utilization_figures(models=MODELS) -> list[Figure]:
    """GPU compute utilization of decode attention and of MoE experts on the h100 design:
    FLOPs / (time x peak FLOP/s), batch 64 at context 2048."""
    out = []
    # duplex.md "Headline results": "below 11% for MoE and about 2% for decode attention";
    # the 2% is checked as "at most 5%"
    for kind, name, bound in (("decode_attention", "gpu_decode_attention_utilization", 0.05),
                              ("expert", "gpu_moe_utilization", 0.11)):
        vals = {}
        for m in models:
            cm, ops = _decode_ops("h100", m)
            sel = [o for o in ops if o["kind"] == kind]
            if not sel:
                continue
            peak = cm.xpu.spec.matrix_flops_per_s
            vals[m] = sum(o["flops"] for o in sel) / (sum(o["xpu_s"] for o in sel) * peak)
        if not vals:
            continue
        worst = max(vals.values())
        out.append(Figure(name, f"h100 compute utilization of {kind.replace('_', ' ')} "
                          f"(FLOPs / time / peak), decode batch 64, context 2048, worst model",
                          PAPER[name], worst, None, [f"{m} tp{DEVICES}" for m in vals],
                          {m: round(v, 5) for m, v in vals.items()},
                          bounds=(None, bound) if bound else None))
    return out


def op_per_byte_figures(models=MODELS) -> list[Figure]:
    """op/B per layer on duplex (decode batch 64, context 2048): the smallest MoE expert
    op/B (paper: >= 1) and decode attention op/B (paper: 4-8 for GQA), with where each ran."""
    ex, att, placed = {}, {}, {}
    for m in models:
        _, ops = _decode_ops("duplex", m)
        for o in ops:
            placed[f"{m} {o['name']}"] = f"op/B {o['ops_per_byte']:.2f} on {o['on']}"
            if o["kind"] == "expert":
                ex[m] = min(ex.get(m, np.inf), o["ops_per_byte"])
            if o["kind"] == "decode_attention":
                att[m] = o["ops_per_byte"]
    figs = []
    if ex:
        figs.append(Figure("moe_expert_op_per_byte", "smallest MoE expert op/B (FLOPs / bytes of "
                           "operands and results), decode batch 64", None, min(ex.values()),
                           None, list(ex), {m: round(v, 3) for m, v in ex.items()},
                           bounds=(1.0, None)))
    gqa = {m: v for m, v in att.items()}
    if gqa:
        figs.append(Figure("gqa_decode_attention_op_per_byte", "decode attention op/B (GQA "
                           "models), smallest and largest", None, min(gqa.values()), None,
                           list(gqa), {**{m: round(v, 3) for m, v in gqa.items()},
                                       "largest": round(max(gqa.values()), 3)},
                           bounds=(3.5, 8.0)))
    figs.append(Figure("placement", "where each operation of a decode layer ran (duplex)",
                       None, float(len(placed)), None, [], placed,
                       reported="a listing (operations counted), not a figure the reference "
                                "gives"))
    return figs


def format_duplex(figs: list[Figure]) -> str:
    """A text table of the figures and their configurations."""
    return format_figures(figs, FOOTER)
