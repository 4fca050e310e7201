"""Constant folding: Constant nodes and integer shape computations evaluated at import.
"""

from __future__ import annotations

import numpy as np


class FoldOps:
    """Constant folding, mixed into the importer."""

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
