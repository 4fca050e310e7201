"""ONNX import: models built in-process with onnx.helper, imported, validated, evaluated with
NumPy and compared with NumPy references (or onnx's reference evaluator for the extra ops)."""

import math

import numpy as np
import pytest

from dataflow import Cascade, CascadeError, FormatError, import_onnx
from dataflow.onnx import SUPPORTED_OPS, import_onnx_detailed

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

F32 = TensorProto.FLOAT


# ----------------------------------------------------------------------------- helpers

def vinfo(name, shape, elem=F32):
    return helper.make_tensor_value_info(name, elem, shape)


def make_model(nodes, inputs, outputs, inits=None, opset=17, name="net"):
    initializers = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def node(op, inputs, outputs, name=None, **attrs):
    return helper.make_node(op, inputs, outputs, name=name or f"{op.lower()}_{outputs[0]}",
                            **attrs)


def const(name, value):
    return helper.make_node("Constant", [], [name], name=f"const_{name}",
                            value=numpy_helper.from_array(np.asarray(value)))


def run(result, feeds):
    """Evaluate an import with ONNX-named inputs; return name -> array in the ONNX shape
    (taken from the feeds or given later via ``shape``)."""
    cascade = result.cascade
    inputs = {result.names[k]: np.asarray(v).reshape(cascade.shape(result.names[k]))
              for k, v in feeds.items()}
    inputs.update(result.weights)
    values = cascade.evaluate(inputs)

    def get(onnx_name, shape):
        return values[result.names[onnx_name]].reshape(shape)
    return get


def weights(rng, **shapes):
    return {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}


def assert_gemm_like(cascade, name):
    """A MatMul/Gemm/Conv einsum is a product reduced with + (a MAC per point) that
    contraction() recognizes, also when it reads views (conv windows x_pad[2*y+r], split
    heads q[h*K+k], merged heads Wo[h*N+n, e])."""
    einsum = cascade.einsum(name)
    assert einsum.is_mac(), einsum.text
    assert cascade.contraction(name) is not None, einsum.text
    return cascade.contraction(name)


