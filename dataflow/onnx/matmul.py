"""Contractions: MatMul, Gemm and Conv.
"""

from __future__ import annotations

from .algebra import POSITIONAL, Lin, attr_float, num, sanitize


class MatMulOps:
    """Contractions, mixed into the importer."""

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
        alpha, beta = attr_float(attrs.get("alpha", 1.0)), attr_float(attrs.get("beta", 1.0))
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
            rhs = f"{num(alpha)} * {rhs}"
        if c is not None:
            if c.const is not None:
                rhs += f" + {num(beta * c.const)}"
            else:
                c_read = self._read(c, [m, n][2 - len(c.shape):])
                rhs += f" + {c_read}" if beta == 1.0 else f" + {num(beta)} * {c_read}"
        self._emit(out, shape, [m, n], rhs)

    def _tensor_name_hint(self, onnx_name: str) -> str:
        return self.onnx_names.get(onnx_name) or sanitize(onnx_name)

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
        return letters[-nsp:] if nsp <= len(letters) else POSITIONAL[:nsp]

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
            g = Lin()
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
