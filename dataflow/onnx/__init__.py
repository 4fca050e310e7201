"""Import an ONNX model as an einsum cascade: :func:`import_onnx`, :func:`import_onnx_detailed`.

The mapping of ONNX ops to einsums is described in :mod:`dataflow.onnx.importer`. Modules:

- ``importer``: the public API, loading and checking the model, fixing symbolic dimensions, the
  per-node driver (folding, dispatch to ``_op_<OpType>``, retries) and the final assembly;
- ``ops``: the op tables (``SUPPORTED_OPS``, element-wise einsum text, folded ops);
- ``algebra``: affine indices, views of cascade tensors, element bits, name sanitizing;
- ``builder``: the cascade under construction (names, ranks, declarations, einsum text);
- ``values``: ONNX values as views: known constants, inputs, copies, reshapes, padding;
- ``fold``: Constant nodes and integer shape computations evaluated at import;
- ``elementwise``: Add, Sub, Mul, Div, Max, Min, activations, Pow, Erf;
- ``matmul``: MatMul, Gemm, Conv;
- ``reduce``: MaxPool, AveragePool, global pools, ReduceSum/Mean/Max/Min;
- ``normalization``: Softmax, LayerNormalization, BatchNormalization;
- ``shape``: layout ops (Identity, Dropout, Transpose, Reshape, Flatten, Squeeze, Unsqueeze,
  Concat).

The op families are mixin classes of the importer; the ``onnx`` package is imported only when a
model is imported.
"""

from .importer import OnnxImport, import_onnx, import_onnx_detailed
from .ops import SUPPORTED_OPS

__all__ = ["SUPPORTED_OPS", "OnnxImport", "import_onnx", "import_onnx_detailed"]
