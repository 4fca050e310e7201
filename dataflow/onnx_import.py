"""Import an ONNX model as an einsum cascade: :func:`import_onnx`.

``import_onnx(source, *, name=None, dims=None, default_batch=None)`` reads ``source`` (a path to
an ``.onnx`` file or an ``onnx.ModelProto``; the ``onnx`` package is imported only here), fixes
the symbolic input dimensions (``dims`` maps ``dim_param`` names to sizes; ``default_batch``
fills a symbolic *leading* dimension that ``dims`` does not name), runs ONNX shape inference
and returns a validated :class:`~dataflow.cascade.Cascade`. :func:`import_onnx_detailed`
returns an :class:`OnnxImport` that also carries the ONNX name -> cascade tensor mapping and the
values of the weights (initializers and constants the cascade reads), e.g. for ``evaluate``.

Tensors and ranks
-----------------
* Graph inputs and initializers become cascade inputs, graph outputs cascade outputs. Every ONNX
  value that becomes a tensor keeps its (sanitized) ONNX name: characters other than
  ``[A-Za-z0-9_]`` become ``_``, runs of ``_`` collapse, leading/trailing ``_`` are dropped, a
  leading digit gets a ``t_`` prefix, names of functions (``exp``, ``max``, ``sum``...) get a
  trailing ``_``, and clashes get ``_2``, ``_3``... (graph inputs and outputs are named first,
  then initializers, then node outputs in graph order). Helper tensors of multi-einsum ops are
  named ``<output>_<role>`` (``Y_max``, ``Y_pad``).
* **Dimensions of size 1 are dropped** from cascade tensors (they add no iterations and no
  bytes): the ONNX tensor ``[1, 64, 56, 56]`` is the cascade tensor ``[64, 56, 56]``; a
  reshape converts (``values.reshape(onnx_shape)``). Broadcasting then needs no special case.
* Element bits follow the ONNX element type: float32/int32/uint32 32, float16/bfloat16/int16
  16, float8 variants/int8/uint8/bool 8, float64/int64 64, int4/uint4/float4 4.
* Ranks are named ``<letter><node index>`` (``m0``, ``k3``, ``y5``; ``_1``, ``_2`` suffixes
  when a node needs the same letter twice). An einsum reuses the rank of an input dimension it
  iterates in full (a MatMul's contracted rank is its A operand's, an element-wise op iterates
  its input's ranks), so related dimensions share a rank and only new sizes get new ranks.
  Graph inputs and initializers take the ranks of the einsum that first reads them.
* One-element constants (Constant nodes or initializers) used as element-wise operands are
  folded into the expression as numbers; other Constant values become inputs like
  initializers. Constant nodes and integer shape computations (``Shape``, ``Gather``,
  ``Slice``, ``Concat``, ``Unsqueeze``... on known integer data, e.g. feeding a Reshape's shape
  input) are evaluated at import and produce no einsums.

Ops and their einsums (``X`` input, ``Y`` output; ``sum``/``max`` reduce the absent ranks)
--------------------------------------------------------------------------------------------
* ``MatMul`` (NumPy semantics: 1-D operands, broadcast leading batch dims):
  ``Y[b,m,n] = A[b,m,k] * B[b,k,n]``.
* ``Gemm`` (``transA``, ``transB``, ``alpha``, ``beta``, optional ``C``): ``Y[m,n] = A[m,k] *
  B[k,n]``; with ``C`` or ``alpha != 1`` the product is ``Y_mm`` and a second einsum gives
  ``Y = alpha*Y_mm + beta*C`` (C broadcast).
* ``Conv`` (1-D, 2-D, 3-D; ``strides``, ``pads``, ``auto_pad``, ``dilations``, ``group``):
  ``Y[n,k,y,x] = X[n,c,y*S+r*D,x*S+s*D] * W[k,c,r,s]``; bias ``B`` as a second einsum
  ``Y = Y_conv + B[k]``. Groups use split indices: ``Y[n,g*K0+k0,..] = X[n,g*C0+c0,..] *
  W[g*K0+k0,c0,..]``; depthwise convolution is the case ``C0 = K0 = 1`` (``W[g,r,s]``).
* Padding (Conv, MaxPool, AveragePool): an input's shape is fixed, so a window may not read
  outside it. A padded input is therefore an explicit copy ``X_pad`` of the padded size, written
  by one interior copy ``X_pad[n,c,y+P,x+Q] = X[n,c,y,x]`` plus one constant einsum per padded
  border strip (``0``; ``-inf`` for MaxPool), and the window reads ``X_pad``. This is honest
  about what padding costs when it is materialized (bytes of the copy, no operations); an
  accelerator that pads in its address generator would save that copy. End padding that no
  window reads is not materialized; ``ceil_mode`` windows of MaxPool read extra ``-inf`` padding.
* ``MaxPool``: ``Y = max(X_pad[n,c,y*S+r*D,x*S+s*D])``. ``AveragePool``: ``Y_sum = sum(...)``
  then ``Y = Y_sum * (1/window)``; when the divisor varies at the border (padding with
  ``count_include_pad=0``, ceil-mode windows) it is a constant input computed at import,
  ``Y = Y_sum[n,c,y,x] * Y_inv_count[y,x]``. ``GlobalAveragePool``: ``Y_sum[n,c] =
  sum(X[n,c,h,w])``, ``Y = Y_sum * (1/(H*W))``; ``GlobalMaxPool``: ``Y = max(X)``.
* Element-wise, NumPy broadcasting: ``Add Sub Mul Div`` (``+ - * /``), ``Max Min`` (two
  inputs), ``Relu Sigmoid Tanh Exp Sqrt Neg Reciprocal``, ``Gelu`` (``gelu``: the tanh
  approximation, also for ``approximate="none"``), ``Pow`` with a constant exponent 0.5, 1, 2,
  3 or -1, and ``Erf`` approximated through the same tanh formula as GELU, ``erf(x) ~
  tanh(x*(A + B*x*x))`` with ``A = 2/sqrt(pi)``, ``B = 0.08943*A`` (absolute error below
  4e-4; cost like ``tanh`` plus 3 mul and 1 add).
* ``Softmax`` (``axis``; before opset 13 all dims from ``axis`` on): ``Y_max = max(X)``,
  ``Y_exp = exp(X - Y_max)``, ``Y_sum = sum(Y_exp)``, ``Y = Y_exp / Y_sum``.
* ``LayerNormalization`` (``axis``, ``epsilon``; normalizes the dims from ``axis`` on, N
  elements): ``Y_sum = sum(X)``, ``Y_mean = Y_sum * (1/N)``, ``Y_xc = X - Y_mean``, ``Y_var =
  sum(Y_xc * Y_xc)``, ``Y_rstd = rsqrt(Y_var * (1/N) + eps)``, ``Y = Y_xc * Y_rstd * Scale +
  B``; the optional Mean and InvStdDev outputs are ``Y_mean`` and ``Y_rstd``.
* ``BatchNormalization`` (inference): a per-channel affine map, ``Y_scale[c] = scale[c] *
  rsqrt(var[c] + eps)``, ``Y_shift[c] = B[c] - mean[c] * Y_scale[c]``, ``Y = X * Y_scale[c] +
  Y_shift[c]``.
* ``ReduceSum``, ``ReduceMean`` (sum, then times 1/N), ``ReduceMax``, ``ReduceMin``.

Layout ops never invent arithmetic:

* ``Identity``, ``Dropout`` (inference), ``Transpose``, ``Squeeze``, ``Unsqueeze``, ``Flatten``
  and ``Reshape`` are *views*: no einsum; the consumer reads the producer's tensor with
  permuted dimensions and, for a reshape, affine indices. A dimension split in two is read as
  ``X[a*B0+b0]``; dimensions merged into one are iterated by the consumer with one rank per
  merged part, so ``Reshape([B,S,H,D] -> [B,S,H*D])`` followed by a MatMul reads
  ``W[h*D0+d0,e]``. A reshape that neither splits nor merges whole dimensions (``[6,4] ->
  [4,6]``), or a consumer that cannot iterate the parts (a conflicting second reshape), gets a
  copy einsum ``F[i*4+j] = X[i,j]`` (no operations, only bytes) and reads the copy.
* ``Concat``: one copy einsum per input writing its slice of the output at an offset,
  ``Y[n,c+64,h,w] = B[n,c,h,w]``.
* A graph output that is a view of another tensor is that tensor (renamed to the output's
  name) when only size-1 dimensions differ, and a copy einsum otherwise.

Any other op is an error naming the node and the op; unreadable or invalid files name the
file; a symbolic dimension without a size names the input and the dimension. Integer models
import like float ones (bits from the element type), but ``evaluate`` computes in float64, so
integer division is not truncated there.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass, replace

import numpy as np

from .cascade import Cascade
from .errors import CascadeError, FormatError
from .expr import FUNCTIONS

__all__ = ["SUPPORTED_OPS", "OnnxImport", "import_onnx", "import_onnx_detailed"]

_ELEMENTWISE = {
    "Add": "{0} + {1}", "Sub": "{0} - {1}", "Mul": "{0} * {1}", "Div": "{0} / {1}",
    "Max": "max({0}, {1})", "Min": "min({0}, {1})",
    "Relu": "relu({0})", "Sigmoid": "sigmoid({0})", "Tanh": "tanh({0})", "Gelu": "gelu({0})",
    "Exp": "exp({0})", "Sqrt": "sqrt({0})", "Neg": "-{0}", "Reciprocal": "1 / {0}",
}
_ERF_A = 2.0 / math.sqrt(math.pi)
_ERF_B = _ERF_A * 0.044715 * 2.0
_ELEMENTWISE["Erf"] = "tanh({0} * (" + repr(_ERF_A) + " + " + repr(_ERF_B) + " * {0} * {0}))"
_POW = {0.5: "sqrt({0})", 1.0: "{0}", 2.0: "{0} * {0}", 3.0: "{0} * {0} * {0}",
        -1.0: "1 / {0}"}

_COMPUTE_OPS = tuple(_ELEMENTWISE) + (
    "Pow", "MatMul", "Gemm", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "Softmax", "LayerNormalization", "BatchNormalization", "ReduceSum",
    "ReduceMean", "ReduceMax", "ReduceMin")
_LAYOUT_OPS = ("Identity", "Dropout", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
               "Concat")
#: Ops evaluated at import when all their inputs are known integer data (shape computations).
_FOLD_OPS = ("Shape", "Gather", "Slice", "Cast", "Range", "Equal", "Where", "ConstantOfShape",
             "ReduceProd", "Concat", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Add", "Sub",
             "Mul", "Div")
#: Every op type the importer accepts (some only on shape data known at import).
SUPPORTED_OPS = tuple(sorted(set(_COMPUTE_OPS + _LAYOUT_OPS + _FOLD_OPS + ("Constant",))))

_BITS = {
    "FLOAT": 32, "INT32": 32, "UINT32": 32, "FLOAT16": 16, "BFLOAT16": 16, "INT16": 16,
    "UINT16": 16, "FLOAT8E4M3FN": 8, "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8,
    "FLOAT8E8M0": 8, "INT8": 8, "UINT8": 8, "BOOL": 8, "DOUBLE": 64, "INT64": 64, "UINT64": 64,
    "INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2, "COMPLEX64": 64,
    "COMPLEX128": 128,
}
_INT_TYPES = ("INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64", "BOOL")
_RESERVED = set(FUNCTIONS) | {"inf", "sum"}
_POSITIONAL = "abcdefghij"


@dataclass(frozen=True)
class OnnxImport:
    """The result of :func:`import_onnx_detailed`.

    ``cascade`` is the imported cascade. ``names`` maps ONNX value names to the cascade tensors
    that hold them (graph inputs, used initializers and constants, node outputs that are
    computed into a tensor of their own, graph outputs); the cascade tensor has the ONNX shape
    without its size-1 dimensions. ``weights`` maps the cascade's constant inputs (initializers
    and Constant values it reads) to their values, shaped like the cascade tensors.
    """

    cascade: Cascade
    names: dict
    weights: dict


def import_onnx(source, *, name: str | None = None, dims: dict | None = None,
                default_batch: int | None = None) -> Cascade:
    """Return the cascade of an ONNX model (a path or an ``onnx.ModelProto``); see this
    module's docstring for the mapping. ``dims`` gives the sizes of symbolic dimensions
    (``dim_param`` -> size); ``default_batch`` sizes a symbolic leading dimension not in
    ``dims``. Raises CascadeError (FormatError for an unreadable or invalid file)."""
    return _run(source, name, dims, default_batch, want_weights=False).cascade


def import_onnx_detailed(source, *, name: str | None = None, dims: dict | None = None,
                         default_batch: int | None = None) -> OnnxImport:
    """Like :func:`import_onnx`, but return an :class:`OnnxImport` with the name mapping and
    the weight values as well."""
    return _run(source, name, dims, default_batch, want_weights=True)


# ----------------------------------------------------------------------------- loading

def _run(source, name, dims, default_batch, want_weights: bool) -> OnnxImport:
    try:
        import onnx
        import onnx.checker
        import onnx.numpy_helper
        import onnx.shape_inference
        from google.protobuf.message import DecodeError
    except ImportError:
        raise CascadeError("ONNX import needs the onnx package: pip install onnx") from None
    if isinstance(source, onnx.ModelProto):
        model = source
        label = f"ONNX model {source.graph.name!r}" if source.graph.name else "ONNX model"
        default_name = source.graph.name or "onnx"
    elif isinstance(source, (str, os.PathLike)):
        label = os.fspath(source)
        try:
            model = onnx.load(label)
        except OSError as exc:
            raise CascadeError(f"{label}: cannot read the ONNX file: "
                               f"{exc.strerror or exc}") from None
        except (DecodeError, ValueError) as exc:
            raise FormatError(label, "", "an ONNX model",
                              f"data that does not parse as one ({_one_line(exc)})") from None
        default_name = os.path.splitext(os.path.basename(label))[0] or "onnx"
    else:
        raise CascadeError(f"import_onnx: expected a path or an onnx.ModelProto, found "
                           f"{type(source).__name__}")
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise FormatError(label, "", "a valid ONNX model", _one_line(exc)) from None
    if not model.graph.node and not model.graph.output:
        raise FormatError(label, "", "an ONNX model with a graph", "an empty graph")
    _check_ops(model, label)
    model = _fix_dims(onnx, model, label, dims, default_batch)
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                                  data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, ValueError,
            RuntimeError) as exc:
        raise CascadeError(f"{label}: ONNX shape inference failed: {_one_line(exc)}") from None
    importer = _Importer(onnx, model, label, want_weights)
    return importer.run(name or default_name)


def _one_line(exc) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _node_label(node, index: int) -> str:
    who = repr(node.name) if node.name else f"#{index}"
    op = f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
    return f"node {who} ({op})"


def _check_ops(model, label: str) -> None:
    for index, node in enumerate(model.graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_OPS:
            raise CascadeError(f"{label}: {_node_label(node, index)}: unsupported ONNX op; "
                               f"supported: {', '.join(SUPPORTED_OPS)}")


def _fix_dims(onnx, model, label: str, dims, default_batch):
    """Return a copy of ``model`` whose graph inputs have only fixed dimensions."""
    dims = dict(dims or {})
    for key, size in dims.items():
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise CascadeError(f"{label}: dims[{key!r}]: expected a positive integer, found "
                               f"{size!r}")
    if default_batch is not None and (isinstance(default_batch, bool)
                                      or not isinstance(default_batch, int)
                                      or default_batch <= 0):
        raise CascadeError(f"{label}: default_batch: expected a positive integer, found "
                           f"{default_batch!r}")
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    graph = fixed.graph
    inits = {t.name for t in graph.initializer}
    resolved: dict[str, int] = {}
    symbols: list[str] = []
    for inp in graph.input:
        if inp.name in inits:
            continue
        if not inp.type.HasField("tensor_type"):
            raise CascadeError(f"{label}: input {inp.name!r} is not a tensor")
        tensor_type = inp.type.tensor_type
        if not tensor_type.HasField("shape"):
            raise CascadeError(f"{label}: input {inp.name!r} has no shape")
        for i, dim in enumerate(tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                if dim.dim_value <= 0:
                    raise CascadeError(f"{label}: input {inp.name!r} dimension {i} has size "
                                       f"{dim.dim_value}; sizes must be positive")
                continue
            param = dim.dim_param if dim.HasField("dim_param") else ""
            if param and param not in symbols:
                symbols.append(param)
            if param and param in dims:
                size = dims[param]
            elif param and param in resolved:
                size = resolved[param]
            elif i == 0 and default_batch is not None:
                size = default_batch
            else:
                what = f"is symbolic ({param!r})" if param else "has no size"
                hint = f"dims={{{param!r}: size}}" if param else "a model with fixed sizes"
                if i == 0:
                    hint += " or default_batch=size"
                raise CascadeError(f"{label}: input {inp.name!r} dimension {i} {what}; give "
                                   f"its size with {hint}")
            if param:
                resolved[param] = size
            dim.dim_value = size
    unknown = [k for k in dims if k not in symbols]
    if unknown:
        raise CascadeError(f"{label}: dims: {unknown[0]!r} is not a symbolic dimension of the "
                           f"model's inputs (symbolic: {', '.join(symbols) or 'none'})")
    for out in graph.output:
        if out.type.HasField("tensor_type") and out.type.tensor_type.HasField("shape"):
            for dim in out.type.tensor_type.shape.dim:
                if dim.HasField("dim_param"):
                    if dim.dim_param in resolved:
                        dim.dim_value = resolved[dim.dim_param]
                    else:
                        dim.ClearField("dim_param")
    del graph.value_info[:]
    return fixed


# ----------------------------------------------------------------------------- index algebra

class _Lin:
    """An affine index ``sum(coef * rank) + const`` with integer coefficients."""

    __slots__ = ("const", "terms")

    def __init__(self, terms=None, const: int = 0) -> None:
        self.terms = {v: c for v, c in (terms or {}).items() if c}
        self.const = int(const)

    @classmethod
    def digits(cls, digits) -> _Lin:
        """The mixed-radix index of ``[(rank, size), ...]`` (major first)."""
        terms, weight = {}, 1
        for var, size in reversed(digits):
            terms[var] = weight
            weight *= size
        return cls(dict(reversed(list(terms.items()))))

    def __add__(self, other: _Lin) -> _Lin:
        terms = dict(self.terms)
        for var, coef in other.terms.items():
            terms[var] = terms.get(var, 0) + coef
        return _Lin(terms, self.const + other.const)

    def scale(self, factor: int) -> _Lin:
        return _Lin({v: c * factor for v, c in self.terms.items()}, self.const * factor)

    def shift(self, offset: int) -> _Lin:
        return _Lin(self.terms, self.const + offset)

    @property
    def plain(self) -> str | None:
        if self.const == 0 and len(self.terms) == 1:
            (var, coef), = self.terms.items()
            return var if coef == 1 else None
        return None


@dataclass(frozen=True)
class _Atom:
    """A part of a value's dimension: ``size`` values of underlying dimension ``udim`` spaced
    ``stride`` apart."""

    size: int
    udim: int
    stride: int


@dataclass(frozen=True)
class _Value:
    """An ONNX value as seen by the importer: a view of cascade tensor ``tensor`` (or the
    number ``const``). ``dims[d]`` lists the atoms (major first) of ONNX dimension ``d``; a
    size-1 dimension has none; underlying dimensions no atom covers are read at index 0."""

    key: str
    shape: tuple
    dims: tuple
    tensor: str | None = None
    const: float | None = None


@dataclass(frozen=True)
class _Decl:
    shape: tuple           # cascade shape (size-1 dims dropped)
    bits: int
    ranks: tuple | None    # None until the first access (graph inputs, weights)


class _NeedPlain(Exception):
    """A value's view cannot be read as required: copy it to a plain tensor and retry."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _sanitize(name: str) -> str:
    text = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", str(name))).strip("_") or "t"
    if text[0].isdigit():
        text = "t_" + text
    if text in _RESERVED:
        text += "_"
    return text


