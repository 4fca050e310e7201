"""Reading cascades from einsum text and YAML files, and writing them back.

The readers return the constructor arguments of a :class:`~dataflow.cascade.Cascade`
(:func:`cascade_parts_from_text`, :func:`read_cascade_yaml`); ``Cascade.from_text`` and
``Cascade.from_yaml`` (or :func:`dataflow.cascade_from_yaml`) build and validate the cascade.

Cascade YAML format
-------------------
::

    name: attention-3pass                 # required: a name for results and reports
    description: 3-pass softmax attention # optional free text
    ranks: {m: 1024, p: 1024, e: 64, f: 64}   # required: rank name -> size (positive integer)
    default_bits: 16                      # optional: element width of inferred tensors
    tensors:                              # optional: declarations (ranks in dimension order)
      Q:  {ranks: [e, p], bits: 16}
      QK: {ranks: [m, p], bits: 32}
      RM: {ranks: [m1, p], extents: {m1: M1+1}}   # per-tensor extent override (int or sizes)
    einsums:                              # required: the program, in order
      - QK[m,p] = Q[e,p] * K[e,m]
      - GM[p] = max(QK[m,p])
      - {name: sn, text: "SN[m,p] = exp(QK[m,p] - GM[p])"}   # long form with explicit name
    tags:                                 # optional: einsum -> {key: string or integer}
      QK: {role: attention}
    repeats:                              # optional: bodies that stand for `count` instances
      - {name: layers, first: QK, last: AV, count: 32, carry: {AV: Q}}   # carry optional

Rank names are lowercase identifiers; the size of rank ``m1`` is written ``M1`` inside
indices and extents. Tensors that are only ever accessed with plain indices (``A[m,k]``) may be
left undeclared: they are inferred from their first access (ranks = its rank variables, bits =
``default_bits``, 16 unless set). A tensor first accessed with offsets or affine indices must be
declared. Einsum names default to the output tensor's name, then ``RM#2``, ``RM#3`` for later
writers of the same tensor. Unknown keys, duplicate keys, merge keys and values of the wrong
kind are :class:`~dataflow.errors.FormatError` naming file, key path and line; validation errors
of the cascade are :class:`~dataflow.errors.CascadeError` prefixed with ``file:line:``.

See :mod:`dataflow.parse` for the text grammar and :mod:`dataflow.metrics` for op counting.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .einsum import Einsum, Repeat, Tensor
from .errors import CascadeError, FormatError, describe_value, format_key_path
from .parse import parse_einsum
from .yamlio import KeyLines, check_keys, load_yaml_strict, source_label

if TYPE_CHECKING:
    from .cascade import Cascade

__all__ = ["CascadeDocument", "cascade_parts_from_text", "cascade_to_yaml", "default_names",
           "read_cascade_yaml"]

TOP_KEYS = ("name", "description", "ranks", "default_bits", "tensors", "einsums", "tags",
            "repeats")
REPEAT_KEYS = ("name", "first", "last", "count", "carry")
TENSOR_KEYS = ("ranks", "bits", "extents")
EINSUM_KEYS = ("name", "text")


def default_names(einsums) -> list[str]:
    """Return the default name of each einsum in a program: the output tensor's name, then
    ``T#2``, ``T#3``... for later writers of the same tensor ``T``."""
    count: dict[str, int] = {}
    names = []
    for einsum in einsums:
        tensor = einsum.output_tensor
        count[tensor] = count.get(tensor, 0) + 1
        names.append(tensor if count[tensor] == 1 else f"{tensor}#{count[tensor]}")
    return names


def _tensor_from_spec(name: str, spec, default_bits: int) -> Tensor:
    if isinstance(spec, Tensor):
        if spec.name != name:
            raise CascadeError(f"tensors.{name}: declared under key {name!r} but named "
                               f"{spec.name!r}", key_path=("tensors", name))
        return spec
    if not isinstance(spec, dict):
        raise CascadeError(f"tensors.{name}: expected a Tensor or a mapping with ranks, bits, "
                           f"extents, found {describe_value(spec)}", key_path=("tensors", name))
    unknown = [k for k in spec if k not in TENSOR_KEYS]
    if unknown:
        raise CascadeError(f"tensors.{name}.{unknown[0]}: unknown key (keys: "
                           f"{', '.join(TENSOR_KEYS)})", key_path=("tensors", name, unknown[0]))
    if "ranks" not in spec:
        raise CascadeError(f"tensors.{name}: expected a key 'ranks', found none",
                           key_path=("tensors", name))
    return Tensor(name, spec["ranks"], spec.get("bits", default_bits), spec.get("extents"))


