"""The cascade under construction: names, ranks, tensor declarations and einsum text."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from ..errors import CascadeError
from .algebra import BITS, POSITIONAL, Atom, Decl, Lin, NeedPlain, Value, num, prod, sanitize


class CascadeBuilder:
    """The state of one import and the primitives that write the cascade; the op families are
    mixins on top of it (see :mod:`dataflow.onnx.importer`)."""

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
        self.tdecl: dict[str, Decl] = {}
        self.values: dict[str, Value] = {}
        self.tensor_of: dict[str, str] = {}
        self.written: set[str] = set()
        self.materialized: dict[str, Value] = {}
        self.pads: dict[tuple, Value] = {}
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
        text = sanitize(base)
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
        if type_name not in BITS:
            self._fail(f"tensor {onnx_name!r} has element type {type_name}, which has no "
                       f"bit width here")
        return BITS[type_name]

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

    def _full_rank(self, value: Value, atom: Atom) -> str | None:
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
            raise NeedPlain(structs[-1][0].key)
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

    def _lin(self, size: int, refs, letter: str) -> Lin:
        return Lin.digits(self._digits(size, refs, letter))

    # ------------------------------------------------------------------ text
    def _render(self, lin: Lin) -> str:
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

    def _decompose(self, lin: Lin, atoms) -> list[Lin] | None:
        sizes = [a.size for a in atoms]
        weights = [prod(sizes[i + 1:]) for i in range(len(sizes))]
        parts = [Lin() for _ in atoms]
        for var, coef in lin.terms.items():
            for i, weight in enumerate(weights):
                if coef > 0 and coef % weight == 0 and coef // weight < sizes[i]:
                    parts[i].terms[var] = coef // weight
                    break
            else:
                return None
        if lin.const < 0 or lin.const >= prod(sizes):
            return None
        for i, weight in enumerate(weights):
            parts[i].const = (lin.const // weight) % sizes[i]
        for part, size in zip(parts, sizes):
            high = part.const + sum(c * (self.ranks[v] - 1) for v, c in part.terms.items())
            if high >= size:
                return None
        return parts

    def _read(self, value: Value, lins, letters: str = POSITIONAL) -> str:
        """Return the access text reading ``value`` at the logical indices ``lins`` (one per
        ONNX dimension; ignored for size-1 dimensions)."""
        if value.const is not None:
            return num(value.const)
        decl = self.tdecl[value.tensor]
        forms = [Lin() for _ in decl.shape]
        for dim, atoms in enumerate(value.dims):
            if not atoms:
                continue
            lin = lins[dim]
            if len(atoms) == 1:
                forms[atoms[0].udim] += lin.scale(atoms[0].stride)
                continue
            parts = self._decompose(lin, atoms)
            if parts is None:
                raise NeedPlain(value.key)
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
    def _udim_letter(value: Value, udim: int, letters: str) -> str:
        """The letter of the ONNX dimension that reads underlying dimension ``udim``."""
        for dim, atoms in enumerate(value.dims):
            if any(a.udim == udim for a in atoms):
                return letters[dim % len(letters)]
        return POSITIONAL[udim % 10]

    def _declare(self, tname: str, shape, bits: int, lins, letters: str = POSITIONAL) -> None:
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
        self.tdecl[tname] = Decl(tuple(s for s in shape if s > 1), bits, tuple(ranks))

    def _write(self, tname: str, shape, lins, rhs: str) -> None:
        index = ",".join(self._render(lins[d]) for d, s in enumerate(shape) if s > 1)
        self.lines.append(f"{tname}[{index}] = {rhs}")
        self.written.add(tname)

    @staticmethod
    def _plain(tname: str, shape, key: str) -> Value:
        dims, udim = [], 0
        for size in shape:
            if size > 1:
                dims.append((Atom(size, udim, 1),))
                udim += 1
            else:
                dims.append(())
        return Value(key, tuple(shape), tuple(dims), tname)

    def _emit(self, onnx_out: str, shape, lins, rhs: str, bits: int | None = None) -> Value:
        """Declare the tensor of ONNX value ``onnx_out`` and write it with one einsum."""
        tname = self._tensor_name(onnx_out)
        self._declare(tname, shape, self._bits(onnx_out) if bits is None else bits, lins)
        self._write(tname, shape, lins, rhs)
        value = self._plain(tname, shape, onnx_out)
        self.values[onnx_out] = value
        self.tensor_of[onnx_out] = tname
        return value

    def _emit_tmp(self, hint: str, shape, lins, rhs: str, bits: int) -> Value:
        """Declare and write a helper tensor named after ``hint``."""
        tname = self._fresh_name(hint)
        self._declare(tname, shape, bits, lins)
        self._write(tname, shape, lins, rhs)
        return self._plain(tname, shape, "#" + tname)
