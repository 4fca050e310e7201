"""The cascade: rank sizes, tensors and einsums in program order, validated on construction.

Semantics: einsums run in program order; every tensor element is written once (single
assignment). A tensor may be written by several einsums that cover different elements (an
*init* ``RM[0,p] = -inf`` and an *update* ``RM[m1+1,p] = max(RM[m1,p], LM[m1,p])``). An einsum
may read elements that a *later* einsum writes only inside a recurrence: a group of einsums
that is cyclic through such loop-carried reads and advances along one rank (``m1`` above). The
group runs as a loop over that rank (see :meth:`Cascade.recurrences`).
"""

from __future__ import annotations

import math

from .affine import is_rank_name, size_name
from .cascade_io import (CascadeDocument, cascade_parts_from_text, cascade_to_yaml,
                         read_cascade_yaml)
from .dependencies import Recurrence, analyze_dependencies
from .einsum import Einsum, Repeat, Tensor
from .errors import CascadeError
from .expr import Access
from .index_text import parse_index
from .metrics import Contraction

__all__ = ["Cascade", "Recurrence", "Contraction", "ReadOnlyDict", "Repeat", "cascade_from_text",
           "cascade_from_yaml"]


class ReadOnlyDict(dict):
    """A dict that refuses changes (a cascade's ``ranks`` and ``tensors``: its analyses are
    cached, so change sizes with ``Cascade.with_ranks`` instead). JSON-serializable."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("a cascade's ranks and tensors are read-only; build a new cascade "
                        "(e.g. Cascade.with_ranks(m=64))")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self):
        return (ReadOnlyDict, (dict(self),))


class Cascade:
    """A validated einsum cascade.

    ``ranks`` maps rank names to sizes (positive integers), ``tensors`` maps names to
    :class:`Tensor` (both kept as read-only dicts), ``einsums`` is the program (kept as a
    tuple). ``source`` (optional, e.g. a file name) prefixes error messages; ``description``
    is free text (not compared). ``tags`` maps einsum names to ``{key: str|int}`` annotations
    that builders attach and device models read (``role: allreduce``, ``layer: attn``);
    ``repeats`` is a sequence of :class:`Repeat` bodies. Construction raises :class:`CascadeError` on any
    inconsistency; the object is then immutable and its analyses are cached.
    """

    def __init__(self, name: str, ranks: dict, tensors: dict, einsums, *,
                 source: str | None = None, description: str = "",
                 tags: dict | None = None, repeats=()) -> None:
        self.name = str(name)
        self.description = description
        self.ranks = ReadOnlyDict(ranks)
        self.tensors = ReadOnlyDict(tensors)
        self.einsums = tuple(einsums)
        self.tags = ReadOnlyDict({k: ReadOnlyDict(v) if isinstance(v, dict) else v
                                  for k, v in (tags or {}).items()})
        self.repeats = tuple(repeats)
        self.source = source
        self._cache: dict = {}
        try:
            self._validate()
        except CascadeError as exc:
            raise exc.with_location(source) if source else exc

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_text(cls, text_or_lines, ranks: dict, name: str = "cascade",
                  default_bits: int = 16, tensors: dict | None = None, *,
                  tags: dict | None = None, repeats=(), description: str = "") -> "Cascade":
        """Return a cascade from einsum text: one einsum per line (a string or a list of
        lines; blank lines and ``#`` comments are ignored). Undeclared tensors are inferred
        from their first access (its plain rank variables, ``default_bits``); ``tensors`` maps
        names to :class:`Tensor` or to ``{ranks, bits, extents}`` dicts; ``tags`` and
        ``repeats`` are as in the constructor."""
        return cls(**cascade_parts_from_text(text_or_lines, ranks, name=name,
                                             default_bits=default_bits, tensors=tensors,
                                             tags=tags, repeats=repeats, description=description))

    @classmethod
    def from_yaml(cls, source, filename: str | None = None,
                  ranks_override: dict | None = None) -> "Cascade":
        """Return the cascade described by a YAML file (path) or YAML text; see
        :mod:`dataflow.cascade_io` for the format. ``ranks_override`` replaces rank sizes
        before validation. Raises FormatError for a malformed file and CascadeError (prefixed
        with ``file:line:``) for an invalid cascade."""
        document: CascadeDocument = read_cascade_yaml(source, filename, ranks_override)
        try:
            cascade = cls(**document.parts)
        except CascadeError as exc:
            raise document.locate(exc) from None
        cascade.source = document.file
        return cascade

    def to_yaml(self) -> str:
        """Return this cascade as YAML text that :meth:`from_yaml` reads back equal."""
        return cascade_to_yaml(self)

    def with_ranks(self, **sizes: int) -> "Cascade":
        """Return a copy with some rank sizes replaced (validated anew)."""
        unknown = [r for r in sizes if r not in self.ranks]
        if unknown:
            raise CascadeError(f"unknown rank {unknown[0]!r} (ranks: {', '.join(self.ranks)})")
        return Cascade(self.name, {**self.ranks, **sizes}, dict(self.tensors), self.einsums,
                       source=self.source, description=self.description,
                       tags=self.tags, repeats=self.repeats)

    # ------------------------------------------------------------------ equality / display
    def __eq__(self, other) -> bool:
        if not isinstance(other, Cascade):
            return NotImplemented
        return (self.name == other.name and dict(self.ranks) == dict(other.ranks)
                and dict(self.tensors) == dict(other.tensors) and self.einsums == other.einsums
                and self._plain_tags() == other._plain_tags() and self.repeats == other.repeats)

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.ranks.items()), tuple(self.tensors.values()),
                     self.einsums, self.repeats))

    def _plain_tags(self) -> dict:
        return {k: dict(v) for k, v in self.tags.items()}

    def __repr__(self) -> str:
        return (f"Cascade({self.name!r}, {len(self.einsums)} einsums, "
                f"ranks={dict(self.ranks)})")

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        for rank, size in self.ranks.items():
            if not is_rank_name(rank):
                raise CascadeError(f"ranks: rank names must be lowercase identifiers, found "
                                   f"{rank!r}", key_path=("ranks",))
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise CascadeError(f"ranks.{rank}: expected a positive integer size, found "
                                   f"{size!r}", key_path=("ranks", rank))
        self._sizes = {size_name(r): s for r, s in self.ranks.items()}
        self._shapes: dict[str, tuple[int, ...]] = {}
        for key, tensor in self.tensors.items():
            if not isinstance(tensor, Tensor):
                raise CascadeError(f"tensors.{key}: expected a Tensor, found {tensor!r}",
                                   key_path=("tensors", key))
            if tensor.name != key:
                raise CascadeError(f"tensors.{key}: declared under key {key!r} but named "
                                   f"{tensor.name!r}", key_path=("tensors", key))
            self._shapes[key] = self._tensor_shape(tensor)

        self._index: dict[str, int] = {}
        for i, einsum in enumerate(self.einsums):
            if not isinstance(einsum, Einsum):
                raise CascadeError(f"einsums[{i}]: expected an Einsum, found {einsum!r}",
                                   einsum_index=i)
            if einsum.name in self._index:
                first = self._index[einsum.name]
                raise CascadeError(f"einsums[{i}] '{einsum.text}': duplicate einsum name "
                                   f"{einsum.name!r} (also einsums[{first}])", einsum_index=i)
            self._index[einsum.name] = i

        # Per einsum: inclusive (low, high) range of every dimension of every access.
        self._boxes: list[dict[Access, tuple[tuple[int, int], ...]]] = []
        for i, einsum in enumerate(self.einsums):
            try:
                self._boxes.append(self._check_einsum(einsum))
            except CascadeError as exc:
                raise CascadeError(f"einsums[{i}] '{einsum.text}': {exc.message}",
                                   einsum_index=i) from None
        self._build_dependencies()
        self._validate_annotations()

    def _validate_annotations(self) -> None:
        """Check tags (einsum -> {key: str|int}) and repeats (contiguous, disjoint bodies)."""
        for einsum, tags in self.tags.items():
            if einsum not in self._index:
                raise CascadeError(f"tags.{einsum}: no einsum named {einsum!r}",
                                   key_path=("tags", einsum))
            if not isinstance(tags, dict):
                raise CascadeError(f"tags.{einsum}: expected a mapping key -> value, found "
                                   f"{tags!r}", key_path=("tags", einsum))
            for key, value in tags.items():
                if not isinstance(key, str) or isinstance(value, bool) or \
                        not isinstance(value, (str, int)):
                    raise CascadeError(f"tags.{einsum}.{key}: expected a string or integer "
                                       f"value, found {value!r}", key_path=("tags", einsum, key))
        self._repeat_of: dict[str, Repeat] = {}
        for i, rep in enumerate(self.repeats):
            where = ("repeats", i)
            if not isinstance(rep, Repeat):
                raise CascadeError(f"repeats[{i}]: expected a Repeat, found {rep!r}",
                                   key_path=where)
            for end in (rep.first, rep.last):
                if end not in self._index:
                    raise CascadeError(f"repeats[{i}] {rep.name!r}: no einsum named {end!r}",
                                       key_path=where)
            lo, hi = self._index[rep.first], self._index[rep.last]
            if lo > hi:
                raise CascadeError(f"repeats[{i}] {rep.name!r}: first einsum {rep.first!r} "
                                   f"comes after last einsum {rep.last!r}", key_path=where)
            if isinstance(rep.count, bool) or not isinstance(rep.count, int) or rep.count < 1:
                raise CascadeError(f"repeats[{i}] {rep.name!r}: count must be a positive "
                                   f"integer, found {rep.count!r}", key_path=where)
            written = {e.output_tensor for e in self.einsums[lo:hi + 1]}
            read = {t for e in self.einsums[lo:hi + 1] for t in e.input_tensors}
            for pair in rep.carry:
                if len(pair) != 2 or pair[0] not in written or pair[1] not in read \
                        or pair[1] in written:
                    raise CascadeError(
                        f"repeats[{i}] {rep.name!r}: carry {pair!r} must pair a tensor the "
                        f"body writes with one it reads but does not write", key_path=where)
                if self._shapes[pair[0]] != self._shapes[pair[1]]:
                    raise CascadeError(
                        f"repeats[{i}] {rep.name!r}: carry {pair[0]} {self._shapes[pair[0]]} "
                        f"and {pair[1]} {self._shapes[pair[1]]} differ in shape", key_path=where)
            for einsum in self.einsums[lo:hi + 1]:
                if einsum.name in self._repeat_of:
                    raise CascadeError(f"repeats[{i}] {rep.name!r}: einsum {einsum.name!r} is "
                                       f"already in repeat "
                                       f"{self._repeat_of[einsum.name].name!r}", key_path=where)
                self._repeat_of[einsum.name] = rep

    def _tensor_shape(self, tensor: Tensor) -> tuple[int, ...]:
        shape = []
        overrides = tensor.extents or {}
        for rank in tensor.ranks:
            where = f"tensors.{tensor.name}"
            if rank in overrides:
                extent = overrides[rank]
                if isinstance(extent, str):
                    try:
                        index = parse_index(extent)
                    except CascadeError as exc:
                        raise CascadeError(f"{where}.extents.{rank}: {exc.message}",
                                           key_path=("tensors", tensor.name, "extents", rank))
                    if index.terms:
                        raise CascadeError(
                            f"{where}.extents.{rank}: extent {extent!r} uses rank variable "
                            f"{index.terms[0][0]!r}; only sizes (uppercase) are allowed",
                            key_path=("tensors", tensor.name, "extents", rank))
                    try:
                        _, extent = index.resolve(self._sizes)
                    except CascadeError as exc:
                        raise CascadeError(f"{where}.extents.{rank}: {exc.message}",
                                           key_path=("tensors", tensor.name, "extents", rank))
                if extent <= 0:
                    raise CascadeError(f"{where}.extents.{rank}: expected a positive extent, "
                                       f"found {overrides[rank]!r} = {extent}",
                                       key_path=("tensors", tensor.name, "extents", rank))
                shape.append(int(extent))
            elif rank in self.ranks:
                shape.append(self.ranks[rank])
            else:
                raise CascadeError(f"{where}.ranks: unknown rank {rank!r} "
                                   f"(ranks: {', '.join(self.ranks)})",
                                   key_path=("tensors", tensor.name, "ranks"))
        return tuple(shape)

    def _check_einsum(self, einsum: Einsum) -> dict:
        for var in einsum.rank_vars():
            if var not in self.ranks:
                raise CascadeError(f"unknown rank {var!r} (ranks: {', '.join(self.ranks)})")
        extents = {v: self.ranks[v] for v in einsum.rank_vars()}
        boxes = {}
        for access in (einsum.output,) + einsum.inputs:
            tensor = self.tensors.get(access.tensor)
            if tensor is None:
                declared = ", ".join(self.tensors) or "none"
                raise CascadeError(f"tensor {access.tensor!r} is not declared "
                                   f"(tensors: {declared})")
            if len(access.indices) != len(tensor.ranks):
                raise CascadeError(
                    f"{access} has {len(access.indices)} indices but {tensor.name} has "
                    f"{len(tensor.ranks)} ranks ({', '.join(tensor.ranks) or 'a scalar'})")
            shape = self._shapes[tensor.name]
            box = []
            for dim, (index, extent) in enumerate(zip(access.indices, shape)):
                low, high = index.value_range(self._sizes, extents)
                if low < 0 or high >= extent:
                    raise CascadeError(
                        f"index '{index}' of {access} (rank {tensor.ranks[dim]} of "
                        f"{tensor.name}) ranges over [{low}, {high}] but the extent is "
                        f"{extent}")
                box.append((low, high))
            boxes[access] = tuple(box)
        if not _one_to_one(einsum.output.indices, self._sizes, extents):
            raise CascadeError(f"output {einsum.output} is not one-to-one: several iteration "
                               f"points would write the same element of {einsum.output_tensor}")
        return boxes

    def _build_dependencies(self) -> None:
        """Compute writers/readers, dependencies and the execution schedule (raises
        CascadeError for reads before writes and for cycles that are not recurrences)."""
        deps = analyze_dependencies(self.einsums, self._boxes, self._sizes)
        self._writers, self._readers = deps.writers, deps.readers
        self._forward, self._carried = deps.forward, deps.carried
        self._schedule = deps.schedule

    # ------------------------------------------------------------------ structure queries
    def einsum(self, name: str) -> Einsum:
        """Return the einsum called ``name`` (CascadeError listing the names if unknown)."""
        try:
            return self.einsums[self._index[name]]
        except KeyError:
            raise CascadeError(f"cascade {self.name!r} has no einsum {name!r} (einsums: "
                               f"{', '.join(self._index)})") from None

    def _tensor(self, name: str) -> Tensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise CascadeError(f"cascade {self.name!r} has no tensor {name!r} (tensors: "
                               f"{', '.join(self.tensors)})") from None

    def shape(self, tensor: str) -> tuple[int, ...]:
        """Return the extent (elements) of each dimension of ``tensor``."""
        self._tensor(tensor)
        return self._shapes[tensor]

    def tensor_bytes(self, tensor: str) -> int:
        """Return the size of ``tensor`` in bytes: ceil(elements * bits / 8)."""
        bits = self._tensor(tensor).bits
        return -(-math.prod(self._shapes[tensor]) * bits // 8)

    def inputs(self) -> list[str]:
        """Return the tensors read but never written, in order of first appearance."""
        return [t for t in self._appearance_order() if t not in self._writers]

    def outputs(self) -> list[str]:
        """Return the tensors written and never read except by their own writers, in order
        of first write."""
        return [t for t in self._write_order() if not self._read_by_others(t)]

    def intermediates(self) -> list[str]:
        """Return the tensors written and read by einsums that don't write them, in order of
        first write."""
        return [t for t in self._write_order() if self._read_by_others(t)]

    def _appearance_order(self) -> list[str]:
        seen: dict[str, None] = {}
        for einsum in self.einsums:
            for t in einsum.input_tensors:
                seen.setdefault(t, None)
            seen.setdefault(einsum.output_tensor, None)
        return list(seen)

    def _write_order(self) -> list[str]:
        return list(dict.fromkeys(e.output_tensor for e in self.einsums))

    def _read_by_others(self, tensor: str) -> bool:
        writers = set(self._writers.get(tensor, ()))
        return any(r not in writers for r in self._readers.get(tensor, ()))

    def producers(self, tensor: str) -> list[str]:
        """Return the names of the einsums writing ``tensor`` (program order)."""
        self._tensor(tensor)
        return [self.einsums[i].name for i in self._writers.get(tensor, ())]

    def consumers(self, tensor: str) -> list[str]:
        """Return the names of the einsums reading ``tensor`` (program order)."""
        self._tensor(tensor)
        return [self.einsums[i].name for i in self._readers.get(tensor, ())]

    def iteration_space(self, einsum_name: str) -> dict[str, int]:
        """Return rank variable -> number of values it takes (its rank size) for an einsum."""
        einsum = self.einsum(einsum_name)
        return {v: self.ranks[v] for v in einsum.rank_vars()}

    def points(self, einsum_name: str) -> int:
        """Return the number of points of the einsum's iteration space."""
        return math.prod(self.iteration_space(einsum_name).values())

    def dag(self):
        """Return a ``networkx.DiGraph``: nodes are einsum names (attribute ``einsum``); an
        edge u -> v (attribute ``tensors``: list of names) when v reads elements of a tensor
        that u, earlier in program order, writes. Loop-carried reads inside a recurrence
        (see :meth:`recurrences`) are not edges, so the graph is acyclic; an init einsum has
        an edge to the update that reads it."""
        import networkx as nx
        graph = nx.DiGraph()
        for einsum in self.einsums:
            graph.add_node(einsum.name, einsum=einsum)
        for (u, v), tensors in sorted(self._forward.items()):
            graph.add_edge(self.einsums[u].name, self.einsums[v].name,
                           tensors=list(dict.fromkeys(tensors)))
        return graph

    def topological_order(self) -> list[str]:
        """Return einsum names in program order (always a topological order of :meth:`dag`)."""
        return [e.name for e in self.einsums]

    def recurrences(self) -> list[Recurrence]:
        """Return the recurrence groups (loops over a rank), in execution order."""
        out = []
        for members, rank in self._schedule:
            if rank is None:
                continue
            carried = {t for (u, v), ts in self._carried.items()
                       if u in members and v in members for t in ts}
            out.append(Recurrence(tuple(self.einsums[i].name for i in members), rank,
                                  tuple(t for t in self._write_order() if t in carried)))
        return out

    def passes(self, tensor: str, rank: str) -> int:
        """Return the number of passes over the ``rank`` fibers of ``tensor`` (see
        :func:`dataflow.passes.passes`)."""
        from .passes import passes
        return passes(self, tensor, rank)

    def schedule(self) -> list[tuple[tuple[str, ...], str | None]]:
        """Return the execution order used by ``evaluate``: a list of ``(einsum names, loop
        rank)``; the rank is None for a single einsum run over its whole iteration space."""
        return [(tuple(self.einsums[i].name for i in members), rank)
                for members, rank in self._schedule]

    # ------------------------------------------------------------------ annotations
    def tag(self, einsum_name: str, key: str, default=None):
        """Return tag ``key`` of an einsum (e.g. ``role``: ``allreduce``), or ``default``."""
        tags = self.tags.get(einsum_name)
        return default if tags is None else tags.get(key, default)

    def repeat_of(self, einsum_name: str) -> Repeat | None:
        """Return the :class:`Repeat` whose body holds the einsum, or None."""
        self.einsum(einsum_name)
        return self._repeat_of.get(einsum_name)

    def multiplicity(self, einsum_name: str) -> int:
        """Return how many times the einsum runs in the whole workload (its repeat's count,
        else 1)."""
        rep = self.repeat_of(einsum_name)
        return rep.count if rep else 1

    def repeat_body(self, repeat: Repeat) -> tuple[str, ...]:
        """Return the names of the einsums in a repeat's body, in program order."""
        lo, hi = self._index[repeat.first], self._index[repeat.last]
        return tuple(e.name for e in self.einsums[lo:hi + 1])

    # ------------------------------------------------------------------ metrics
    def ops(self, einsum_name: str) -> dict[str, int]:
        """Return the operations of an einsum by kind (``mac add mul max exp div sqrt``; zero
        counts omitted); see :func:`dataflow.metrics.einsum_ops` for the counting rules."""
        from .metrics import einsum_ops
        return dict(self._cached(("ops", einsum_name), lambda: einsum_ops(self, einsum_name)))

    def total_ops(self, einsum_name: str) -> int:
        """Return the total number of operations of an einsum (a mac counts as one)."""
        return sum(self.ops(einsum_name).values())

    def einsum_bytes(self, einsum_name: str) -> tuple[int, int]:
        """Return ``(read_bytes, write_bytes)``: bytes of the distinct input elements the
        einsum touches (per input tensor) and of the output elements it writes."""
        from .metrics import einsum_bytes
        return self._cached(("bytes", einsum_name), lambda: einsum_bytes(self, einsum_name))

    def einsum_tensor_bytes(self, einsum_name: str) -> dict[str, tuple[int, int]]:
        """Return tensor -> ``(read_bytes, write_bytes)`` of one einsum (see
        :meth:`einsum_bytes`; the sums over tensors equal it)."""
        from .metrics import einsum_tensor_bytes
        return dict(self._cached(("tensor_bytes", einsum_name),
                                 lambda: einsum_tensor_bytes(self, einsum_name)))

    def op_per_byte(self, einsum_name: str) -> float:
        """Return operational intensity in operations per byte: total_ops / (read + write
        bytes)."""
        read_bytes, write_bytes = self.einsum_bytes(einsum_name)
        return self.total_ops(einsum_name) / (read_bytes + write_bytes)

    def flops(self, einsum_name: str) -> int:
        """Return floating-point operations of an einsum: 2 per multiply-accumulate, 1 per
        other operation (the convention of FLOP counts and roofline op/B figures)."""
        ops = self.ops(einsum_name)
        return sum(ops.values()) + ops.get("mac", 0)

    def flop_per_byte(self, einsum_name: str) -> float:
        """Return FLOPs per byte of distinct data read and written (the op/B of roofline
        plots and of Duplex's placement rule)."""
        read_bytes, write_bytes = self.einsum_bytes(einsum_name)
        return self.flops(einsum_name) / (read_bytes + write_bytes)

    def contraction(self, einsum_name: str) -> Contraction | None:
        """Return the GEMM view of an einsum (a :class:`Contraction`) or None when it is not
        a two-operand product reduced with ``+`` over at least one shared rank. Operands may
        be read through views: slices (``X[t+64,d]``), split ranks (``K[e,m1*M0+m0]``) and
        sliding windows (``X[c,y*2+ky]``, im2col); each rank variable once per access."""
        from .metrics import einsum_contraction
        return self._cached(("gemm", einsum_name),
                            lambda: einsum_contraction(self, einsum_name))

    def summary(self) -> str:
        """Return a text table: per einsum the points, operations by kind, total operations,
        read/write bytes and op/B, and a total row."""
        from .metrics import summary_table
        return summary_table(self)

    def evaluate(self, inputs: dict) -> dict:
        """Run the cascade in float64 NumPy; return every tensor's value (name -> array)."""
        from .evaluate import evaluate
        return evaluate(self, inputs)

    def _cached(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


def _one_to_one(indices, sizes: dict[str, int], extents: dict[str, int]) -> bool:
    """True if distinct values of the variables give distinct index tuples (a sufficient
    test: repeatedly find a dimension whose not-yet-determined variables have mixed-radix
    coefficients, i.e. each |coefficient| exceeds the span of the smaller ones)."""
    forms = [index.resolve(sizes)[0] for index in indices]
    variables = {v for form in forms for v in form}
    determined = {v for v in variables if extents[v] == 1}
    progress = True
    while progress and determined != variables:
        progress = False
        for form in forms:
            free = sorted(((abs(c), v) for v, c in form.items() if v not in determined))
            if not free:
                continue
            span = 0
            for coef, var in free:
                if coef <= span:
                    break
                span += coef * (extents[var] - 1)
            else:
                determined.update(v for _, v in free)
                progress = True
    return determined == variables


def cascade_from_text(text_or_lines, ranks: dict, name: str = "cascade",
                      default_bits: int = 16, tensors: dict | None = None, *,
                      tags: dict | None = None, repeats=(), description: str = "") -> Cascade:
    """Return a cascade from einsum text (see :meth:`Cascade.from_text`)."""
    return Cascade.from_text(text_or_lines, ranks, name, default_bits, tensors, tags=tags,
                             repeats=repeats, description=description)


def cascade_from_yaml(source, filename: str | None = None,
                      ranks_override: dict | None = None) -> Cascade:
    """Return the cascade in a YAML file or text (see :meth:`Cascade.from_yaml`)."""
    return Cascade.from_yaml(source, filename, ranks_override)
