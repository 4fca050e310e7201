"""Layout ops (views and copies): Identity, Dropout, Transpose, Reshape, Flatten,
Squeeze, Unsqueeze, Concat.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .algebra import POSITIONAL, Value, prod


class ShapeOps:
    """Layout ops, mixed into the importer."""

    # ------------------------------------------------------------------ layout ops
    def _is_used(self, onnx_name: str) -> bool:
        return (any(onnx_name in n.input for n in self.graph.node)
                or any(o.name == onnx_name for o in self.graph.output))

    def _alias(self, node, value: Value) -> None:
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
                known = prod(s for s in shape if s != -1)
                shape[shape.index(-1)] = prod(x.shape) // known
        self._layout_reshape(node, shape)

    def _op_Flatten(self, node, attrs) -> None:
        x = self._input(node, 0)
        axis = int(attrs.get("axis", 1))
        axis = axis % len(x.shape) if axis < 0 else axis
        self._layout_reshape(node, (prod(x.shape[:axis]), prod(x.shape[axis:])))

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
                self._lin(s, [(v, d) for v in inputs], POSITIONAL[d % 10])
                for d, s in enumerate(shape)]
        tname = self._tensor_name(out)
        self._declare(tname, shape, self._bits(out), lins)
        offset = 0
        for value in inputs:
            size = value.shape[axis]
            part = self._lin(size, [(value, axis)], POSITIONAL[axis % 10])
            in_lins = lins[:axis] + [part] + lins[axis + 1:]
            out_lins = lins[:axis] + [part.shift(offset)] + lins[axis + 1:]
            self._write(tname, shape, out_lins, self._read(value, in_lins))
            offset += size
        self.values[out] = self._plain(tname, shape, out)
        self.tensor_of[out] = tname