def conv_ref(x, w, b=None, stride=1, pad=0, dil=1, group=1):
    """NumPy 2-D convolution (NCHW, symmetric padding)."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, h, wd = xp.shape
    k, cg, kh, kw = w.shape
    oh = (h - (kh - 1) * dil - 1) // stride + 1
    ow = (wd - (kw - 1) * dil - 1) // stride + 1
    out = np.zeros((n, k, oh, ow))
    kg = k // group
    for g in range(group):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = w[g * kg:(g + 1) * kg]
        for r in range(kh):
            for s in range(kw):
                patch = xs[:, :, r * dil:r * dil + stride * (oh - 1) + 1:stride,
                           s * dil:s * dil + stride * (ow - 1) + 1:stride]
                out[:, g * kg:(g + 1) * kg] += np.einsum("nchw,kc->nkhw", patch, ws[:, :, r, s])
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def maxpool_ref(x, k, stride, pad):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    oh = (xp.shape[2] - k) // stride + 1
    ow = (xp.shape[3] - k) // stride + 1
    out = np.full(x.shape[:2] + (oh, ow), -np.inf)
    for r in range(k):
        for s in range(k):
            out = np.maximum(out, xp[:, :, r:r + stride * (oh - 1) + 1:stride,
                                     s:s + stride * (ow - 1) + 1:stride])
    return out


def layernorm_ref(x, g, b, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + b


def softmax_ref(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


# ----------------------------------------------------------------------------- MLP

def mlp_model(rng, batch="batch"):
    w = weights(rng, W1=(16, 32), b1=(32,), W2=(32, 8), b2=(8,))
    nodes = [node("MatMul", ["x", "W1"], ["h"], name="mm1"),
             node("Add", ["h", "b1"], ["hb"]),
             node("Relu", ["hb"], ["r"]),
             node("MatMul", ["r", "W2"], ["o"], name="mm2"),
             node("Add", ["o", "b2"], ["y"])]
    model = make_model(nodes, [vinfo("x", [batch, 16])], [vinfo("y", [batch, 8])], w)
    return model, w


def test_mlp_from_file_matches_numpy(tmp_path, rng):
    model, w = mlp_model(rng)
    path = tmp_path / "mlp.onnx"
    onnx.save(model, str(path))
    result = import_onnx_detailed(path, dims={"batch": 4})
    cascade = result.cascade
    assert isinstance(cascade, Cascade) and cascade.name == "mlp"
    assert [e.text for e in cascade.einsums] == [
        "h[m0,n0] = x[m0,k0] * W1[k0,n0]",
        "hb[m0,n0] = h[m0,n0] + b1[n0]",
        "r[m0,n0] = relu(hb[m0,n0])",
        "o[m0,n3] = r[m0,n0] * W2[n0,n3]",
        "y[m0,n3] = o[m0,n3] + b2[n3]",
    ]
    assert cascade.inputs() == ["x", "W1", "b1", "W2", "b2"]
    assert cascade.outputs() == ["y"]
    assert cascade.ranks == {"m0": 4, "n0": 32, "k0": 16, "n3": 8}
    assert all(t.bits == 32 for t in cascade.tensors.values())
    for name in ("h", "o"):
        assert_gemm_like(cascade, name)
    assert cascade.contraction("o").k == {"n0": 32}       # the contracted rank is shared
    assert cascade.ops("h") == {"mac": 4 * 16 * 32}
    x = rng.normal(size=(4, 16))
    get = run(result, {"x": x})
    ref = np.maximum(x @ w["W1"] + w["b1"], 0) @ w["W2"] + w["b2"]
    np.testing.assert_allclose(get("y", (4, 8)), ref, rtol=1e-5)
    # The plain form returns the same cascade; a ModelProto works as well as a path.
    assert import_onnx(str(path), dims={"batch": 4}) == cascade
    assert import_onnx(model, dims={"batch": 4}, name="mlp").einsums == cascade.einsums


def test_symbolic_batch_dims(rng):
    model, _ = mlp_model(rng)
    assert import_onnx(model, dims={"batch": 8}).shape("x") == (8, 16)
    assert import_onnx(model, default_batch=3).shape("y") == (3, 8)
    with pytest.raises(CascadeError, match=r"input 'x' dimension 0 is symbolic \('batch'\)"):
        import_onnx(model)
    with pytest.raises(CascadeError, match=r"'bacth' is not a symbolic dimension"):
        import_onnx(model, dims={"batch": 2, "bacth": 2})
    with pytest.raises(CascadeError, match=r"dims\['batch'\]: expected a positive integer"):
        import_onnx(model, dims={"batch": 0})
    # default_batch fills only a leading dimension
    w = {"W": np.ones((8, 4), np.float32)}
    seq = make_model([node("MatMul", ["x", "W"], ["y"])], [vinfo("x", [2, "seq", 8])],
                     [vinfo("y", [2, "seq", 4])], w)
    with pytest.raises(CascadeError, match=r"input 'x' dimension 1 is symbolic \('seq'\)"):
        import_onnx(seq, default_batch=2)
    assert import_onnx(seq, dims={"seq": 5}).shape("y") == (2, 5, 4)


# ----------------------------------------------------------------------------- Gemm

@pytest.mark.parametrize("trans_a", [0, 1])
def test_gemm_trans_alpha_beta_bias(rng, trans_a):
    w = weights(rng, B=(8, 16), C=(8,))
    a_shape = (16, 4) if trans_a else (4, 16)
    gemm = node("Gemm", ["a", "B", "C"], ["y"], name="fc", transA=trans_a, transB=1,
                alpha=0.5, beta=2.0)
    model = make_model([gemm], [vinfo("a", list(a_shape))], [vinfo("y", [4, 8])], w)
    result = import_onnx_detailed(model)
    cascade = result.cascade
    assert len(cascade.einsums) == 2                       # product, then alpha*P + beta*C
    assert_gemm_like(cascade, "y_mm")
    con = cascade.contraction("y_mm")
    assert (con.M, con.N, con.K) == (4, 8, 16)
    a = rng.normal(size=a_shape)
    a2 = a.T if trans_a else a
    ref = 0.5 * a2 @ w["B"].T + 2.0 * w["C"]
    np.testing.assert_allclose(run(result, {"a": a})("y", (4, 8)), ref, rtol=1e-5)


def test_gemm_plain_is_one_einsum(rng):
    w = weights(rng, B=(8, 16))
    model = make_model([node("Gemm", ["a", "B"], ["y"], transB=1)], [vinfo("a", [4, 16])],
                       [vinfo("y", [4, 8])], w)
    cascade = import_onnx(model)
    assert [e.text for e in cascade.einsums] == ["y[m0,n0] = a[m0,k0] * B[n0,k0]"]
    assert cascade.contraction("y") is not None


# ----------------------------------------------------------------------------- CNN

def cnn_model(rng):
    w = weights(rng, W=(8, 3, 3, 3), B=(8,), g=(8,), beta=(8,), mu=(8,), Wfc=(10, 8),
                bfc=(10,))
    w["var"] = rng.uniform(0.5, 2.0, size=8).astype(np.float32)
    nodes = [node("Conv", ["x", "W", "B"], ["c"], name="conv1", strides=[2, 2],
                  pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             node("BatchNormalization", ["c", "g", "beta", "mu", "var"], ["bn"], epsilon=1e-3),
             node("Relu", ["bn"], ["r"]),
             node("MaxPool", ["r"], ["p"], kernel_shape=[3, 3], strides=[2, 2],
                  pads=[1, 1, 1, 1]),
             node("GlobalAveragePool", ["p"], ["gap"]),
             node("Flatten", ["gap"], ["flat"]),
             node("Gemm", ["flat", "Wfc", "bfc"], ["logits"], name="fc", transB=1)]
    model = make_model(nodes, [vinfo("x", [2, 3, 8, 8])], [vinfo("logits", [2, 10])], w)
    return model, w


def test_cnn_matches_numpy(rng):
    model, w = cnn_model(rng)
    result = import_onnx_detailed(model)
    cascade = result.cascade
    x = rng.normal(size=(2, 3, 8, 8))
    c = conv_ref(x, w["W"], w["B"], stride=2, pad=1)
    scale = w["g"] / np.sqrt(w["var"] + 1e-3)
    bn = c * scale.reshape(1, -1, 1, 1) + (w["beta"] - w["mu"] * scale).reshape(1, -1, 1, 1)
    p = maxpool_ref(np.maximum(bn, 0), 3, 2, 1)
    ref = p.mean(axis=(2, 3)) @ w["Wfc"].T + w["bfc"]
    get = run(result, {"x": x})
    np.testing.assert_allclose(get("c", (2, 8, 4, 4)), c, rtol=1e-5)
    np.testing.assert_allclose(get("p", (2, 8, 2, 2)), p, rtol=1e-5)
    np.testing.assert_allclose(get("logits", (2, 10)), ref, rtol=1e-5)
    # Padding is an explicit copy: the interior plus the top and left strips (0 for the conv,
    # -inf for the pool); the bottom/right padding is never read by a window, so it is omitted.
    pads = [e.text for e in cascade.einsums if e.output_tensor.endswith("_pad")]
    assert pads == ["x_pad[n0,c0,h0+1,w0+1] = x[n0,c0,h0,w0]", "x_pad[n0,c0,0,v0] = 0",
                    "x_pad[n0,c0,h0+1,0] = 0", "r_pad[n0,k0,y0+1,x0+1] = r[n0,k0,y0,x0]",
                    "r_pad[n0,k0,0,v3] = -inf", "r_pad[n0,k0,y0+1,0] = -inf"]
    assert sum(cascade.total_ops(e.name) for e in cascade.einsums if "_pad" in e.name) == 0
    assert cascade.einsum("c_conv").text == (
        "c_conv[n0,k0,y0,x0] = x_pad[n0,c0,2*y0+r0,2*x0+s0] * W[k0,c0,r0,s0]")
    conv = assert_gemm_like(cascade, "c_conv")            # an im2col-style GEMM
    assert (conv.M, conv.N, conv.K) == (2 * 4 * 4, 8, 3 * 3 * 3)
    # Flatten is a view: the Gemm reads the pooled tensor [n,c] directly (size-1 dims dropped)
    assert_gemm_like(cascade, "logits_mm")
    assert "flat" not in cascade.tensors
    assert cascade.outputs() == ["logits"]


def test_depthwise_grouped_and_1d_conv(rng):
    from onnx.reference import ReferenceEvaluator
    w = weights(rng, Wd=(6, 1, 3, 3), Wg=(4, 3, 1, 1), W1=(5, 2, 3))
    nodes = [node("Conv", ["x", "Wd"], ["d"], group=6, pads=[1, 1, 1, 1]),
             node("Conv", ["d", "Wg"], ["g"], group=2),
             node("Conv", ["s", "W1"], ["t"], strides=[2], dilations=[2], pads=[2, 1])]
    model = make_model(nodes, [vinfo("x", [1, 6, 5, 5]), vinfo("s", [2, 2, 11])],
                       [vinfo("g", [1, 4, 5, 5]), vinfo("t", [2, 5, 5])], w)
    result = import_onnx_detailed(model)
    cascade = result.cascade
    assert cascade.einsum("d").text.endswith("Wd[g0,r0,s0]")      # depthwise: W[g,r,s]
    assert "g1*" in cascade.einsum("g").text                      # groups: split indices
    for name in ("d", "g", "t"):
        assert_gemm_like(cascade, name)
    depthwise = cascade.contraction("d")                   # batch over channels, K = window
    assert (depthwise.B, depthwise.M, depthwise.N, depthwise.K) == (6, 25, 1, 9)
    feeds = {"x": rng.normal(size=(1, 6, 5, 5)), "s": rng.normal(size=(2, 2, 11))}
    ref = ReferenceEvaluator(model).run(None, {k: v.astype(np.float32) for k, v in feeds.items()})
    get = run(result, feeds)
    np.testing.assert_allclose(get("g", (1, 4, 5, 5)), ref[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(get("t", (2, 5, 5)), ref[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        get("d", (1, 6, 5, 5)), conv_ref(feeds["x"], w["Wd"], pad=1, group=6), rtol=1e-5)


# ----------------------------------------------------------------------------- Concat

def test_densenet_concat(rng):
    w = weights(rng, W1=(3, 4, 3, 3), W2=(3, 7, 3, 3))
    nodes = [node("Relu", ["x"], ["r0"]),
             node("Conv", ["r0", "W1"], ["c1"], pads=[1, 1, 1, 1]),
             node("Concat", ["x", "c1"], ["cat1"], axis=1),
             node("Relu", ["cat1"], ["r1"]),
             node("Conv", ["r1", "W2"], ["c2"], pads=[1, 1, 1, 1]),
             node("Concat", ["cat1", "c2"], ["y"], axis=1)]
    model = make_model(nodes, [vinfo("x", [1, 4, 5, 5])], [vinfo("y", [1, 10, 5, 5])], w)
    result = import_onnx_detailed(model)
    cascade = result.cascade
    assert cascade.producers("cat1") == ["cat1", "cat1#2"]
    assert cascade.producers("y") == ["y", "y#2"]
    assert "+4," in cascade.einsum("cat1#2").text               # written at channel offset 4
    assert "+7," in cascade.einsum("y#2").text
    assert all(cascade.total_ops(n) == 0 for n in ("cat1", "cat1#2", "y", "y#2"))
    x = rng.normal(size=(1, 4, 5, 5))
    c1 = conv_ref(np.maximum(x, 0), w["W1"], pad=1)
    cat1 = np.concatenate([x, c1], axis=1)
    ref = np.concatenate([cat1, conv_ref(np.maximum(cat1, 0), w["W2"], pad=1)], axis=1)
    np.testing.assert_allclose(run(result, {"x": x})("y", (1, 10, 5, 5)), ref, rtol=1e-5)


# ----------------------------------------------------------------------------- transformer

def transformer_model(rng, b=2, s=6, d=16, heads=2, ff=32):
    dh = d // heads
    w = weights(rng, g1=(d,), be1=(d,), Wq=(d, d), Wk=(d, d), Wv=(d, d), Wo=(d, d),
                g2=(d,), be2=(d,), W1=(d, ff), W2=(ff, d))
    w["split"] = np.array([0, 0, heads, dh], dtype=np.int64)       # 0: copy the input dim
    w["merge"] = np.array([b, s, d], dtype=np.int64)
    nodes = [
        node("LayerNormalization", ["x", "g1", "be1"], ["ln1"], axis=-1, epsilon=1e-5),
        node("MatMul", ["ln1", "Wq"], ["q"]),
        node("MatMul", ["ln1", "Wk"], ["k"]),
        node("MatMul", ["ln1", "Wv"], ["v"]),
        # q's target shape is computed from Shape(x): a shape subgraph folded at import
        node("Shape", ["x"], ["xs"]),
        const("zero", np.array([0], np.int64)), const("two", np.array([2], np.int64)),
        node("Slice", ["xs", "zero", "two"], ["bs"]),
        const("hd", np.array([heads, dh], np.int64)),
        node("Concat", ["bs", "hd"], ["qshape"], axis=0),
        node("Reshape", ["q", "qshape"], ["q4"]),
        node("Reshape", ["k", "split"], ["k4"]),
        node("Reshape", ["v", "split"], ["v4"]),
        node("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]),
        node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
        node("Transpose", ["v4"], ["vt"], perm=[0, 2, 1, 3]),
        node("MatMul", ["qt", "kt"], ["scores"]),
        const("scale", np.array(math.sqrt(dh), np.float32)),
        node("Div", ["scores", "scale"], ["scaled"]),
        node("Softmax", ["scaled"], ["probs"], axis=-1),
        node("MatMul", ["probs", "vt"], ["att"]),
        node("Transpose", ["att"], ["att_t"], perm=[0, 2, 1, 3]),
        node("Reshape", ["att_t", "merge"], ["att_m"]),
        node("MatMul", ["att_m", "Wo"], ["proj"]),
        node("Add", ["x", "proj"], ["res1"]),
        node("LayerNormalization", ["res1", "g2", "be2"], ["ln2"], axis=-1, epsilon=1e-5),
        node("MatMul", ["ln2", "W1"], ["f1"]),
        node("Gelu", ["f1"], ["f1g"], approximate="tanh"),
        node("MatMul", ["f1g", "W2"], ["f2"]),
        node("Add", ["res1", "f2"], ["y"]),
    ]
    model = make_model(nodes, [vinfo("x", [b, s, d])], [vinfo("y", [b, s, d])], w, opset=20)
    return model, w


def transformer_ref(x, w, heads=2):
    b, s, d = x.shape
    dh = d // heads
    ln1 = layernorm_ref(x, w["g1"], w["be1"])
    q, k, v = (ln1 @ w[n] for n in ("Wq", "Wk", "Wv"))

    def split(t):
        return t.reshape(b, s, heads, dh).transpose(0, 2, 1, 3)
    probs = softmax_ref(split(q) @ split(k).transpose(0, 1, 3, 2) / math.sqrt(dh))
    att = (probs @ split(v)).transpose(0, 2, 1, 3).reshape(b, s, d)
    res1 = x + att @ w["Wo"]
    ln2 = layernorm_ref(res1, w["g2"], w["be2"])
    return res1 + gelu_tanh(ln2 @ w["W1"]) @ w["W2"], probs, ln1


def test_transformer_block_matches_numpy(rng):
    model, w = transformer_model(rng)
    result = import_onnx_detailed(model)
    cascade = result.cascade
    x = rng.normal(size=(2, 6, 16))
    ref, probs, ln1 = transformer_ref(x, w)
    get = run(result, {"x": x})
    np.testing.assert_allclose(get("ln1", (2, 6, 16)), ln1, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(get("probs", (2, 2, 6, 6)), probs, rtol=1e-5)
    np.testing.assert_allclose(get("y", (2, 6, 16)), ref, rtol=1e-5)
    # Layout ops are views: no tensor and no copy for Reshape/Transpose; no einsum for the
    # shape subgraph; the scale constant is folded into the expression.
    for view in ("q4", "k4", "v4", "qt", "kt", "vt", "att_t", "att_m", "qshape", "xs"):
        assert view not in cascade.tensors
    assert "scale" not in cascade.tensors and "/ 2.828427" in cascade.einsum("scaled").text
    assert not [e.text for e in cascade.einsums
                if isinstance(e.expr, type(e.output)) and not e.reduced_ranks()]
    # Heads are split with affine reads; the merge is iterated as (head, dim) by the consumer.
    scores = cascade.einsum("scores").text
    assert "q[" in scores and "k[" in scores and "*" in scores.split("q[")[1].split("]")[0]
    proj = cascade.einsum("proj")
    w_index = next(a for a in proj.inputs if a.tensor == "Wo").indices[0]
    assert len(w_index.terms) == 2                          # Wo[h*D+d, e]
    # Softmax: 4 einsums; LayerNormalization: sum, mean, centre, variance, rstd, normalize.
    assert cascade.producers("probs") == ["probs"]
    assert [e.name for e in cascade.einsums if e.name.startswith("probs")] == [
        "probs_max", "probs_exp", "probs_sum", "probs"]
    assert [e.name for e in cascade.einsums if e.name.startswith("ln1")] == [
        "ln1_sum", "ln1_mean", "ln1_xc", "ln1_var", "ln1_rstd", "ln1"]
    for name in ("q", "k", "v", "proj", "f1", "f2", "scores", "att"):
        assert_gemm_like(cascade, name)
    assert cascade.ops("f1g") == {"mul": 7 * 2 * 6 * 32, "add": 4 * 2 * 6 * 32,
                                  "exp": 2 * 6 * 32, "div": 2 * 6 * 32}


def test_softmax_and_layernorm_inner_axes(rng):
    w = weights(rng, g=(4, 5), b=(5,))
    nodes = [node("Softmax", ["x"], ["s"], axis=1),
             node("LayerNormalization", ["x", "g", "b"], ["ln", "mean", "rstd"], axis=1)]
    model = make_model(nodes, [vinfo("x", [3, 4, 5])],
                       [vinfo("s", [3, 4, 5]), vinfo("ln", [3, 4, 5]),
                        vinfo("mean", [3, 1, 1]), vinfo("rstd", [3, 1, 1])], w)
    result = import_onnx_detailed(model)
    x = rng.normal(size=(3, 4, 5))
    get = run(result, {"x": x})
    np.testing.assert_allclose(get("s", (3, 4, 5)), softmax_ref(x, axis=1), rtol=1e-5)
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(get("ln", (3, 4, 5)), (x - mean) / np.sqrt(var + 1e-5) * w["g"]
                               + w["b"], rtol=1e-5)
    np.testing.assert_allclose(get("mean", (3, 1, 1)), mean, rtol=1e-5)
    np.testing.assert_allclose(get("rstd", (3, 1, 1)), 1 / np.sqrt(var + 1e-5), rtol=1e-5)
    # opset 11 Softmax coerces the input to 2-D at axis: it normalizes over all dims from axis
    # on (onnx's reference evaluator does not model this, so NumPy is the reference here).
    old = make_model([node("Softmax", ["x"], ["s"], axis=1)], [vinfo("x", [3, 4, 5])],
                     [vinfo("s", [3, 4, 5])], opset=11)
    got = run(import_onnx_detailed(old), {"x": x})("s", (3, 4, 5))
    np.testing.assert_allclose(got, softmax_ref(x.reshape(3, 20)).reshape(3, 4, 5), rtol=1e-5)


# ----------------------------------------------------------------------------- layout ops

def test_reshape_views_and_copies(rng):
    nodes = [node("Reshape", ["a", "s12"], ["a12"]),         # [2,6] -> [12]: a merge
             node("Reshape", ["b", "s12"], ["b12"]),         # [3,4] -> [12]: conflicts
             node("Add", ["a12", "b12"], ["ab"]),
             node("Reshape", ["c", "s46"], ["c46"]),         # [6,4] -> [4,6]: needs a copy
             node("Relu", ["c46"], ["y2"]),
             node("Transpose", ["ab_r"], ["y3"], perm=[1, 0]),   # graph output is a view
             node("Reshape", ["ab", "s34"], ["ab_r"])]
    nodes = nodes[:-2] + nodes[-1:] + nodes[-2:-1]
    inits = {"s12": np.array([12], np.int64), "s46": np.array([4, 6], np.int64),
             "s34": np.array([3, 4], np.int64)}
    model = make_model(nodes, [vinfo("a", [2, 6]), vinfo("b", [3, 4]), vinfo("c", [6, 4])],
                       [vinfo("ab", [12]), vinfo("y2", [4, 6]), vinfo("y3", [4, 3])], inits)
    result = import_onnx_detailed(model)
    cascade = result.cascade
    feeds = {"a": rng.normal(size=(2, 6)), "b": rng.normal(size=(3, 4)),
             "c": rng.normal(size=(6, 4))}
    get = run(result, feeds)
    ab = feeds["a"].reshape(12) + feeds["b"].reshape(12)
    np.testing.assert_allclose(get("ab", (12,)), ab)
    np.testing.assert_allclose(get("y2", (4, 6)), np.maximum(feeds["c"].reshape(4, 6), 0))
    np.testing.assert_allclose(get("y3", (4, 3)), ab.reshape(3, 4).T)
    copies = [e.text for e in cascade.einsums if cascade.total_ops(e.name) == 0]
    # one of the conflicting merged inputs, the [6,4]->[4,6] regrouping, the transposed output
    assert len(copies) == 3, copies
    assert result.names["y3"] == "y3" and cascade.outputs()[-1] == "y3"


def test_squeeze_unsqueeze_identity_and_output_rename(rng):
    w = weights(rng, W=(3, 4))
    nodes = [node("Unsqueeze", ["x", "ax"], ["xu"]),             # [5,3] -> [1,5,3]
             node("MatMul", ["xu", "W"], ["m"]),                 # [1,5,4]
             node("Identity", ["m"], ["mi"]),
             node("Squeeze", ["mi", "ax"], ["y"])]               # graph output: a view of m
    model = make_model(nodes, [vinfo("x", [5, 3])], [vinfo("y", [5, 4])],
                       {**w, "ax": np.array([0], np.int64)}, opset=13)
    result = import_onnx_detailed(model)
    cascade = result.cascade
    assert [e.text for e in cascade.einsums] == ["y[m1,n1] = x[m1,k1] * W[k1,n1]"]
    x = rng.normal(size=(5, 3))
    np.testing.assert_allclose(run(result, {"x": x})("y", (5, 4)), x @ w["W"], rtol=1e-6)


# ----------------------------------------------------------------------------- other ops

@pytest.mark.parametrize("op,extra,attrs", [
    ("Sub", "y", {}), ("Mul", "y", {}), ("Div", "ypos", {}), ("Max", "y", {}),
    ("Min", "y", {}), ("Sigmoid", None, {}), ("Tanh", None, {}), ("Exp", None, {}),
    ("Neg", None, {}), ("Reciprocal", "ypos", {}), ("Sqrt", "ypos", {}),
])
def test_elementwise_ops_broadcast(rng, op, extra, attrs):
    from onnx.reference import ReferenceEvaluator
    if op in ("Reciprocal", "Sqrt"):
        inputs, names = [vinfo("ypos", [4, 1])], ["ypos"]
    else:
        inputs = [vinfo("x", [2, 3, 4, 5])] + ([vinfo(extra, [4, 1])] if extra else [])
        names = ["x"] + ([extra] if extra else [])
    out_shape = [4, 1] if op in ("Reciprocal", "Sqrt") else [2, 3, 4, 5]
    model = make_model([node(op, names, ["out"], **attrs)], inputs, [vinfo("out", out_shape)])
    feeds = {"x": rng.normal(size=(2, 3, 4, 5)), "y": rng.normal(size=(4, 1)),
             "ypos": rng.uniform(0.5, 2, size=(4, 1))}
    feeds = {k: v for k, v in feeds.items() if k in names}
    want = ReferenceEvaluator(model).run(None, {k: v.astype(np.float32)
                                                for k, v in feeds.items()})[0]
    got = run(import_onnx_detailed(model), feeds)("out", tuple(out_shape))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_pools_reductions_pow_erf_dropout(rng):
    from onnx.reference import ReferenceEvaluator
    nodes = [node("AveragePool", ["x"], ["ap"], kernel_shape=[2, 2], strides=[1, 1],
                  pads=[1, 1, 0, 0], count_include_pad=1),
             node("AveragePool", ["x"], ["ap0"], kernel_shape=[3, 3], strides=[2, 2],
                  pads=[1, 1, 1, 1]),                   # count_include_pad=0: border divisor
             node("MaxPool", ["x"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
             node("GlobalMaxPool", ["x"], ["gmp"]),
             node("ReduceMean", ["x", "axes"], ["rm"], keepdims=0),
             node("ReduceSum", ["x", "axes"], ["rs"], keepdims=1),
             node("Pow", ["x", "two"], ["sq"]),
             node("Erf", ["x"], ["erf"]),
             node("Dropout", ["x"], ["dr"])]
    outs = [vinfo("ap", [1, 2, 5, 5]), vinfo("ap0", [1, 2, 3, 3]), vinfo("mp", [1, 2, 3, 3]),
            vinfo("gmp", [1, 2, 1, 1]),
            vinfo("rm", [1, 5]), vinfo("rs", [1, 1, 1, 5]), vinfo("sq", [1, 2, 5, 5]),
            vinfo("erf", [1, 2, 5, 5]), vinfo("dr", [1, 2, 5, 5])]
    inits = {"axes": np.array([1, 2], np.int64), "two": np.array(2.0, np.float32)}
    model = make_model(nodes, [vinfo("x", [1, 2, 5, 5])], outs, inits, opset=18)
    result = import_onnx_detailed(model)
    x = rng.normal(size=(1, 2, 5, 5))
    want = ReferenceEvaluator(model).run(None, {"x": x.astype(np.float32)})
    get = run(result, {"x": x})
    for info, ref in zip(outs, want):
        shape = tuple(d.dim_value for d in info.type.tensor_type.shape.dim)
        tol = 1e-3 if info.name == "erf" else 1e-5          # erf: tanh approximation
        np.testing.assert_allclose(get(info.name, shape), ref, rtol=tol, atol=tol,
                                   err_msg=info.name)
    cascade = result.cascade
    assert cascade.einsum("sq").text == "sq[c0,h0,w0] = x[c0,h0,w0] * x[c0,h0,w0]"
    assert "two" not in cascade.tensors                     # a one-element constant is folded
    # the varying divisor of ap0 is a constant input computed at import
    assert cascade.einsum("ap0").text.endswith("* ap0_inv_count[y1,x1]")
    np.testing.assert_allclose(result.weights["ap0_inv_count"],
                               1 / np.outer([2, 3, 2], [2, 3, 2]))


# ----------------------------------------------------------------------------- names, bits

def test_names_are_sanitized_and_bits_follow_elem_types(rng):
    w = {"0.weight": rng.normal(size=(4, 4)).astype(np.float16)}
    nodes = [node("MatMul", ["in/put:0", "0.weight"], ["/layer.0/MatMul_output_0"]),
             node("Relu", ["/layer.0/MatMul_output_0"], ["max"]),
             node("Relu", ["max"], ["layer_0_MatMul_output_0"])]
    model = make_model(nodes, [vinfo("in/put:0", [2, 4], TensorProto.FLOAT16)],
                       [vinfo("layer_0_MatMul_output_0", [2, 4], TensorProto.FLOAT16)], w)
    result = import_onnx_detailed(model)
    cascade = result.cascade
    assert result.names == {"in/put:0": "in_put_0", "0.weight": "t_0_weight",
                            "/layer.0/MatMul_output_0": "layer_0_MatMul_output_0_2",
                            "max": "max_", "layer_0_MatMul_output_0": "layer_0_MatMul_output_0"}
    assert all(t.bits == 16 for t in cascade.tensors.values())
    ints = make_model([node("Add", ["a", "b"], ["c"])], [vinfo("a", [3], TensorProto.INT8),
                      vinfo("b", [3], TensorProto.INT8)], [vinfo("c", [3], TensorProto.INT8)])
    assert {t.bits for t in import_onnx(ints).tensors.values()} == {8}


# ----------------------------------------------------------------------------- errors

def test_unsupported_op_names_node_and_op(tmp_path):
    lstm = node("LSTM", ["x", "W", "R"], ["y"], name="lstm0", hidden_size=4)
    model = make_model([lstm], [vinfo("x", [3, 1, 2]), vinfo("W", [1, 16, 2]),
                                vinfo("R", [1, 16, 4])], [vinfo("y", [3, 1, 1, 4])])
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    with pytest.raises(CascadeError) as info:
        import_onnx(path)
    message = str(info.value)
    assert message.startswith(f"{path}: node 'lstm0' (LSTM): unsupported ONNX op; supported:")
    assert "MatMul" in message and "Conv" in message
    assert "LSTM" not in SUPPORTED_OPS


def test_node_level_errors_name_the_node(rng):
    gather = make_model([node("Gather", ["x", "idx"], ["y"], name="emb")],
                        [vinfo("x", [5, 3])], [vinfo("y", [2, 3])],
                        {"idx": np.array([0, 1], np.int64)})
    with pytest.raises(CascadeError, match=r"node 'emb' \(Gather\): Gather is supported only "
                                           r"on integer shape data"):
        import_onnx(gather)
    power = make_model([node("Pow", ["x", "e"], ["y"], name="pw")],
                       [vinfo("x", [3]), vinfo("e", [1])], [vinfo("y", [3])])
    with pytest.raises(CascadeError, match=r"node 'pw' \(Pow\): Pow needs a constant exponent"):
        import_onnx(power)


def test_corrupt_or_missing_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07\x12\x05hello\x3a\xff\xff\xff this is not a model")
    with pytest.raises(FormatError, match=str(bad)):
        import_onnx(bad)
    with pytest.raises(CascadeError, match=str(tmp_path / "missing.onnx")):
        import_onnx(tmp_path / "missing.onnx")
    with pytest.raises(CascadeError, match="expected a path or an onnx.ModelProto"):
        import_onnx(42)


def test_missing_onnx_package_is_a_clear_error(monkeypatch, rng):
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("no onnx")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(CascadeError, match="ONNX import needs the onnx package: pip install "
                                           "onnx"):
        import_onnx("model.onnx")
