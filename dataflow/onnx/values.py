"""ONNX values as views of cascade tensors: known constants, inputs, copies, reshapes
and padded copies.
"""

from __future__ import annotations

import numpy as np

from .algebra import INT_TYPES, POSITIONAL, Atom, Decl, Lin, Value, prod


class ValueOps:
    """Value tracking, mixed into the importer."""

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
            return self.onnx.TensorProto.DataType.Name(elem) in INT_TYPES
        return False

    def _val_raw(self, onnx_name: str) -> Value:
        if onnx_name in self.values:
            return self.values[onnx_name]
        if self._is_known(onnx_name):
            array = self._known_value(onnx_name)
            if array.size == 1 and array.dtype.kind in "fiub":
                number = array.reshape(-1)[0]
                if array.dtype in (np.float16, np.float32):
                    number = str(number)          # shortest decimal in the model's precision
                value = Value(onnx_name, tuple(array.shape), ((),) * array.ndim,
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

    def _new_input(self, onnx_name: str, shape) -> Value:
        if 0 in shape:
            self._fail(f"{onnx_name!r} has a dimension of size 0, shape {list(shape)}")
        tname = self._tensor_name(onnx_name)
        self.tdecl[tname] = Decl(tuple(s for s in shape if s > 1), self._bits(onnx_name), None)
        self.tensor_of[onnx_name] = tname
        return self._plain(tname, shape, onnx_name)

    def _val(self, onnx_name: str) -> Value:
        value = self._val_raw(onnx_name)
        if value.key in self.force_plain:
            return self._materialize(value)
        return value

    def _input(self, node, i: int) -> Value | None:
        if len(node.input) > i and node.input[i]:
            return self._val(node.input[i])
        return None

    def _copy(self, value: Value, tname: str, bits: int) -> Value:
        """Copy ``value`` into a new plain tensor ``tname``."""
        lins = [self._lin(s, [(value, d)], POSITIONAL[d % 10])
                for d, s in enumerate(value.shape)]
        self._declare(tname, value.shape, bits, lins)
        self._write(tname, value.shape, lins, self._read(value, lins))
        return self._plain(tname, value.shape, "#" + tname)

    def _value_bits(self, value: Value, fallback: int = 32) -> int:
        return self.tdecl[value.tensor].bits if value.tensor else fallback

    def _materialize(self, value: Value) -> Value:
        if value.key not in self.materialized:
            tname = self._tensor_name(value.key)
            copied = self._copy(value, tname, self._value_bits(value, self._bits(value.key)))
            self.materialized[value.key] = copied
            self.tensor_of[value.key] = tname
        return self.materialized[value.key]

    def _reshape(self, value: Value, new_shape, key: str) -> Value:
        """Return ``value`` viewed with ``new_shape`` (a copy when no view fits)."""
        new_shape = tuple(int(s) for s in new_shape)
        if prod(new_shape) != prod(value.shape):
            self._fail(f"cannot reshape {list(value.shape)} to {list(new_shape)}")
        if value.const is not None:
            return Value(key, new_shape, ((),) * len(new_shape), const=value.const)
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
                        taken.append(Atom(need, atom.udim, atom.stride * rest))
                        queue[0] = Atom(rest, atom.udim, atom.stride)
                        need = 1
                    else:
                        return self._reshape_copy(value, new_shape, groups, key)
                dims[d] = tuple(taken)
        return Value(key, new_shape, tuple(dims), value.tensor)

    def _reshape_copy(self, value: Value, new_shape, groups, key: str) -> Value:
        """Copy ``value`` into a tensor with one dimension per reshape group; view that."""
        lins = [self._lin(s, [(value, d)], POSITIONAL[d % 10])
                for d, s in enumerate(value.shape)]
        group_lins, group_shape = [], []
        for g_old, _ in groups:
            lin, weight = Lin(), 1
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
                dims[d] = (Atom(size, udim, stride),)
                stride *= size
        return Value(key, tuple(new_shape), tuple(dims), tname)

    def _padded(self, value: Value, begin, end, fill: str, lead_lins) -> Value:
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
        full = [Lin({next(ranks): 1}) if s > 1 else Lin() for s in pshape]
        interior = in_lins[:lead] + [in_lins[lead + i].shift(begin[i]) for i in range(nsp)]
        self._write(tname, pshape, interior,
                    self._read(value, in_lins, "nc"[:lead] + self._spatial_letters(nsp, "dhw")))
        strip_vars: dict[int, Lin] = {}
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
