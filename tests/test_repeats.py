"""Repeated bodies in the evaluator: a cascade whose layers are a Repeat of ``count`` instances
is simulated once and scaled (archsim.families.graph ``_repeat_extras`` / ``_repeat_shifts``). The
result must equal simulating the same graph with the layers unrolled by hand."""
import re
from collections import Counter

import pytest

import archsim
from archsim import Mapping, load_design
from archsim.errors import MappingError
from dataflow import Cascade
from dataflow.cascade import Repeat
from dataflow.einsum import Tensor
from dataflow.transformer import Request, model_cascade, phase_requests
from mappers import get_mapper

_TENSOR = re.compile(r"\b([A-Z][A-Za-z0-9_]*)\[")


def _default_names(texts):
    """Einsum names as Cascade.from_text gives them: the output tensor, then T#2, T#3..."""
    count, names = Counter(), []
    for text in texts:
        out = text.split("[", 1)[0].strip()
        count[out] += 1
        names.append(out if count[out] == 1 else f"{out}#{count[out]}")
    return names


def unroll(c: Cascade) -> Cascade:
    """Return ``c`` with its (single) repeat written out: every instance gets its own copy of
    the body's tensors (weights and intermediates, suffix ``_I<n>``), instance n+1 reads
    instance n's output where the body read the layer input, and the einsums after the body
    read the last instance's output. Tensor declarations are listed instance by instance in
    the repeated cascade's order, so the greedy mapper meets them in the same order."""
    (rep,) = c.repeats
    body = c.repeat_body(rep)
    names = [e.name for e in c.einsums]
    lo, hi = names.index(body[0]), names.index(body[-1])
    written = {c.einsum(n).output_tensor for n in body}
    read = {t for n in body for t in c.einsum(n).input_tensors}
    inputs = set(c.inputs())
    layer_in = sorted(read - written - inputs)
    assert len(layer_in) == 1, f"the body must read one tensor written before it: {layer_in}"
    layer_in = layer_in[0]
    layer_out = c.einsum(body[-1]).output_tensor
    own = written | (read & inputs)                  # per-instance tensors

    def renamed(text, ren):
        return _TENSOR.sub(lambda m: ren.get(m.group(1), m.group(1)) + "[", text)

    program = [(e.text, e.name, {}) for e in c.einsums[:lo]]
    for i in range(rep.count):
        ren = {t: f"{t}_I{i}" for t in own}
        if i:
            ren[layer_in] = f"{layer_out}_I{i - 1}"
        program += [(c.einsum(n).text, n, ren) for n in body]
    last = {layer_out: f"{layer_out}_I{rep.count - 1}"}
    program += [(e.text, e.name, last) for e in c.einsums[hi + 1:]]
    texts = [renamed(text, ren) for text, _, ren in program]
    tags = {new: dict(c.tags[old]) for new, (_, old, _) in zip(_default_names(texts), program)
            if old in c.tags}
    tensors = {}
    for i in range(rep.count):
        for name, t in c.tensors.items():
            if name in own:
                tensors[f"{name}_I{i}"] = Tensor(f"{name}_I{i}", t.ranks, t.bits, t.extents)
            elif i == 0:
                tensors[name] = t
    return Cascade.from_text(texts, dict(c.ranks), name=c.name + "-unrolled",
                             tensors=tensors, tags=tags)


def assert_same_run(rep_result, flat_result, count, body_size, extra_einsums):
    r, u = rep_result, flat_result
    assert r.cycles == pytest.approx(u.cycles, rel=0.005)
    assert set(r.units) == set(u.units)
    for name in r.units:
        a, b = r.units[name], u.units[name]
        assert a.tasks == b.tasks, name
        assert a.compute_cycles == b.compute_cycles, name
        assert a.busy_cycles == pytest.approx(b.busy_cycles, rel=0.005), name
        assert a.energy_pj == pytest.approx(b.energy_pj, rel=1e-9), name
    for name in r.memory:
        a, b = r.memory[name], u.memory[name]
        assert (a.read_bytes, a.write_bytes) == (b.read_bytes, b.write_bytes), name
        assert a.energy_pj == pytest.approx(b.energy_pj, rel=1e-9), name
    assert r.energy_pj == pytest.approx(u.energy_pj, rel=1e-9)
    # the repeated run has one record per einsum; body records stand for `count` instances
    assert len(r.timeline) == body_size + extra_einsums
    assert len(u.timeline) == count * body_size + extra_einsums
    assert sum(t.instances for t in r.timeline) == len(u.timeline)
    assert sum(u.tasks for u in r.units.values()) == len(u.timeline)