def _assemble(name, ranks, tensor_specs, entries, default_bits, description="", tags=None,
              repeats=()):
    """Return a Cascade's constructor arguments from parsed einsum entries [(Einsum, explicit
    name or None)], inferring undeclared tensors. CascadeErrors carry einsum_index or
    key_path."""
    tensors: dict[str, Tensor] = {}
    for tname, spec in (tensor_specs or {}).items():
        tensors[tname] = _tensor_from_spec(tname, spec, default_bits)
    einsums = []
    defaults = default_names(e for e, _ in entries)
    for i, ((einsum, explicit), default) in enumerate(zip(entries, defaults)):
        if einsum.name != (explicit or default):
            einsum = Einsum(explicit or default, einsum.output, einsum.expr, einsum.reduce_op)
        for access in (einsum.output,) + einsum.inputs:
            if access.tensor in tensors:
                continue
            variables = [ix.plain for ix in access.indices]
            if None in variables or len(set(variables)) != len(variables):
                raise CascadeError(
                    f"einsums[{i}] '{einsum.text}': cannot infer the ranks of {access.tensor} "
                    f"from {access}; declare it (tensors: {access.tensor}: {{ranks: [...]}})",
                    einsum_index=i)
            tensors[access.tensor] = Tensor(access.tensor, tuple(variables), default_bits)
        einsums.append(einsum)
    return {"name": name, "ranks": ranks, "tensors": tensors, "einsums": einsums,
            "description": description, "tags": tags, "repeats": repeats}


def cascade_parts_from_text(text_or_lines, ranks: dict, name: str = "cascade",
                            default_bits: int = 16, tensors: dict | None = None, *,
                            tags: dict | None = None, repeats=(),
                            description: str = "") -> dict[str, Any]:
    """Return the constructor arguments of the cascade in einsum text (see
    ``Cascade.from_text``)."""
    lines = text_or_lines.splitlines() if isinstance(text_or_lines, str) else list(text_or_lines)
    entries = []
    for raw in lines:
        line = str(raw).split("#", 1)[0].strip()
        if not line:
            continue
        try:
            entries.append((parse_einsum(line), None))
        except CascadeError as exc:
            raise CascadeError(f"einsums[{len(entries)}] {exc.message}",
                               einsum_index=len(entries)) from None
    return _assemble(name, ranks, tensors, entries, default_bits, description, tags, repeats)


def _int_field(value, what: str, file, path, lines: KeyLines) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise FormatError(file, format_key_path(path), what, describe_value(value),
                          lines.line(path))
    return value


@dataclass(frozen=True)
class CascadeDocument:
    """A cascade file as read: the cascade's constructor arguments (``parts``), the file's
    label for messages and the line of every key, to place a validation error."""

    parts: dict[str, Any]
    file: str
    lines: KeyLines

    def locate(self, exc: CascadeError) -> CascadeError:
        """Return ``exc`` prefixed with ``file:line:`` of the einsum or key it names (a
        FormatError already names its place and is returned as it is)."""
        if isinstance(exc, FormatError):
            return exc
        if exc.einsum_index is not None:
            line = self.lines.line(("einsums", exc.einsum_index))
        elif exc.key_path is not None:
            line = self.lines.line(exc.key_path)
        else:
            line = None
        return exc.with_location(self.file, line)


def read_cascade_yaml(source, filename: str | None = None,
                      ranks_override: dict | None = None) -> CascadeDocument:
    """Read a cascade YAML file or text (format in this module's docstring).

    ``ranks_override`` replaces rank sizes before validation. Raises FormatError for a
    malformed file and CascadeError (prefixed with ``file:line:``) for an einsum whose tensors
    cannot be inferred; ``Cascade.from_yaml`` validates the rest.
    """
    data, lines = load_yaml_strict(source, filename, with_lines=True)
    file = source_label(source, filename)
    check_keys(data, TOP_KEYS, (), lines, file, required=("ranks", "einsums"))
    name, description, default_bits = _read_header(data, file, lines)
    ranks = _read_ranks(data["ranks"], ranks_override, file, lines)
    tensor_specs = _read_tensors(data.get("tensors") or {}, file, lines)
    entries = _read_einsums(data["einsums"], file, lines)
    tags = _read_tags(data.get("tags") or {}, file, lines)
    repeats = _read_repeats(data.get("repeats") or [], file, lines)
    document = CascadeDocument({}, file, lines)
    try:
        parts = _assemble(name, ranks, tensor_specs, entries, default_bits, description,
                          tags, repeats)
    except CascadeError as exc:
        raise document.locate(exc) from None
    return CascadeDocument(parts, file, lines)


