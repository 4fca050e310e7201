"""Graphs for the mapping benchmarks and tests, built in-process.

* :func:`decoder_block` -- one transformer decoder layer (a model graph of a small config);
* :func:`resnet_like`, :func:`densenet_like`, :func:`inception_like` -- CNNs written as ONNX
  models with ``onnx.helper`` and imported with :func:`dataflow.onnx.import_onnx`
  (residual adds, dense concatenations, parallel branches: the long-lived tensors that make
  scratchpad mapping hard);
* :func:`random_dag` -- :func:`dataflow.random_cascade`;
* :func:`tiny_graphs` -- random graphs of at most 8 operators whose spill-free peak exceeds
  M_R by 15% or more (so that a budget of M_R forces spills), for proving the ILP optimal.
All are deterministic for their arguments.
"""
from __future__ import annotations

import numpy as np

import dataflow


def decoder_block(hidden: int = 256, seq: int = 64, heads: int = 4, ffn: int | None = None,
                  kv_heads: int | None = None, dtype: str = "int8", name: str | None = None):
    """One pre-norm decoder layer (SwiGLU FFN, rotary, 3-pass attention) over a ``seq``-token
    prompt, 8-bit by default as in COSMA's evaluation."""
    cfg = dataflow.ModelConfig(name or f"decoder-h{hidden}-s{seq}", hidden=hidden, layers=1,
                               heads=heads, kv_heads=kv_heads or heads,
                               ffn=ffn or 4 * hidden, vocab=1000,
                               source="synthetic decoder block (archsim mapping benchmarks)")
    return dataflow.model_graph(cfg, "prefill", 1, seq, dtype=dtype, scope="layers")


def _onnx():
    from onnx import TensorProto, helper, numpy_helper

    return TensorProto, helper, numpy_helper


class _Net:
    """A tiny ONNX graph builder (float32 activations and weights)."""

    def __init__(self, name: str, channels: int, hw: int, seed: int):
        TensorProto, helper, numpy_helper = _onnx()
        self.helper, self.np_helper, self.TP = helper, numpy_helper, TensorProto
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                     [1, channels, hw, hw])]
        self.count = 0

    def _id(self, kind: str) -> str:
        self.count += 1
        return f"{kind}{self.count}"

    def conv(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1) -> str:
        w = self._id("w")
        self.inits.append(self.np_helper.from_array(
            self.rng.normal(size=(cout, cin, k, k)).astype(np.float32), w))
        y = self._id("conv")
        pad = k // 2
        self.nodes.append(self.helper.make_node(
            "Conv", [x, w], [y], name=y, kernel_shape=[k, k], strides=[stride, stride],
            pads=[pad] * 4))
        return y

    def op(self, kind: str, inputs, **attrs) -> str:
        y = self._id(kind.lower())
        self.nodes.append(self.helper.make_node(kind, list(inputs), [y], name=y, **attrs))
        return y

    def model(self, out: str, shape):
        graph = self.helper.make_graph(
            self.nodes, self.name, self.inputs,
            [self.helper.make_tensor_value_info(out, self.TP.FLOAT, shape)], self.inits)
        return self.helper.make_model(graph,
                                      opset_imports=[self.helper.make_opsetid("", 17)])


def resnet_like(blocks: int = 4, channels: int = 16, hw: int = 16, seed: int = 0):
    """A stem conv, then ``blocks`` residual blocks (conv-relu-conv, skip add, relu)."""
    from dataflow.onnx import import_onnx

    n = _Net(f"resnet{blocks}", channels, hw, seed)
    x = n.op("Relu", [n.conv("x", channels, channels)])
    for _ in range(blocks):
        h = n.op("Relu", [n.conv(x, channels, channels)])
        h = n.conv(h, channels, channels)
        x = n.op("Relu", [n.op("Add", [h, x])])
    return import_onnx(n.model(x, [1, channels, hw, hw]), name=n.name)


def densenet_like(layers: int = 4, growth: int = 8, channels: int = 8, hw: int = 16,
                  seed: int = 0):
    """A dense block: each layer convolves the concatenation of all earlier features (1x1
    bottleneck then 3x3) and adds ``growth`` channels."""
    from dataflow.onnx import import_onnx

    n = _Net(f"densenet{layers}", channels, hw, seed)
    feats, width = ["x"], channels
    for _ in range(layers):
        cat = feats[0] if len(feats) == 1 else n.op("Concat", feats, axis=1)
        h = n.op("Relu", [n.conv(cat, width, 2 * growth, k=1)])
        h = n.op("Relu", [n.conv(h, 2 * growth, growth)])
        feats.append(h)
        width += growth
    out = n.op("Concat", feats, axis=1)
    return import_onnx(n.model(out, [1, width, hw, hw]), name=n.name)


def inception_like(modules: int = 2, channels: int = 16, hw: int = 16, seed: int = 0):
    """``modules`` inception modules: 1x1, 1x1-3x3, 1x1-3x3-3x3 and maxpool-1x1 branches,
    concatenated."""
    from dataflow.onnx import import_onnx

    n = _Net(f"inception{modules}", channels, hw, seed)
    x, width = "x", channels
    for _ in range(modules):
        q = width // 4 or 1
        b1 = n.op("Relu", [n.conv(x, width, q, k=1)])
        b2 = n.op("Relu", [n.conv(n.op("Relu", [n.conv(x, width, q, k=1)]), q, q)])
        b3 = n.conv(n.op("Relu", [n.conv(x, width, q, k=1)]), q, q)
        b3 = n.op("Relu", [n.conv(n.op("Relu", [b3]), q, q)])
        pool = n.op("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4)
        b4 = n.op("Relu", [n.conv(pool, width, q, k=1)])
        x = n.op("Concat", [b1, b2, b3, b4], axis=1)
        width = 4 * q
    return import_onnx(n.model(x, [1, width, hw, hw]), name=n.name)


def random_dag(n: int = 50, seed: int = 0, max_rank_size: int = 64):
    """A random cascade of ``n`` einsums (:func:`dataflow.random_cascade`)."""
    return dataflow.random_cascade(n, seed, max_rank_size=max_rank_size, min_rank_size=2)


def tiny_graphs(count: int = 50, design: str = "npu", max_operators: int = 8,
                start_seed: int = 0):
    """``count`` random graphs of 7-8 einsums whose spill-free program-order peak is at least
    1.15 x M_R on ``design`` (seeds in increasing order from ``start_seed``)."""
    from archsim.spec import load_design
    from mappers.problem import MappingProblem

    d = load_design(design)
    out, seed = [], start_seed
    while len(out) < count:
        for n in (max_operators - 1, max_operators):
            c = dataflow.random_cascade(n, seed, max_rank_size=24, min_rank_size=2)
            p = MappingProblem(c, d)
            if p.peak_bytes(range(p.n)) >= 1.15 * p.min_budget_bytes():
                out.append(c)
        seed += 1
    return out[:count]
