"""Pooling and reductions: MaxPool, AveragePool, global pools, ReduceSum/Mean/Max/Min.
"""

from __future__ import annotations

import numpy as np

from .algebra import POSITIONAL, Decl, Lin, Value, num, prod


class ReduceOps:
    """Pooling and reductions, mixed into the importer."""

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
            scale = num(1.0 / counts.flat[0])
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

    def _const_input(self, hint: str, array: np.ndarray, bits: int) -> Value:
        """Return a new constant input tensor (its value goes to the weights)."""
        tname = self._fresh_name(hint)
        cshape = tuple(s for s in array.shape if s > 1)
        self.tdecl[tname] = Decl(cshape, bits, None)
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

    def _reduce(self, node, x: Value, axes, kind: str) -> None:
        """Reduce ``x`` over ``axes`` into the node's output (size-1 dims kept or not)."""
        out = node.output[0]
        shape = self._shape(out)
        lins = [self._lin(s, [(x, d)], POSITIONAL[d % 10]) for d, s in enumerate(x.shape)]
        keep = [d for d in range(len(x.shape)) if d not in axes]
        if len(shape) == len(x.shape):
            out_lins = [lins[d] if d in keep else Lin() for d in range(len(x.shape))]
        else:
            out_lins = [lins[d] for d in keep]
        read = self._read(x, lins)
        count = prod(x.shape[d] for d in axes)
        if kind in ("max", "min"):
            self._emit(out, shape, out_lins, f"{kind}({read})")
        elif kind == "sum" or count == 1:
            self._emit(out, shape, out_lins, f"sum({read})" if count > 1 else read)
        else:
            total = self._emit_tmp(f"{self._tensor_name_hint(out)}_sum", shape, out_lins,
                                   f"sum({read})", self._bits(out))
            self._emit(out, shape, out_lins,
                       f"{self._read(total, out_lins)} * {num(1.0 / count)}")
