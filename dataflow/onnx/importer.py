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

import os
import re
from dataclasses import dataclass

import numpy as np

from ..cascade import Cascade
from ..errors import CascadeError, FormatError
from .algebra import Atom, NeedPlain, Value, sanitize
from .builder import CascadeBuilder
from .elementwise import ElementwiseOps
from .fold import FoldOps
from .matmul import MatMulOps
from .normalization import NormalizationOps
from .ops import COMPUTE_OPS, FOLD_OPS, LAYOUT_OPS, SUPPORTED_OPS
from .reduce import ReduceOps
from .shape import ShapeOps
from .values import ValueOps

__all__ = ["SUPPORTED_OPS", "OnnxImport", "import_onnx", "import_onnx_detailed"]


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



# ----------------------------------------------------------------------------- the importer

class _Importer(ShapeOps, NormalizationOps, ReduceOps, MatMulOps, ElementwiseOps, FoldOps,
                ValueOps, CascadeBuilder):
    """One import: the cascade builder with every op family mixed in."""

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
        if op in FOLD_OPS and self._foldable(node):
            results = self._fold(node, attrs)
            for out, result in zip(node.output, results):
                if out:
                    self.known[out] = np.asarray(result)
            return
        if op not in COMPUTE_OPS and op not in LAYOUT_OPS:
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
            except NeedPlain as exc:
                self._restore(snap)
                if exc.key in self.force_plain:
                    break
                self.force_plain.add(exc.key)
        self._fail("internal error: cannot lay out the inputs of this node")


    # ------------------------------------------------------------------ assembly
    def _is_identity_view(self, value: Value) -> bool:
        decl = self.tdecl.get(value.tensor)
        atoms = [a for dim in value.dims for a in dim]
        return decl is not None and atoms == [Atom(s, u, 1) for u, s in enumerate(decl.shape)]

    def _finish(self, name: str) -> OnnxImport:
        renames: dict[str, str] = {}
        outputs: dict[str, str] = {}
        claimed: set[str] = set()
        for out in self.graph.output:
            self.where = f"{self.label}: output {out.name!r}"
            target = self.onnx_names.get(out.name) or sanitize(out.name)
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