MODEL_CASES = [
    ("llama2-7b", phase_requests("decode", 4, 128), {"layers": 4}),
    ("llama2-7b", phase_requests("decode", 32, 512), {"layers": 4}),
    ("llama2-7b", phase_requests("prefill", 2, 256), {"layers": 3}),
    ("mixtral-8x7b", phase_requests("decode", 4, 128), {"layers": 4}),
    ("llama3-8b", [Request(1, 64), Request(1, 200), Request(32, 96)], {"layers": 3}),
    ("gpt3-7b", phase_requests("decode", 8, 256), {"layers": 3, "tp": 4}),
    ("glam", phase_requests("decode", 8, 64), {"layers": 6}),     # body of 2 layers, x3
    ("llama2-7b", phase_requests("decode", 2, 512), {"layers": 3, "attention": "1pass"}),
]


@pytest.mark.parametrize("name,reqs,kwargs", MODEL_CASES,
                         ids=[f"{n}-{len(r)}req-{'-'.join(f'{k}{v}' for k, v in kw.items())}"
                              for n, r, kw in MODEL_CASES])
def test_repeated_model_equals_unrolled(name, reqs, kwargs):
    c = model_cascade(name, reqs, **kwargs)
    (rep,) = c.repeats
    flat = unroll(c)
    assert flat.repeats == ()
    body = c.repeat_body(rep)
    assert len(flat.einsums) == len(c.einsums) + (rep.count - 1) * len(body)
    r = archsim.simulate("sa128", c)
    u = archsim.simulate("sa128", flat)
    assert_same_run(r, u, rep.count, len(body), len(c.einsums) - len(body))
    # every unrolled instance ran on the unit the repeated body's einsum ran on
    unit = {t.einsum: t.unit for t in r.timeline}
    for t in u.timeline:
        base = re.sub(r"_I\d+", "", t.einsum)
        assert unit[base] == t.unit, t.einsum


def test_carried_layer_input_and_output_share_a_level():
    """A layer's input (the embedding output X) and output (X3) are the repeat's carry: the
    greedy mapper keeps them in one level even when X alone would fit the scratchpad, so every
    instance costs what the simulated one does; the unrolled graph under the same placement
    moves the same bytes."""
    c = model_cascade("llama2-7b", phase_requests("decode", 128, 256), layers=3)
    assert c.repeats[0].carry == (("X3", "X"),)
    r = archsim.simulate("sa128", c)
    assert r.mapping.placement["X"] == r.mapping.placement["X3"] == "hbm"
    flat = unroll(c)
    base = {t: re.sub(r"_I\d+$", "", t) for t in flat.tensors}
    placement = {t: r.mapping.placement[base[t]] for t in flat.tensors}
    greedy = get_mapper("greedy")(flat, load_design("sa128"))
    mapping = Mapping(binding=greedy.binding, order=greedy.order, placement=placement,
                      mapper="greedy")
    u = archsim.simulate("sa128", flat, mapping)
    for level in ("hbm", "spm"):
        assert r.memory[level].read_bytes == pytest.approx(u.memory[level].read_bytes, rel=1e-3)
        assert r.memory[level].write_bytes == pytest.approx(u.memory[level].write_bytes,
                                                            rel=1e-3)
    assert r.cycles == pytest.approx(u.cycles, rel=5e-3)


def test_a_mapping_that_splits_a_carry_is_rejected():
    c = model_cascade("llama2-7b", phase_requests("decode", 4, 128), layers=2)
    m = get_mapper("greedy")(c, load_design("sa128"))
    placement = dict(m.placement)
    placement["X"], placement["X3"] = "spm", "hbm"
    bad = Mapping(binding=m.binding, order=m.order, placement=placement)
    with pytest.raises(MappingError, match="carries 'X3' into 'X'"):
        archsim.simulate("sa128", c, bad)


def test_repeated_model_timeline():
    c = model_cascade("llama2-7b", phase_requests("decode", 4, 128), layers=4)
    (rep,) = c.repeats
    body = set(c.repeat_body(rep))
    r = archsim.simulate("sa128", c)
    u = archsim.simulate("sa128", unroll(c))
    for t in r.timeline:
        assert t.instances == (4 if t.einsum in body else 1)
    # a body record shows the first instance
    start = {t.einsum: t.start_cycle for t in u.timeline}
    end = {t.einsum: t.end_cycle for t in u.timeline}
    for t in r.timeline:
        key = _first_instance_name(u, t.einsum) if t.einsum in body else t.einsum
        assert t.start_cycle == pytest.approx(start[key], abs=2)
    # the einsums after the body start after all four instances, as in the unrolled run
    for name in ("NF_SS", "NF", "LOGITS"):
        rec = next(t for t in r.timeline if t.einsum == name)
        assert rec.start_cycle == pytest.approx(start[name], abs=2)
        assert rec.end_cycle == pytest.approx(end[name], abs=2)
    first_body = min(t.start_cycle for t in r.timeline if t.einsum in body)
    last_body = max(t.end_cycle for t in r.timeline if t.einsum in body)
    nf = next(t for t in r.timeline if t.einsum == "NF_SS")
    assert nf.start_cycle >= first_body + 4 * (last_body - first_body) - 4
    # totals count every instance
    assert sum(x.tasks for x in r.units.values()) == 4 * len(body) + len(c.einsums) - len(body)


