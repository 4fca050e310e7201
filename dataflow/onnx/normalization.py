"""Normalizations: Softmax, LayerNormalization, BatchNormalization.
"""

from __future__ import annotations

from .algebra import POSITIONAL, attr_float, num, prod


class NormalizationOps:
    """Normalizations, mixed into the importer."""

    # ------------------------------------------------------------------ normalizations
    def _op_Softmax(self, node, attrs) -> None:
        x = self._input(node, 0)
        out = node.output[0]
        rank = len(x.shape)
        axis = int(attrs.get("axis", -1 if self.opset >= 13 else 1)) % max(1, rank)
        reduced = [axis] if self.opset >= 13 else list(range(axis, rank))
        lins = [self._lin(s, [(x, d)], POSITIONAL[d % 10]) for d, s in enumerate(x.shape)]
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
        eps = attr_float(attrs.get("epsilon", 1e-5))
        lins = self._broadcast(x.shape, [x] + [v for v in (scale, bias) if v is not None])
        keep = list(range(axis))
        k_shape, k_lins = [x.shape[d] for d in keep], [lins[d] for d in keep]
        count = prod(x.shape[axis:])
        base, bits = self._tensor_name_hint(out), self._bits(out)
        xr = self._read(x, lins)
        total = self._emit_tmp(f"{base}_sum", k_shape, k_lins, f"sum({xr})", bits)
        mean_rhs = f"{self._read(total, k_lins)} * {num(1.0 / count)}"
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
        rstd_rhs = f"rsqrt({self._read(var, k_lins)} * {num(1.0 / count)} + {num(eps)})"
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
        eps = attr_float(attrs.get("epsilon", 1e-5))
        size_c = x.shape[1]
        channel_refs = [(x, 1)] + [(v, 0) for v in (scale, bias, mean, var) if v.shape]
        c = self._lin(size_c, channel_refs, "c")
        lins = [c if d == 1 else self._lin(s, [(x, d)], POSITIONAL[d % 10])
                for d, s in enumerate(x.shape)]
        base, bits = self._tensor_name_hint(out), self._bits(out)

        def per_channel(value):
            return self._read(value, [c][:len(value.shape)])

        a = self._emit_tmp(f"{base}_scale", [size_c], [c],
                           f"{per_channel(scale)} * rsqrt({per_channel(var)} + {num(eps)})",
                           bits)
        b = self._emit_tmp(f"{base}_shift", [size_c], [c],
                           f"{per_channel(bias)} - {per_channel(mean)} * {per_channel(a)}", bits)
        self._emit(out, x.shape, lins,
                   f"{self._read(x, lins)} * {per_channel(a)} + {per_channel(b)}")