def _read_header(data: dict, file, lines: KeyLines) -> tuple[str, str, int]:
    """Return (name, description, default_bits) of a cascade file."""
    name = data.get("name")
    if name is None:
        name = Path(file).stem if file else "cascade"
    if not isinstance(name, str) or not name:
        raise FormatError(file, "name", "a non-empty string", describe_value(name),
                          lines.line(("name",)))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise FormatError(file, "description", "a string", describe_value(description),
                          lines.line(("description",)))
    default_bits = _int_field(data.get("default_bits", 16), "a positive integer (bits)", file,
                              ("default_bits",), lines)
    return name, description, default_bits


def _read_ranks(ranks, ranks_override: dict | None, file, lines: KeyLines) -> dict[str, int]:
    """Return the rank sizes of a cascade file with ``ranks_override`` applied."""
    if not isinstance(ranks, dict) or not ranks:
        raise FormatError(file, "ranks", "a mapping rank name -> size", describe_value(ranks),
                          lines.line(("ranks",)))
    for rank, size in ranks.items():
        if not isinstance(rank, str):
            raise FormatError(file, "ranks", "rank names (strings)", describe_value(rank),
                              lines.line(("ranks", rank)))
        _int_field(size, "a positive integer size", file, ("ranks", rank), lines)
    ranks = dict(ranks)
    for rank, size in (ranks_override or {}).items():
        if rank not in ranks:
            raise CascadeError(f"{file or '<yaml>'}: ranks override: unknown rank {rank!r} "
                               f"(ranks: {', '.join(ranks)})")
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise CascadeError(f"{file or '<yaml>'}: ranks override: {rank} must be a "
                               f"positive integer, found {size!r}")
        ranks[rank] = size
    return ranks


def _read_tensors(specs, file, lines: KeyLines) -> dict:
    """Check the ``tensors`` section's form; return it (name -> declaration mapping)."""
    if not isinstance(specs, dict):
        raise FormatError(file, "tensors", "a mapping tensor name -> declaration",
                          describe_value(specs), lines.line(("tensors",)))
    for name, spec in specs.items():
        path = ("tensors", name)
        if not isinstance(name, str) or not name.isidentifier():
            raise FormatError(file, "tensors", "tensor names (identifiers)",
                              describe_value(name), lines.line(path))
        check_keys(spec, TENSOR_KEYS, path, lines, file, required=("ranks",))
        ranks = spec["ranks"]
        if not isinstance(ranks, list) or not all(isinstance(r, str) for r in ranks):
            raise FormatError(file, format_key_path(path + ("ranks",)), "a list of rank names",
                              describe_value(ranks), lines.line(path + ("ranks",)))
        if "bits" in spec:
            _int_field(spec["bits"], "a positive integer (bits)", file, path + ("bits",), lines)
        if "extents" in spec:
            check_keys(spec["extents"], ranks, path + ("extents",), lines, file)
    return specs


def _read_einsums(items, file, lines: KeyLines) -> list:
    """Parse the ``einsums`` section; return [(Einsum, explicit name or None)]."""
    if not isinstance(items, list) or not items:
        raise FormatError(file, "einsums", "a non-empty list of einsums",
                          describe_value(items), lines.line(("einsums",)))
    entries = []
    for i, item in enumerate(items):
        path = ("einsums", i)
        explicit = None
        if isinstance(item, dict):
            check_keys(item, EINSUM_KEYS, path, lines, file, required=("text",))
            explicit = item.get("name")
            if explicit is not None and (not isinstance(explicit, str) or not explicit):
                raise FormatError(file, format_key_path(path + ("name",)), "a non-empty string",
                                  describe_value(explicit), lines.line(path + ("name",)))
            item = item["text"]
        if not isinstance(item, str):
            raise FormatError(file, format_key_path(path), "an einsum text such as "
                              "'Z[m,n] = A[m,k] * B[k,n]'", describe_value(item),
                              lines.line(path))
        try:
            entries.append((parse_einsum(item), explicit))
        except CascadeError as exc:
            raise CascadeError(f"einsums[{i}] {exc.message}", einsum_index=i) \
                .with_location(file, lines.line(path)) from None
    return entries