def _num(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        raise CascadeError("a constant is NaN")
    if math.isinf(value):
        text = "inf" if value > 0 else "-inf"
    elif value == int(value) and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = repr(value)
    return f"({text})" if text.startswith("-") else text


def _attr_float(value) -> float:
    """An ONNX float attribute (float32) as the shortest decimal that round-trips in float32
    (``1e-05``, not ``9.999999747378752e-06``)."""
    return float(str(np.float32(value)))


def _prod(values) -> int:
    return math.prod(int(v) for v in values)


# ----------------------------------------------------------------------------- the importer

class _Importer:
    def __init__(self, onnx, model, label: str, want_weights: bool) -> None:
        self.onnx = onnx
        self.graph = model.graph
        self.label = label
        self.want_weights = want_weights
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        self.shapes: dict[str, tuple | None] = {}
        self.types: dict[str, int] = {}
        for info in list(self.graph.input) + list(self.graph.value_info) + list(self.graph.output):
            self._record_type(info)
        self.inits = {t.name: t for t in self.graph.initializer}
        for init in self.graph.initializer:
            self.shapes[init.name] = tuple(int(d) for d in init.dims)
            self.types[init.name] = init.data_type
        self.graph_inputs = [i.name for i in self.graph.input if i.name not in self.inits]
        self.known: dict[str, np.ndarray] = {}
        # Name registry: every ONNX value gets its sanitized name up front: graph inputs and
        # outputs first (the user-facing names), then initializers, then node outputs.
        self.taken: set[str] = set()
        self.onnx_names: dict[str, str] = {}
        for value_name in (self.graph_inputs + [o.name for o in self.graph.output]
                           + list(self.inits)
                           + [o for n in self.graph.node for o in n.output if o]):
            if value_name not in self.onnx_names:
                self.onnx_names[value_name] = self._fresh_name(value_name)
        # Cascade under construction.
        self.lines: list[str] = []
        self.ranks: dict[str, int] = {}
        self.tdecl: dict[str, _Decl] = {}
        self.values: dict[str, _Value] = {}
        self.tensor_of: dict[str, str] = {}
        self.written: set[str] = set()
        self.materialized: dict[str, _Value] = {}
        self.pads: dict[tuple, _Value] = {}
        self.weights: dict[str, np.ndarray] = {}
        self.force_plain: set[str] = set()
        self.used: set[str] = set()
        self.tag = "0"
        self.where = label

    # ------------------------------------------------------------------ bookkeeping
    def _record_type(self, info) -> None:
        if not info.type.HasField("tensor_type"):
            return
        tensor_type = info.type.tensor_type
        self.types[info.name] = tensor_type.elem_type
        if tensor_type.HasField("shape"):
            self.shapes[info.name] = tuple(
                int(d.dim_value) if d.HasField("dim_value") else None
                for d in tensor_type.shape.dim)

    def _fail(self, message: str):
        raise CascadeError(f"{self.where}: {message}")

    def _fresh_name(self, base: str) -> str:
        text = _sanitize(base)
        name, k = text, 2
        while name in self.taken:
            name, k = f"{text}_{k}", k + 1
        self.taken.add(name)
        return name

    def _tensor_name(self, onnx_name: str) -> str:
        name = self.onnx_names.get(onnx_name)
        if name is None or name in self.tdecl:
            return self._fresh_name(f"{name or onnx_name}_copy")
        return name

    def _bits(self, onnx_name: str, fallback: int = 32) -> int:
        elem = self.types.get(onnx_name)
        if not elem:
            return fallback
        try:
            type_name = self.onnx.TensorProto.DataType.Name(elem)
        except ValueError:
            type_name = str(elem)
        if type_name not in _BITS:
            self._fail(f"tensor {onnx_name!r} has element type {type_name}, which has no "
                       f"bit width here")
        return _BITS[type_name]

    def _shape(self, onnx_name: str) -> tuple:
        if onnx_name in self.known:
            return tuple(self.known[onnx_name].shape)
        shape = self.shapes.get(onnx_name)
        if shape is None or None in shape:
            self._fail(f"the shape of {onnx_name!r} is not known after shape inference")
        if 0 in shape:
            self._fail(f"{onnx_name!r} has a dimension of size 0, shape {list(shape)}")
        return shape

    def _snapshot(self):
        return (len(self.lines), dict(self.ranks), dict(self.tdecl), dict(self.values),
                dict(self.tensor_of), set(self.written), dict(self.materialized),
                dict(self.pads), dict(self.weights), set(self.taken))

    def _restore(self, snap) -> None:
        (n_lines, self.ranks, self.tdecl, self.values, self.tensor_of, self.written,
         self.materialized, self.pads, self.weights, self.taken) = snap
        del self.lines[n_lines:]

    # ------------------------------------------------------------------ ranks
    def _fresh_rank(self, letter: str, size: int) -> str:
        base = f"{letter}{self.tag}"
        name, k = base, 1
        while name in self.ranks:
            name, k = f"{base}_{k}", k + 1
        self.ranks[name] = size
        return name

    def _var(self, letter: str, size: int, candidates=()) -> str:
        for cand in candidates:
            if cand and cand not in self.used and self.ranks.get(cand) == size:
                self.used.add(cand)
                return cand
        name = self._fresh_rank(letter, size)
        self.used.add(name)
        return name

    def _full_rank(self, value: _Value, atom: _Atom) -> str | None:
        decl = self.tdecl.get(value.tensor)
        if decl is None or decl.ranks is None or atom.stride != 1:
            return None
        return decl.ranks[atom.udim] if decl.shape[atom.udim] == atom.size else None

    def _digits(self, size: int, refs, letter: str) -> list[tuple[str, int]]:
        """Return the iteration digits ``[(rank, size)]`` (major first) of one logical
        dimension of ``size`` that the ``refs`` (``(value, dim)`` pairs) all read: one rank,
        or one per part where a value's dimension is a merge of parts."""
        if size == 1:
            return []
        candidates, structs = [], []
        for value, dim in refs:
            if value is None or value.const is not None or value.shape[dim] != size:
                continue
            atoms = value.dims[dim]
            if len(atoms) == 1:
                candidates.append(self._full_rank(value, atoms[0]))
            elif len(atoms) > 1:
                structs.append((value, atoms))
        if not structs:
            return [(self._var(letter, size, candidates), size)]
        weights = {1, size}
        for _, atoms in structs:
            weight = 1
            for atom in reversed(atoms):
                weight *= atom.size
                weights.add(weight)
        ordered = sorted(weights)
        if any(b % a for a, b in itertools.pairwise(ordered)):
            raise _NeedPlain(structs[-1][0].key)
        digits = []
        for low, high in reversed(list(itertools.pairwise(ordered))):
            dsize = high // low
            cands = []
            for value, atoms in structs:
                weight = 1
                for atom in reversed(atoms):
                    if weight == low and atom.size == dsize:
                        cands.append(self._full_rank(value, atom))
                    weight *= atom.size
            digits.append((self._var(letter, dsize, cands), dsize))
        return digits

    def _lin(self, size: int, refs, letter: str) -> _Lin:
        return _Lin.digits(self._digits(size, refs, letter))

    # ------------------------------------------------------------------ text
    def _render(self, lin: _Lin) -> str:
        items = sorted(lin.terms.items(), key=lambda item: -item[1])
        if not items:
            return str(lin.const)
        mixed = len(items) >= 2 and items[-1][1] == 1 and all(
            items[i][1] == items[i + 1][1] * self.ranks[items[i + 1][0]]
            for i in range(len(items) - 1))
        parts = []
        for i, (var, coef) in enumerate(items):
            if coef == 1:
                parts.append(var)
            elif mixed:
                parts.append("*".join([var] + [v.upper() for v, _ in items[i + 1:]]))
            else:
                parts.append(f"{var}*{coef}")
        text = "+".join(parts)
        if lin.const:
            text += f"{lin.const:+d}"
        return text

    def _decompose(self, lin: _Lin, atoms) -> list[_Lin] | None:
        sizes = [a.size for a in atoms]
        weights = [_prod(sizes[i + 1:]) for i in range(len(sizes))]
        parts = [_Lin() for _ in atoms]
        for var, coef in lin.terms.items():
            for i, weight in enumerate(weights):
                if coef > 0 and coef % weight == 0 and coef // weight < sizes[i]:
                    parts[i].terms[var] = coef // weight
                    break
            else:
                return None
        if lin.const < 0 or lin.const >= _prod(sizes):
            return None
        for i, weight in enumerate(weights):
            parts[i].const = (lin.const // weight) % sizes[i]
        for part, size in zip(parts, sizes):
            high = part.const + sum(c * (self.ranks[v] - 1) for v, c in part.terms.items())
            if high >= size:
                return None
        return parts

    def _read(self, value: _Value, lins, letters: str = _POSITIONAL) -> str:
        """Return the access text reading ``value`` at the logical indices ``lins`` (one per
        ONNX dimension; ignored for size-1 dimensions)."""
        if value.const is not None:
            return _num(value.const)
        decl = self.tdecl[value.tensor]
        forms = [_Lin() for _ in decl.shape]
        for dim, atoms in enumerate(value.dims):
            if not atoms:
                continue
            lin = lins[dim]
            if len(atoms) == 1:
                forms[atoms[0].udim] += lin.scale(atoms[0].stride)
                continue
            parts = self._decompose(lin, atoms)
            if parts is None:
                raise _NeedPlain(value.key)
            for atom, part in zip(atoms, parts):
                forms[atom.udim] += part.scale(atom.stride)
        if decl.ranks is None:
            ranks = []
            for udim, (form, size) in enumerate(zip(forms, decl.shape)):
                var = form.plain
                if var and self.ranks.get(var) == size and var not in ranks:
                    ranks.append(var)
                else:
                    ranks.append(self._fresh_rank(self._udim_letter(value, udim, letters),
                                                  size))
            self.tdecl[value.tensor] = replace(decl, ranks=tuple(ranks))
        return f"{value.tensor}[{','.join(self._render(f) for f in forms)}]"

    @staticmethod
    def _udim_letter(value: _Value, udim: int, letters: str) -> str:
        """The letter of the ONNX dimension that reads underlying dimension ``udim``."""
        for dim, atoms in enumerate(value.dims):
            if any(a.udim == udim for a in atoms):
                return letters[dim % len(letters)]
        return _POSITIONAL[udim % 10]

    def _declare(self, tname: str, shape, bits: int, lins, letters: str = _POSITIONAL) -> None:
        ranks = []
        for dim, size in enumerate(shape):
            if size == 1:
                continue
            lin = lins[dim] if lins is not None else None
            var = lin.plain if lin is not None else None
            if var and self.ranks.get(var) == size and var not in ranks:
                ranks.append(var)
            else:
                ranks.append(self._fresh_rank(letters[dim % len(letters)], size))
        self.tdecl[tname] = _Decl(tuple(s for s in shape if s > 1), bits, tuple(ranks))

    def _write(self, tname: str, shape, lins, rhs: str) -> None:
        index = ",".join(self._render(lins[d]) for d, s in enumerate(shape) if s > 1)
        self.lines.append(f"{tname}[{index}] = {rhs}")
        self.written.add(tname)

    @staticmethod
    def _plain(tname: str, shape, key: str) -> _Value:
        dims, udim = [], 0
        for size in shape:
            if size > 1:
                dims.append((_Atom(size, udim, 1),))
                udim += 1
            else:
                dims.append(())
        return _Value(key, tuple(shape), tuple(dims), tname)

    def _emit(self, onnx_out: str, shape, lins, rhs: str, bits: int | None = None) -> _Value:
        """Declare the tensor of ONNX value ``onnx_out`` and write it with one einsum."""
        tname = self._tensor_name(onnx_out)
        self._declare(tname, shape, self._bits(onnx_out) if bits is None else bits, lins)
        self._write(tname, shape, lins, rhs)
        value = self._plain(tname, shape, onnx_out)
        self.values[onnx_out] = value
        self.tensor_of[onnx_out] = tname
        return value

    def _emit_tmp(self, hint: str, shape, lins, rhs: str, bits: int) -> _Value:
        """Declare and write a helper tensor named after ``hint``."""
        tname = self._fresh_name(hint)
        self._declare(tname, shape, bits, lins)
        self._write(tname, shape, lins, rhs)
        return self._plain(tname, shape, "#" + tname)

    # ------------------------------------------------------------------ values
    def _known_value(self, onnx_name: str) -> np.ndarray | None:
        if onnx_name in self.known:
            return self.known[onnx_name]
        if onnx_name in self.inits:
            array = self.onnx.numpy_helper.to_array(self.inits[onnx_name])
            self.known[onnx_name] = array
            return array
        return None

    def _is_known(self, onnx_name: str) -> bool:
        return onnx_name in self.known or onnx_name in self.inits

    def _is_int(self, onnx_name: str) -> bool:
        if onnx_name in self.known:
            return self.known[onnx_name].dtype.kind in "iub"
        if onnx_name in self.inits:
            elem = self.inits[onnx_name].data_type
            return self.onnx.TensorProto.DataType.Name(elem) in _INT_TYPES
        return False

    def _val_raw(self, onnx_name: str) -> _Value:
        if onnx_name in self.values:
            return self.values[onnx_name]
        if self._is_known(onnx_name):
            array = self._known_value(onnx_name)
            if array.size == 1 and array.dtype.kind in "fiub":
                number = array.reshape(-1)[0]
                if array.dtype in (np.float16, np.float32):
                    number = str(number)          # shortest decimal in the model's precision
                value = _Value(onnx_name, tuple(array.shape), ((),) * array.ndim,
                               const=float(number))
            else:
                value = self._new_input(onnx_name, tuple(array.shape))
                if self.want_weights:
                    self.weights[value.tensor] = array.reshape(self.tdecl[value.tensor].shape)
        elif onnx_name in self.graph_inputs:
            value = self._new_input(onnx_name, self._shape(onnx_name))
        else:
            self._fail(f"input {onnx_name!r} is not produced by an earlier node")
        self.values[onnx_name] = value
        return value

    def _new_input(self, onnx_name: str, shape) -> _Value:
        if 0 in shape:
            self._fail(f"{onnx_name!r} has a dimension of size 0, shape {list(shape)}")
        tname = self._tensor_name(onnx_name)
        self.tdecl[tname] = _Decl(tuple(s for s in shape if s > 1), self._bits(onnx_name), None)
        self.tensor_of[onnx_name] = tname
        return self._plain(tname, shape, onnx_name)

    def _val(self, onnx_name: str) -> _Value:
        value = self._val_raw(onnx_name)
        if value.key in self.force_plain:
            return self._materialize(value)
        return value

    def _input(self, node, i: int) -> _Value | None:
        if len(node.input) > i and node.input[i]:
            return self._val(node.input[i])
        return None

    def _copy(self, value: _Value, tname: str, bits: int) -> _Value:
        """Copy ``value`` into a new plain tensor ``tname``."""
        lins = [self._lin(s, [(value, d)], _POSITIONAL[d % 10])
                for d, s in enumerate(value.shape)]
        self._declare(tname, value.shape, bits, lins)
        self._write(tname, value.shape, lins, self._read(value, lins))
        return self._plain(tname, value.shape, "#" + tname)

    def _value_bits(self, value: _Value, fallback: int = 32) -> int:
        return self.tdecl[value.tensor].bits if value.tensor else fallback

    def _materialize(self, value: _Value) -> _Value:
        if value.key not in self.materialized:
            tname = self._tensor_name(value.key)
            copied = self._copy(value, tname, self._value_bits(value, self._bits(value.key)))
            self.materialized[value.key] = copied
            self.tensor_of[value.key] = tname
        return self.materialized[value.key]

    def _reshape(self, value: _Value, new_shape, key: str) -> _Value:
        """Return ``value`` viewed with ``new_shape`` (a copy when no view fits)."""
        new_shape = tuple(int(s) for s in new_shape)
        if _prod(new_shape) != _prod(value.shape):
            self._fail(f"cannot reshape {list(value.shape)} to {list(new_shape)}")
        if value.const is not None:
            return _Value(key, new_shape, ((),) * len(new_shape), const=value.const)
        old = [(d, s) for d, s in enumerate(value.shape) if s > 1]
        new = [(d, s) for d, s in enumerate(new_shape) if s > 1]
        groups, i, j = [], 0, 0
        while i < len(old):
            g_old, g_new = [old[i]], [new[j]]
            p_old, p_new = old[i][1], new[j][1]
            i, j = i + 1, j + 1
            while p_old != p_new:
                if p_old < p_new:
                    g_old.append(old[i])
                    p_old *= old[i][1]
                    i += 1
                else:
                    g_new.append(new[j])
                    p_new *= new[j][1]
                    j += 1
            groups.append((g_old, g_new))
        dims: list[tuple] = [() for _ in new_shape]
        for g_old, g_new in groups:
            queue = [a for d, _ in g_old for a in value.dims[d]]
            for d, size in g_new:
                need, taken = size, []
                while need > 1:
                    atom = queue[0]
                    if need % atom.size == 0:
                        taken.append(queue.pop(0))
                        need //= atom.size
                    elif atom.size % need == 0:
                        rest = atom.size // need
                        taken.append(_Atom(need, atom.udim, atom.stride * rest))
                        queue[0] = _Atom(rest, atom.udim, atom.stride)
                        need = 1
                    else:
                        return self._reshape_copy(value, new_shape, groups, key)
                dims[d] = tuple(taken)
        return _Value(key, new_shape, tuple(dims), value.tensor)

    def _reshape_copy(self, value: _Value, new_shape, groups, key: str) -> _Value:
        """Copy ``value`` into a tensor with one dimension per reshape group; view that."""
        lins = [self._lin(s, [(value, d)], _POSITIONAL[d % 10])
                for d, s in enumerate(value.shape)]
        group_lins, group_shape = [], []
        for g_old, _ in groups:
            lin, weight = _Lin(), 1
            for d, size in reversed(g_old):
                lin = lin + lins[d].scale(weight)
                weight *= size
            group_lins.append(lin)
            group_shape.append(weight)
        tname = self._tensor_name(key)
        self._declare(tname, group_shape, self._value_bits(value), None)
        self._write(tname, group_shape, group_lins, self._read(value, lins))
        self.tensor_of[key] = tname
        dims: list[tuple] = [() for _ in new_shape]
        for udim, (_, g_new) in enumerate(groups):
            stride = 1
            for d, size in reversed(g_new):
                dims[d] = (_Atom(size, udim, stride),)
                stride *= size
        return _Value(key, tuple(new_shape), tuple(dims), tname)

    def _padded(self, value: _Value, begin, end, fill: str, lead_lins) -> _Value:
        """Return a plain copy of ``value`` padded by ``begin``/``end`` elements in its
        trailing (spatial) dimensions, the border filled with ``fill``; ``lead_lins`` index
        the leading (batch, channel) dimensions."""
        key = (value.key, tuple(begin), tuple(end), fill)
        if key in self.pads:
            return self.pads[key]
        nsp = len(begin)
        lead = len(value.shape) - nsp
        in_lins = list(lead_lins) + [
            self._lin(s, [(value, lead + i)], letter)
            for i, (s, letter) in enumerate(zip(value.shape[lead:],
                                                self._spatial_letters(nsp, "dhw")))]
        pshape = tuple(value.shape[:lead]) + tuple(
            s + b + e for s, b, e in zip(value.shape[lead:], begin, end))
        base = value.tensor or value.key
        tname = self._fresh_name(f"{base}_pad")
        bits = self._value_bits(value)
        self._declare(tname, pshape, bits, in_lins[:lead] + [None] * nsp,
                      letters="nc"[:lead] + self._spatial_letters(nsp, "tuv"))
        ranks = iter(self.tdecl[tname].ranks)
        full = [_Lin({next(ranks): 1}) if s > 1 else _Lin() for s in pshape]
        interior = in_lins[:lead] + [in_lins[lead + i].shift(begin[i]) for i in range(nsp)]
        self._write(tname, pshape, interior,
                    self._read(value, in_lins, "nc"[:lead] + self._spatial_letters(nsp, "dhw")))
        strip_vars: dict[int, _Lin] = {}
        for i in range(nsp):
            size = value.shape[lead + i]
            for side, pad in (("begin", begin[i]), ("end", end[i])):
                if pad <= 0:
                    continue
                if pad not in strip_vars:
                    strip_vars[pad] = self._lin(pad, [], "p")
                offset = 0 if side == "begin" else begin[i] + size
                lins = (in_lins[:lead] + interior[lead:lead + i]
                        + [strip_vars[pad].shift(offset)] + full[lead + i + 1:])
                self._write(tname, pshape, lins, fill)
        padded = self._plain(tname, pshape, "#" + tname)
        self.pads[key] = padded
        return padded

    # ------------------------------------------------------------------ driver
    def run(self, name: str) -> OnnxImport:
        for index, node in enumerate(self.graph.node):
            self.where = f"{self.label}: {_node_label(node, index)}"
            self._node(index, node)
        self.where = self.label
        self.tag = str(len(self.graph.node))
        self.used = set()
        return self._finish(name)

    def _node(self, index: int, node) -> None:
        op = node.op_type
        attrs = {}
        for attr in node.attribute:
            value = self.onnx.helper.get_attribute_value(attr)
            attrs[attr.name] = value.decode() if isinstance(value, bytes) else value
        if op == "Constant":
            self.known[node.output[0]] = self._constant(attrs)
            return
        if op in _FOLD_OPS and self._foldable(node):
            results = self._fold(node, attrs)
            for out, result in zip(node.output, results):
                if out:
                    self.known[out] = np.asarray(result)
            return
        if op not in _COMPUTE_OPS and op not in _LAYOUT_OPS:
            self._fail(f"{op} is supported only on integer shape data known at import")
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            handler = self._op_elementwise
        for _ in range(len(node.input) + 8):
            snap = self._snapshot()
            self.tag = str(index)
            self.used = set()
            try:
                handler(node, attrs)
                return
            except _NeedPlain as exc:
                self._restore(snap)
                if exc.key in self.force_plain:
                    break
                self.force_plain.add(exc.key)
        self._fail("internal error: cannot lay out the inputs of this node")

    def _constant(self, attrs) -> np.ndarray:
        numpy_helper = self.onnx.numpy_helper
        if "value" in attrs:
            return numpy_helper.to_array(attrs["value"])
        if "value_float" in attrs:
            return np.array(attrs["value_float"], dtype=np.float32)
        if "value_floats" in attrs:
            return np.array(attrs["value_floats"], dtype=np.float32)
        if "value_int" in attrs:
            return np.array(attrs["value_int"], dtype=np.int64)
        if "value_ints" in attrs:
            return np.array(attrs["value_ints"], dtype=np.int64)
        self._fail(f"unsupported Constant value ({', '.join(attrs) or 'none'})")

    def _foldable(self, node) -> bool:
        inputs = [i for i in node.input if i]
        if node.op_type == "Shape":
            shape = self.shapes.get(inputs[0])
            return shape is not None and None not in shape
        return all(self._is_known(i) and self._is_int(i) for i in inputs)

    def _fold(self, node, attrs) -> list:
        op = node.op_type
        ins = [self._known_value(i) if i else None for i in node.input]
        if op == "Shape":
            shape = self.shapes[node.input[0]]
            start, end = attrs.get("start", 0), attrs.get("end", None)
            return [np.array(shape[start:end], dtype=np.int64)]
        if op == "Identity":
            return [ins[0]]
        if op in ("Add", "Sub", "Mul"):
            func = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op]
            return [func(ins[0], ins[1])]
        if op == "Div":
            result = np.true_divide(ins[0], ins[1])
            return [result.astype(np.result_type(ins[0], ins[1]))]
        if op == "Equal":
            return [np.equal(ins[0], ins[1])]
        if op == "Where":
            return [np.where(ins[0], ins[1], ins[2])]
        if op == "Gather":
            return [np.take(ins[0], ins[1], axis=attrs.get("axis", 0))]
        if op == "Concat":
            return [np.concatenate([a for a in ins if a is not None], axis=attrs["axis"])]
        if op == "Cast":
            return [ins[0].astype(self.onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))]
        if op == "Range":
            return [np.arange(ins[0], ins[1], ins[2]).astype(ins[0].dtype)]
        if op == "ConstantOfShape":
            fill = attrs.get("value")
            fill = (self.onnx.numpy_helper.to_array(fill) if fill is not None
                    else np.zeros(1, dtype=np.float32))
            return [np.full(tuple(int(s) for s in ins[0]), fill.reshape(-1)[0],
                            dtype=fill.dtype)]
        axes = self._axes(node, attrs, ins)
        if op == "ReduceProd":
            keep = bool(attrs.get("keepdims", 1))
            return [np.prod(ins[0], axis=None if axes is None else tuple(axes), keepdims=keep)]
        if op == "Squeeze":
            return [np.squeeze(ins[0], axis=None if axes is None else
                               tuple(a % ins[0].ndim for a in axes))]
        if op == "Unsqueeze":
            rank = ins[0].ndim + len(axes)
            return [np.expand_dims(ins[0], tuple(sorted(a % rank for a in axes)))]
        if op == "Reshape":
            shape = [int(s) for s in ins[1]]
            if not attrs.get("allowzero", 0):
                shape = [ins[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
            return [np.reshape(ins[0], shape)]
        if op == "Slice":
            if self.opset >= 10:
                starts, ends = ins[1], ins[2]
                slice_axes = ins[3] if len(ins) > 3 and ins[3] is not None else None
                steps = ins[4] if len(ins) > 4 and ins[4] is not None else None
            else:
                starts, ends = attrs["starts"], attrs["ends"]
                slice_axes, steps = attrs.get("axes"), None
            data = ins[0]
            if slice_axes is None:
                slice_axes = range(len(starts))
            if steps is None:
                steps = [1] * len(starts)
            index = [slice(None)] * data.ndim
            for axis, start, stop, step in zip(slice_axes, starts, ends, steps):
                index[int(axis) % data.ndim] = slice(int(start), int(stop), int(step))
            return [data[tuple(index)]]
        self._fail(f"internal error: no folding rule for {op}")

    def _axes(self, node, attrs, ins=None) -> list[int] | None:
        """Return the ``axes`` of a node (attribute, or known input 1), or None."""
        if "axes" in attrs:
            return [int(a) for a in attrs["axes"]]
        if len(node.input) > 1 and node.input[1]:
            array = self._known_value(node.input[1])
            if array is None:
                self._fail("the axes input must be known at import")
            return [int(a) for a in np.asarray(array).reshape(-1)]
        return None

    # ------------------------------------------------------------------ element-wise ops
    def _broadcast(self, shape, values, letters: str = _POSITIONAL) -> list[_Lin]:
        """Return one logical index per output dimension for inputs broadcast to ``shape``."""
        rank = len(shape)
        lins = []
        for d, size in enumerate(shape):
            refs = []
            for value in values:
                j = d - (rank - len(value.shape))
                if j >= 0:
                    refs.append((value, j))
            lins.append(self._lin(size, refs, letters[d % len(letters)]))
        return lins

    @staticmethod
    def _align(lins, value: _Value) -> list[_Lin]:
        return lins[len(lins) - len(value.shape):] if value.shape else []

    def _op_elementwise(self, node, attrs) -> None:
        op = node.op_type
        inputs = [self._val(i) for i in node.input if i]
        if op == "Pow":
            exponent = inputs[1].const
            if exponent not in _POW:
                self._fail("Pow needs a constant exponent 0.5, 1, 2, 3 or -1")
            template, inputs = _POW[exponent], inputs[:1]
        else:
            template = _ELEMENTWISE[op]
            arity = template.count("{1}") + 1
            if len(inputs) != arity:
                self._fail(f"expected {arity} input(s), found {len(inputs)}")
        out = node.output[0]
        shape = self._shape(out)
        lins = self._broadcast(shape, inputs)
        reads = [self._read(v, self._align(lins, v)) for v in inputs]
        self._emit(out, shape, lins, template.format(*reads))

    # ------------------------------------------------------------------ contractions
    def _op_MatMul(self, node, attrs) -> None:
        a, b = self._input(node, 0), self._input(node, 1)
        out = node.output[0]
        shape = self._shape(out)
        a1, b1 = len(a.shape) == 1, len(b.shape) == 1
        nbatch = len(shape) - (0 if a1 else 1) - (0 if b1 else 1)
        a_batch = 0 if a1 else len(a.shape) - 2
        b_batch = 0 if b1 else len(b.shape) - 2
        batch = []
        for d in range(nbatch):
            refs = [(v, d - (nbatch - nb)) for v, nb in ((a, a_batch), (b, b_batch))
                    if d - (nbatch - nb) >= 0]
            batch.append(self._lin(shape[d], refs, "bhgfe"[d % 5]))
        m = None if a1 else self._lin(a.shape[-2], [(a, len(a.shape) - 2)], "m")
        n = None if b1 else self._lin(b.shape[-1], [(b, len(b.shape) - 1)], "n")
        k = self._lin(a.shape[-1], [(a, len(a.shape) - 1), (b, 0 if b1 else len(b.shape) - 2)],
                      "k")
        a_lins = batch[nbatch - a_batch:] + ([] if a1 else [m]) + [k]
        b_lins = batch[nbatch - b_batch:] + [k] + ([] if b1 else [n])
        lins = batch + ([] if a1 else [m]) + ([] if b1 else [n])
        self._emit(out, shape, lins, f"{self._read(a, a_lins)} * {self._read(b, b_lins)}")

    def _op_Gemm(self, node, attrs) -> None:
        a, b, c = self._input(node, 0), self._input(node, 1), self._input(node, 2)
        trans_a, trans_b = attrs.get("transA", 0), attrs.get("transB", 0)
        alpha, beta = _attr_float(attrs.get("alpha", 1.0)), _attr_float(attrs.get("beta", 1.0))
        if len(a.shape) != 2 or len(b.shape) != 2:
            self._fail("Gemm needs 2-D A and B")
        out = node.output[0]
        shape = self._shape(out)
        size_m, size_n = shape
        am, ak = (1, 0) if trans_a else (0, 1)
        bk, bn = (1, 0) if trans_b else (0, 1)
        if beta == 0.0:
            c = None
        c_refs_m, c_refs_n = [], []
        if c is not None and c.const is None:
            if len(c.shape) == 2:
                c_refs_m, c_refs_n = [(c, 0)], [(c, 1)]
            elif len(c.shape) == 1:
                c_refs_n = [(c, 0)]
        m = self._lin(size_m, [(a, am)] + c_refs_m, "m")
        n = self._lin(size_n, [(b, bn)] + c_refs_n, "n")
        k = self._lin(a.shape[ak], [(a, ak), (b, bk)], "k")
        a_lins = [m, k] if not trans_a else [k, m]
        b_lins = [k, n] if not trans_b else [n, k]
        product = f"{self._read(a, a_lins)} * {self._read(b, b_lins)}"
        if c is None and alpha == 1.0:
            self._emit(out, shape, [m, n], product)
            return
        mm = self._emit_tmp(f"{self._tensor_name_hint(out)}_mm", shape, [m, n], product,
                            self._bits(out))
        rhs = self._read(mm, [m, n])
        if alpha != 1.0:
            rhs = f"{_num(alpha)} * {rhs}"
        if c is not None:
            if c.const is not None:
                rhs += f" + {_num(beta * c.const)}"
            else:
                c_read = self._read(c, [m, n][2 - len(c.shape):])
                rhs += f" + {c_read}" if beta == 1.0 else f" + {_num(beta)} * {c_read}"
        self._emit(out, shape, [m, n], rhs)

    def _tensor_name_hint(self, onnx_name: str) -> str:
        return self.onnx_names.get(onnx_name) or _sanitize(onnx_name)

    def _window(self, attrs, in_sp, out_sp, kernel, allow_extra: bool):
        """Return (strides, dilations, begin pads, end pads) of a conv/pool window, the end
        pads trimmed to what the windows read (and grown when ``allow_extra``)."""
        nsp = len(in_sp)
        strides = [int(s) for s in attrs.get("strides", [1] * nsp)]
        dil = [int(d) for d in attrs.get("dilations", [1] * nsp)]
        need = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in zip(out_sp, strides, kernel, dil)]
        auto = attrs.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            total = [max(0, n - i) for n, i in zip(need, in_sp)]
            begin = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
            end = [t - b for t, b in zip(total, begin)]
        elif auto == "VALID":
            begin, end = [0] * nsp, [0] * nsp
        else:
            pads = [int(p) for p in attrs.get("pads", [0] * 2 * nsp)]
            begin, end = pads[:nsp], pads[nsp:]
        ends = []
        for n, i, b, e in zip(need, in_sp, begin, end):
            extra = n - i - b
            if extra > e and not allow_extra:
                self._fail(f"the windows read {n} elements but the padded input has {i + b + e}")
            ends.append(max(0, extra))
        return strides, dil, begin, ends, end

    @staticmethod
    def _spatial_letters(nsp: int, letters: str) -> str:
        return letters[-nsp:] if nsp <= len(letters) else _POSITIONAL[:nsp]

    def _op_Conv(self, node, attrs) -> None:
        x, w, bias = self._input(node, 0), self._input(node, 1), self._input(node, 2)
        out = node.output[0]
        shape = self._shape(out)
        nsp = len(x.shape) - 2
        if nsp < 1 or len(w.shape) != nsp + 2:
            self._fail(f"expected an input [N,C,...] and weights [K,C/group,...], found "
                       f"{list(x.shape)} and {list(w.shape)}")
        groups = int(attrs.get("group", 1))
        size_n, size_c = x.shape[:2]
        size_k, size_cg = w.shape[:2]
        if size_c != size_cg * groups or size_k % groups:
            self._fail(f"group={groups} does not divide input channels {size_c} and output "
                       f"channels {size_k} (weights {list(w.shape)})")
        kernel = w.shape[2:]
        strides, dil, begin, end, _ = self._window(attrs, x.shape[2:], shape[2:], kernel, False)
        n = self._lin(size_n, [(x, 0)], "n")
        bias_refs = [(bias, 0)] if bias is not None else []
        if groups == 1:
            g = _Lin()
            kk = self._lin(size_k, [(w, 0)] + bias_refs, "k")
            cc = self._lin(size_c, [(x, 1), (w, 1)], "c")
            x_c, out_k = cc, kk
        else:
            g = self._lin(groups, [], "g")
            kk = self._lin(size_k // groups, [], "k")
            cc = self._lin(size_cg, [(w, 1)], "c")
            x_c, out_k = g.scale(size_cg) + cc, g.scale(size_k // groups) + kk
        if any(begin) or any(end):
            source = self._padded(x, begin, end, "0", [n, x_c])
        else:
            source = x
        ys = [self._lin(o, [], letter)
              for o, letter in zip(shape[2:], self._spatial_letters(nsp, "zyx"))]
        rs = [self._lin(k, [(w, 2 + i)], letter)
              for i, (k, letter) in enumerate(zip(kernel, self._spatial_letters(nsp, "qrs")))]
        x_sp = [y.scale(s) + r.scale(d) for y, r, s, d in zip(ys, rs, strides, dil)]
        lins = [n, out_k] + ys
        letters = "nc" + self._spatial_letters(nsp, "dhw")
        product = (f"{self._read(source, [n, x_c] + x_sp, letters)} * "
                   f"{self._read(w, [out_k, cc] + rs, 'kc' + self._spatial_letters(nsp, 'qrs'))}")
        if bias is None:
            self._emit(out, shape, lins, product)
            return
        conv = self._emit_tmp(f"{self._tensor_name_hint(out)}_conv", shape, lins, product,
                              self._bits(out))
        self._emit(out, shape, lins, f"{self._read(conv, lins)} + {self._read(bias, [out_k])}")

    # ------------------------------------------------------------------ pooling and reductions
    def _op_MaxPool(self, node, attrs) -> None:
        self._pool(node, attrs, "max")

    def _op_AveragePool(self, node, attrs) -> None:
        self._pool(node, attrs, "avg")

    def _pool(self, node, attrs, kind: str) -> None:
        x = self._input(node, 0)
        if len(node.output) > 1 and node.output[1] and self._is_used(node.output[1]):
            self._fail("the Indices output is not supported")
        out = node.output[0]
        shape = self._shape(out)
        nsp = len(x.shape) - 2
        kernel = [int(k) for k in attrs["kernel_shape"]]
        strides, dil, begin, end, declared_end = self._window(
            attrs, x.shape[2:], shape[2:], kernel, allow_extra=True)
        padded = any(begin) or any(end)
        n = self._lin(x.shape[0], [(x, 0)], "n")
        c = self._lin(x.shape[1], [(x, 1)], "c")
        fill = "-inf" if kind == "max" else "0"
        source = self._padded(x, begin, end, fill, [n, c]) if padded else x
        ys = [self._lin(o, [], letter)
              for o, letter in zip(shape[2:], self._spatial_letters(nsp, "zyx"))]
        rs = [self._lin(k, [], letter)
              for k, letter in zip(kernel, self._spatial_letters(nsp, "qrs"))]
        x_sp = [y.scale(s) + r.scale(d) for y, r, s, d in zip(ys, rs, strides, dil)]
        lins = [n, c] + ys
        read = self._read(source, [n, c] + x_sp, "nc" + self._spatial_letters(nsp, "dhw"))
        if kind == "max":
            self._emit(out, shape, lins, f"max({read})")
            return
        counts = self._window_counts(x.shape[2:], shape[2:], kernel, strides, dil, begin,
                                     declared_end, bool(attrs.get("count_include_pad", 0)))
        hint, bits = self._tensor_name_hint(out), self._bits(out)
        total = self._emit_tmp(f"{hint}_sum", shape, lins, f"sum({read})", bits)
        if np.all(counts == counts.flat[0]):
            scale = _num(1.0 / counts.flat[0])
        else:
            inverse = self._const_input(f"{hint}_inv_count", 1.0 / counts, bits)
            scale = self._read(inverse, ys, self._spatial_letters(nsp, "zyx"))
        self._emit(out, shape, lins, f"{self._read(total, lins)} * {scale}")

    def _window_counts(self, in_sp, out_sp, kernel, strides, dil, begin, end, include_pad):
        """Return the divisor of each average-pool window (out_sp array): the elements of
        the input (plus the declared padding with ``include_pad``) that the window covers."""
        per_dim = []
        for i, o, k, s, d, b, e in zip(in_sp, out_sp, kernel, strides, dil, begin, end):
            low, high = (0, b + i + e) if include_pad else (b, b + i)
            starts = np.arange(o) * s
            taps = starts[:, None] + np.arange(k)[None, :] * d
            per_dim.append(((taps >= low) & (taps < high)).sum(axis=1))
        counts = per_dim[0]
        for more in per_dim[1:]:
            counts = np.multiply.outer(counts, more)
        if np.any(counts == 0):
            self._fail("a pooling window lies entirely in the padding")
        return counts.astype(np.float64)

    def _const_input(self, hint: str, array: np.ndarray, bits: int) -> _Value:
        """Return a new constant input tensor (its value goes to the weights)."""
        tname = self._fresh_name(hint)
        cshape = tuple(s for s in array.shape if s > 1)
        self.tdecl[tname] = _Decl(cshape, bits, None)
        if self.want_weights:
            self.weights[tname] = array.reshape(cshape)
        return self._plain(tname, array.shape, "#" + tname)

    def _op_GlobalAveragePool(self, node, attrs) -> None:
        x = self._input(node, 0)
        self._reduce(node, x, list(range(2, len(x.shape))), "mean")

    def _op_GlobalMaxPool(self, node, attrs) -> None:
        x = self._input(node, 0)
        self._reduce(node, x, list(range(2, len(x.shape))), "max")

    def _op_ReduceSum(self, node, attrs) -> None:
        self._reduce_op(node, attrs, "sum")

    def _op_ReduceMean(self, node, attrs) -> None:
        self._reduce_op(node, attrs, "mean")

    def _op_ReduceMax(self, node, attrs) -> None:
        self._reduce_op(node, attrs, "max")

    def _op_ReduceMin(self, node, attrs) -> None:
        self._reduce_op(node, attrs, "min")

    def _reduce_op(self, node, attrs, kind: str) -> None:
        x = self._input(node, 0)
        axes = self._axes(node, attrs)
        if axes is None or not axes:
            if axes is not None and attrs.get("noop_with_empty_axes", 0):
                axes = []
            else:
                axes = list(range(len(x.shape)))
        self._reduce(node, x, [a % max(1, len(x.shape)) for a in axes], kind)

    def _reduce(self, node, x: _Value, axes, kind: str) -> None:
        """Reduce ``x`` over ``axes`` into the node's output (size-1 dims kept or not)."""
        out = node.output[0]
        shape = self._shape(out)
        lins = [self._lin(s, [(x, d)], _POSITIONAL[d % 10]) for d, s in enumerate(x.shape)]
        keep = [d for d in range(len(x.shape)) if d not in axes]
        if len(shape) == len(x.shape):
            out_lins = [lins[d] if d in keep else _Lin() for d in range(len(x.shape))]
        else:
            out_lins = [lins[d] for d in keep]
        read = self._read(x, lins)
        count = _prod(x.shape[d] for d in axes)
        if kind in ("max", "min"):
            self._emit(out, shape, out_lins, f"{kind}({read})")
        elif kind == "sum" or count == 1:
            self._emit(out, shape, out_lins, f"sum({read})" if count > 1 else read)
        else:
            total = self._emit_tmp(f"{self._tensor_name_hint(out)}_sum", shape, out_lins,
                                   f"sum({read})", self._bits(out))
            self._emit(out, shape, out_lins,
                       f"{self._read(total, out_lins)} * {_num(1.0 / count)}")

    # ------------------------------------------------------------------ normalizations
    def _op_Softmax(self, node, attrs) -> None:
        x = self._input(node, 0)
        out = node.output[0]
        rank = len(x.shape)
        axis = int(attrs.get("axis", -1 if self.opset >= 13 else 1)) % max(1, rank)
        reduced = [axis] if self.opset >= 13 else list(range(axis, rank))
        lins = [self._lin(s, [(x, d)], _POSITIONAL[d % 10]) for d, s in enumerate(x.shape)]
        keep = [d for d in range(rank) if d not in reduced]
        k_shape, k_lins = [x.shape[d] for d in keep], [lins[d] for d in keep]
        base, bits = self._tensor_name_hint(out), self._bits(out)
        xr = self._read(x, lins)
        mx = self._emit_tmp(f"{base}_max", k_shape, k_lins, f"max({xr})", bits)
        ex = self._emit_tmp(f"{base}_exp", x.shape, lins,
                            f"exp({xr} - {self._read(mx, k_lins)})", bits)
        total = self._emit_tmp(f"{base}_sum", k_shape, k_lins, f"sum({self._read(ex, lins)})",
                               bits)
        self._emit(out, x.shape, lins,
                   f"{self._read(ex, lins)} / {self._read(total, k_lins)}")

    def _op_LayerNormalization(self, node, attrs) -> None:
        x, scale, bias = self._input(node, 0), self._input(node, 1), self._input(node, 2)
        out = node.output[0]
        rank = len(x.shape)
        axis = int(attrs.get("axis", -1)) % rank
        eps = _attr_float(attrs.get("epsilon", 1e-5))
        lins = self._broadcast(x.shape, [x] + [v for v in (scale, bias) if v is not None])
        keep = list(range(axis))
        k_shape, k_lins = [x.shape[d] for d in keep], [lins[d] for d in keep]
        count = _prod(x.shape[axis:])
        base, bits = self._tensor_name_hint(out), self._bits(out)
        xr = self._read(x, lins)
        total = self._emit_tmp(f"{base}_sum", k_shape, k_lins, f"sum({xr})", bits)
        mean_rhs = f"{self._read(total, k_lins)} * {_num(1.0 / count)}"
        extra = [node.output[i] if len(node.output) > i and node.output[i] else None
                 for i in (1, 2)]
        if extra[0]:
            mean = self._emit(extra[0], k_shape, k_lins, mean_rhs, bits)
            self.values[extra[0]] = self._plain(mean.tensor, self._shape(extra[0]), extra[0])
        else:
            mean = self._emit_tmp(f"{base}_mean", k_shape, k_lins, mean_rhs, bits)
        xc = self._emit_tmp(f"{base}_xc", x.shape, lins,
                            f"{xr} - {self._read(mean, k_lins)}", bits)
        xcr = self._read(xc, lins)
        var = self._emit_tmp(f"{base}_var", k_shape, k_lins, f"sum({xcr} * {xcr})", bits)
        rstd_rhs = f"rsqrt({self._read(var, k_lins)} * {_num(1.0 / count)} + {_num(eps)})"
        if extra[1]:
            rstd = self._emit(extra[1], k_shape, k_lins, rstd_rhs, bits)
            self.values[extra[1]] = self._plain(rstd.tensor, self._shape(extra[1]), extra[1])
        else:
            rstd = self._emit_tmp(f"{base}_rstd", k_shape, k_lins, rstd_rhs, bits)
        rhs = (f"{xcr} * {self._read(rstd, k_lins)} * "
               f"{self._read(scale, self._align(lins, scale))}")
        if bias is not None:
            rhs += f" + {self._read(bias, self._align(lins, bias))}"
        self._emit(out, x.shape, lins, rhs)

    def _op_BatchNormalization(self, node, attrs) -> None:
        if attrs.get("training_mode", 0):
            self._fail("training_mode=1 is not supported (inference only)")
        x, scale, bias, mean, var = (self._input(node, i) for i in range(5))
        out = node.output[0]
        if len(x.shape) < 2:
            self._fail(f"expected an input [N,C,...], found {list(x.shape)}")
        eps = _attr_float(attrs.get("epsilon", 1e-5))
        size_c = x.shape[1]
        channel_refs = [(x, 1)] + [(v, 0) for v in (scale, bias, mean, var) if v.shape]
        c = self._lin(size_c, channel_refs, "c")
        lins = [c if d == 1 else self._lin(s, [(x, d)], _POSITIONAL[d % 10])
                for d, s in enumerate(x.shape)]
        base, bits = self._tensor_name_hint(out), self._bits(out)

        def per_channel(value):
            return self._read(value, [c][:len(value.shape)])

        a = self._emit_tmp(f"{base}_scale", [size_c], [c],
                           f"{per_channel(scale)} * rsqrt({per_channel(var)} + {_num(eps)})",
                           bits)
        b = self._emit_tmp(f"{base}_shift", [size_c], [c],
                           f"{per_channel(bias)} - {per_channel(mean)} * {per_channel(a)}", bits)
        self._emit(out, x.shape, lins,
                   f"{self._read(x, lins)} * {per_channel(a)} + {per_channel(b)}")

    # ------------------------------------------------------------------ layout ops
    def _is_used(self, onnx_name: str) -> bool:
        return (any(onnx_name in n.input for n in self.graph.node)
                or any(o.name == onnx_name for o in self.graph.output))

    def _alias(self, node, value: _Value) -> None:
        out = node.output[0]
        self.values[out] = replace(value, key=out)

    def _op_Identity(self, node, attrs) -> None:
        self._alias(node, self._input(node, 0))

    def _op_Dropout(self, node, attrs) -> None:
        if len(node.output) > 1 and node.output[1] and self._is_used(node.output[1]):
            self._fail("the mask output is not supported (inference only)")
        if len(node.input) > 2 and node.input[2]:
            training = self._known_value(node.input[2])
            if training is None or bool(np.asarray(training).reshape(-1)[0]):
                self._fail("training_mode must be a constant false (inference only)")
        self._alias(node, self._input(node, 0))

    def _op_Transpose(self, node, attrs) -> None:
        x = self._input(node, 0)
        perm = [int(p) for p in attrs.get("perm", range(len(x.shape) - 1, -1, -1))]
        out = node.output[0]
        self.values[out] = replace(x, key=out, shape=tuple(x.shape[p] for p in perm),
                                   dims=tuple(x.dims[p] for p in perm))

    def _layout_reshape(self, node, new_shape=None) -> None:
        x = self._input(node, 0)
        out = node.output[0]
        if new_shape is None:
            new_shape = self._shape(out)
        self.values[out] = self._reshape(x, new_shape, out)

    def _op_Reshape(self, node, attrs) -> None:
        out = node.output[0]
        shape = self.shapes.get(out)
        if shape is None or None in shape:
            target = self._known_value(node.input[1]) if node.input[1] else None
            if target is None:
                self._fail("the target shape is not known at import")
            x = self._input(node, 0)
            shape = [int(s) for s in np.asarray(target).reshape(-1)]
            if not attrs.get("allowzero", 0):
                shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
            if -1 in shape:
                known = _prod(s for s in shape if s != -1)
                shape[shape.index(-1)] = _prod(x.shape) // known
        self._layout_reshape(node, shape)

    def _op_Flatten(self, node, attrs) -> None:
        x = self._input(node, 0)
        axis = int(attrs.get("axis", 1))
        axis = axis % len(x.shape) if axis < 0 else axis
        self._layout_reshape(node, (_prod(x.shape[:axis]), _prod(x.shape[axis:])))

    def _op_Squeeze(self, node, attrs) -> None:
        self._layout_reshape(node)

    def _op_Unsqueeze(self, node, attrs) -> None:
        self._layout_reshape(node)

    def _op_Concat(self, node, attrs) -> None:
        inputs = [self._val(i) for i in node.input if i]
        out = node.output[0]
        shape = self._shape(out)
        axis = int(attrs["axis"]) % len(shape)
        lins = [None if d == axis else
                self._lin(s, [(v, d) for v in inputs], _POSITIONAL[d % 10])
                for d, s in enumerate(shape)]
        tname = self._tensor_name(out)
        self._declare(tname, shape, self._bits(out), lins)
        offset = 0
        for value in inputs:
            size = value.shape[axis]
            part = self._lin(size, [(value, axis)], _POSITIONAL[axis % 10])
            in_lins = lins[:axis] + [part] + lins[axis + 1:]
            out_lins = lins[:axis] + [part.shift(offset)] + lins[axis + 1:]
            self._write(tname, shape, out_lins, self._read(value, in_lins))
            offset += size
        self.values[out] = self._plain(tname, shape, out)
        self.tensor_of[out] = tname

    # ------------------------------------------------------------------ assembly
    def _is_identity_view(self, value: _Value) -> bool:
        decl = self.tdecl.get(value.tensor)
        atoms = [a for dim in value.dims for a in dim]
        return decl is not None and atoms == [_Atom(s, u, 1) for u, s in enumerate(decl.shape)]

    def _finish(self, name: str) -> OnnxImport:
        renames: dict[str, str] = {}
        outputs: dict[str, str] = {}
        claimed: set[str] = set()
        for out in self.graph.output:
            self.where = f"{self.label}: output {out.name!r}"
            target = self.onnx_names.get(out.name) or _sanitize(out.name)
            if out.name in self.materialized:
                tensor = self.materialized[out.name].tensor
            else:
                value = self._val_raw(out.name)
                tensor = value.tensor
                if not (tensor and tensor in self.written and tensor not in claimed
                        and self._is_identity_view(value)):
                    tname = target if target not in self.tdecl else self._tensor_name(out.name)
                    tensor = self._copy(value, tname, self._bits(out.name)).tensor
                elif (tensor != target and target not in self.tdecl
                      and target not in renames.values()):
                    renames[tensor] = target
            claimed.add(tensor)
            outputs[out.name] = tensor
        self.where = self.label
        lines = list(self.lines)
        tdecl = dict(self.tdecl)
        if renames:
            pattern = re.compile(r"\b([A-Za-z_]\w*)\[")
            lines = [pattern.sub(lambda m: renames.get(m.group(1), m.group(1)) + "[", line)
                     for line in lines]
            tdecl = {renames.get(k, k): v for k, v in tdecl.items()}
        tensors = {k: {"ranks": list(d.ranks), "bits": d.bits}
                   for k, d in tdecl.items() if d.ranks is not None}
        names = {o: renames.get(t, t) for o, t in self.tensor_of.items()
                 if renames.get(t, t) in tensors}
        names.update({o: renames.get(t, t) for o, t in outputs.items()})
        used = {r for spec in tensors.values() for r in spec["ranks"]}
        rank_pattern = re.compile(r"\b([a-z][a-z0-9_]*)\b")
        for line in lines:
            for part in re.findall(r"\[([^\]]*)\]", line):
                used.update(rank_pattern.findall(part))
        ranks = {r: s for r, s in self.ranks.items() if r in used}
        try:
            cascade = Cascade.from_text(lines, ranks, name=name, tensors=tensors)
        except CascadeError as exc:
            raise CascadeError(f"{self.label}: internal error, the imported cascade is "
                               f"invalid: {exc.message}") from None
        cascade.description = f"Imported from {self.label} (opset {self.opset})"
        weights = {renames.get(k, k): v for k, v in self.weights.items() if k in tensors}
        return OnnxImport(cascade, names, weights)