def _first_instance_name(flat_result, einsum):
    """Name of the instance-0 copy of a body einsum in the unrolled run: its output tensor
    gets the ``_I0`` suffix (``EY#2`` -> ``EY_I0#2``)."""
    out, _, n = einsum.partition("#")
    name = f"{out}_I0" + (f"#{n}" if n else "")
    assert any(t.einsum == name for t in flat_result.timeline), name
    return name


# ---------------------------------------------------------------------------- by hand
LAYER = ["H[t,d] = X[t,d] * W1[d,c]",
         "A[t,c] = relu(H[t,c])",
         "Y[t,d] = A[t,c] * W2[c,d]"]


def hand_written(layers: int, repeated: bool) -> Cascade:
    """A 3-einsum "layer" (GEMM, ReLU, GEMM) after an input copy and before an output copy,
    ``layers`` times: as one Repeat, or unrolled with per-layer weights."""
    ranks = {"t": 64, "d": 256, "c": 512}
    if repeated:
        lines = ["X[t,d] = IN[t,d]",
                 "H[t,c] = X[t,d] * W1[d,c]", "A[t,c] = relu(H[t,c])",
                 "Y[t,d] = A[t,c] * W2[c,d]",
                 "OUT[t,d] = Y[t,d] * Y[t,d]"]
        return Cascade.from_text(lines, ranks, name="hand",
                                 repeats=[Repeat("layers", "H", "Y", layers)])
    lines = ["X[t,d] = IN[t,d]"]
    prev = "X"
    for i in range(layers):
        lines += [f"H{i}[t,c] = {prev}[t,d] * W1_{i}[d,c]", f"A{i}[t,c] = relu(H{i}[t,c])",
                  f"Y{i}[t,d] = A{i}[t,c] * W2_{i}[c,d]"]
        prev = f"Y{i}"
    lines.append(f"OUT[t,d] = {prev}[t,d] * {prev}[t,d]")
    return Cascade.from_text(lines, ranks, name="hand-unrolled")


@pytest.mark.parametrize("layers", [1, 2, 5])
def test_hand_written_repeat_equals_unrolled(layers):
    rep, flat = hand_written(layers, True), hand_written(layers, False)
    r = archsim.simulate("sa128", rep)
    u = archsim.simulate("sa128", flat)
    assert_same_run(r, u, layers, 3, 2)
    # the generic unroller (used on the model graphs) agrees with the hand-written copies
    generic = unroll(rep)
    assert len(generic.einsums) == len(flat.einsums) == 3 * layers + 2
    assert archsim.simulate("sa128", generic).cycles == u.cycles


def test_hand_written_repeat_scales_linearly():
    one = archsim.simulate("sa128", hand_written(1, True))
    five = archsim.simulate("sa128", hand_written(5, True))
    body = [t for t in one.timeline if t.einsum in ("H", "A", "Y")]
    span = max(t.end_cycle for t in body) - min(t.start_cycle for t in body)
    assert span > 0
    assert five.cycles == pytest.approx(one.cycles + 4 * span, abs=2)
    assert five.memory["hbm"].read_bytes > one.memory["hbm"].read_bytes


# ---------------------------------------------------------------------------- speed
def test_llama2_7b_decode_simulates_one_layer():
    """One layer is simulated and scaled, so a 32-layer model is cheap (benchmarks measure
    the time; this guards against unrolling by accident: one task per einsum, the layer's
    with 32 instances)."""
    c = model_cascade("llama2-7b", phase_requests("decode", 32, 1024))
    r = archsim.simulate("sa128", c)
    assert c.repeats[0].count == 32
    assert len(r.timeline) == len(c.einsums)
    body = set(c.repeat_body(c.repeats[0]))
    assert body and all(t.instances == (32 if t.einsum in body else 1) for t in r.timeline)
    assert r.cycles > 0
    # decode is bound by reading the weights (~13.2 GB in fp16) and the KV cache from HBM
    hbm_bytes_per_cycle = 1.024e12 / 1e9              # designs/sa128.yaml
    weights = 2 * 6_607_077_376                       # matmul params of llama2-7b, fp16
    kv = 2 * 2 * 32 * 1024 * 32 * 4096                # K and V, batch 32, 1024 tokens, fp16
    assert r.memory["hbm"].read_bytes >= weights + kv
    assert r.cycles >= (weights + kv) / hbm_bytes_per_cycle