def _read_tags(tags, file, lines: KeyLines) -> dict:
    """Check the ``tags`` section's form (einsum -> {key: string or integer}); return it."""
    if not isinstance(tags, dict):
        raise FormatError(file, "tags", "a mapping einsum name -> {key: value}",
                          describe_value(tags), lines.line(("tags",)))
    for einsum, entry in tags.items():
        path = ("tags", einsum)
        if not isinstance(entry, dict):
            raise FormatError(file, format_key_path(path), "a mapping key -> value",
                              describe_value(entry), lines.line(path))
        for key, value in entry.items():
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise FormatError(file, format_key_path(path + (key,)),
                                  "a string or an integer", describe_value(value),
                                  lines.line(path + (key,)))
    return tags


def _read_repeats(items, file, lines: KeyLines) -> list:
    """Parse the ``repeats`` section into :class:`Repeat` s."""
    if not isinstance(items, list):
        raise FormatError(file, "repeats", "a list of {name, first, last, count}",
                          describe_value(items), lines.line(("repeats",)))
    out = []
    for i, item in enumerate(items):
        path = ("repeats", i)
        check_keys(item, REPEAT_KEYS, path, lines, file, required=REPEAT_KEYS[:4])
        for key in ("name", "first", "last"):
            if not isinstance(item[key], str) or not item[key]:
                raise FormatError(file, format_key_path(path + (key,)), "a non-empty string",
                                  describe_value(item[key]), lines.line(path + (key,)))
        count = _int_field(item["count"], "a positive integer", file, path + ("count",), lines)
        carry = item.get("carry") or {}
        if not isinstance(carry, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in carry.items()):
            raise FormatError(file, format_key_path(path + ("carry",)),
                              "a mapping output tensor -> input tensor", describe_value(carry),
                              lines.line(path + ("carry",)))
        out.append(Repeat(item["name"], item["first"], item["last"], count,
                          tuple(carry.items())))
    return out


def _scalar(text) -> str:
    """Return ``text`` as a YAML scalar, quoted only when plain style would change it."""
    text = str(text)
    try:
        if yaml.safe_load(text) == text and "#" not in text and ": " not in text:
            return text
    except yaml.YAMLError:
        pass
    return json.dumps(text)


def _flow_scalar(text) -> str:
    text = str(text)
    if text.isidentifier() and yaml.safe_load(text) == text:
        return text
    return json.dumps(text)


def cascade_to_yaml(cascade: Cascade) -> str:
    """Return YAML text for ``cascade`` (all tensors declared; einsums whose name differs from
    the default are written in the long form)."""
    out = [f"name: {_scalar(cascade.name)}"]
    if cascade.description:
        out.append(f"description: {_scalar(cascade.description)}")
    out.append("ranks: {" + ", ".join(f"{_flow_scalar(r)}: {s}"
                                      for r, s in cascade.ranks.items()) + "}")
    out.append("tensors:")
    for tensor in cascade.tensors.values():
        parts = ["ranks: [" + ", ".join(_flow_scalar(r) for r in tensor.ranks) + "]",
                 f"bits: {tensor.bits}"]
        if tensor.extents:
            parts.append("extents: {" + ", ".join(
                f"{_flow_scalar(r)}: {v if isinstance(v, int) else json.dumps(v)}"
                for r, v in tensor.extents.items()) + "}")
        out.append(f"  {_flow_scalar(tensor.name)}: {{{', '.join(parts)}}}")
    out.append("einsums:")
    for einsum, default in zip(cascade.einsums, default_names(cascade.einsums)):
        if einsum.name == default:
            out.append(f"  - {_scalar(einsum.text)}")
        else:
            out.append(f"  - {{name: {json.dumps(einsum.name)}, text: {json.dumps(einsum.text)}}}")
    if cascade.tags:
        out.append("tags:")
        for einsum, tags in cascade.tags.items():
            items = ", ".join(f"{_flow_scalar(k)}: {v if isinstance(v, int) else _flow_scalar(v)}"
                              for k, v in tags.items())
            out.append(f"  {_flow_scalar(einsum)}: {{{items}}}")
    if cascade.repeats:
        out.append("repeats:")
        for r in cascade.repeats:
            carry = ""
            if r.carry:
                carry = ", carry: {" + ", ".join(f"{_flow_scalar(a)}: {_flow_scalar(b)}"
                                                 for a, b in r.carry) + "}"
            out.append(f"  - {{name: {_flow_scalar(r.name)}, first: {_flow_scalar(r.first)}, "
                       f"last: {_flow_scalar(r.last)}, count: {r.count}{carry}}}")
    return "\n".join(out) + "\n"
