"""The op tables of the ONNX importer: the einsum text of the element-wise ops and
which op types are computed, laid out, or folded at import.
"""

from __future__ import annotations

import math


ELEMENTWISE = {
    "Add": "{0} + {1}", "Sub": "{0} - {1}", "Mul": "{0} * {1}", "Div": "{0} / {1}",
    "Max": "max({0}, {1})", "Min": "min({0}, {1})",
    "Relu": "relu({0})", "Sigmoid": "sigmoid({0})", "Tanh": "tanh({0})", "Gelu": "gelu({0})",
    "Exp": "exp({0})", "Sqrt": "sqrt({0})", "Neg": "-{0}", "Reciprocal": "1 / {0}",
}
ERF_A = 2.0 / math.sqrt(math.pi)
ERF_B = ERF_A * 0.044715 * 2.0
ELEMENTWISE["Erf"] = "tanh({0} * (" + repr(ERF_A) + " + " + repr(ERF_B) + " * {0} * {0}))"
POW = {0.5: "sqrt({0})", 1.0: "{0}", 2.0: "{0} * {0}", 3.0: "{0} * {0} * {0}",
        -1.0: "1 / {0}"}

COMPUTE_OPS = tuple(ELEMENTWISE) + (
    "Pow", "MatMul", "Gemm", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "Softmax", "LayerNormalization", "BatchNormalization", "ReduceSum",
    "ReduceMean", "ReduceMax", "ReduceMin")
LAYOUT_OPS = ("Identity", "Dropout", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
               "Concat")
#: Ops evaluated at import when all their inputs are known integer data (shape computations).
FOLD_OPS = ("Shape", "Gather", "Slice", "Cast", "Range", "Equal", "Where", "ConstantOfShape",
             "ReduceProd", "Concat", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Add", "Sub",
             "Mul", "Div")
#: Every op type the importer accepts (some only on shape data known at import).
SUPPORTED_OPS = tuple(sorted(set(COMPUTE_OPS + LAYOUT_OPS + FOLD_OPS + ("Constant",))))
