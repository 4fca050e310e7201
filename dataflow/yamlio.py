"""Strict YAML loading shared by cascade files and archsim design files.

:func:`load_yaml_strict` reads YAML with the safe loader and returns plain dicts, lists and
scalars; duplicate keys and merge keys (``<<``) are errors (:class:`FormatError` naming the
file, the key path and both lines). With ``with_lines=True`` it also returns a
:class:`KeyLines` table mapping key paths (tuples such as ``("units", "sa0", "rows")`` or
``("einsums", 2)``) to 1-based line numbers, so loaders can put lines into their errors.

The cascade file format itself is documented in :mod:`dataflow.cascade_io`.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .errors import FormatError, describe_value, format_key_path

__all__ = ["load_yaml_strict", "KeyLines", "yaml_line_of", "check_keys", "source_label"]


class KeyLines(dict):
    """Key path tuple -> 1-based line of that key (or list item) in the YAML text."""

    def line(self, key_path) -> int | None:
        """Return the line of ``key_path`` or of its nearest ancestor present (None if none)."""
        path = tuple(key_path)
        while True:
            if path in self:
                return self[path]
            if not path:
                return None
            path = path[:-1]


def yaml_line_of(lines: KeyLines, key_path) -> int | None:
    """Return the 1-based line of ``key_path`` (or of its nearest ancestor) in ``lines``."""
    return lines.line(key_path)


def _is_path(source) -> bool:
    return isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and (
        source.endswith((".yaml", ".yml")) or os.path.isfile(source)))


def source_label(source, filename: str | None = None) -> str | None:
    """Return the label errors use for ``source``: ``filename`` if given, else the path if
    ``source`` is a path, else None (YAML text)."""
    if filename is not None:
        return str(filename)
    return str(source) if _is_path(source) else None


def _read_source(source, filename: str | None) -> tuple[str, str | None]:
    if _is_path(source):
        path = Path(source)
        label = filename or str(source)
        try:
            return path.read_text(encoding="utf-8"), label
        except FileNotFoundError:
            raise FormatError(label, "", "an existing YAML file", "no such file") from None
        except OSError as exc:
            raise FormatError(label, "", "a readable YAML file", exc.strerror or str(exc)) \
                from None
    if not isinstance(source, str):
        raise FormatError(filename, "", "a path or YAML text", describe_value(source))
    return source, filename


def load_yaml_strict(source, filename: str | None = None, *, with_lines: bool = False):
    """Load one YAML document strictly.

    ``source`` is a path (``str``/``Path``; a string without a newline that names an existing
    file or ends in ``.yaml``/``.yml``) or YAML text; ``filename`` labels errors (defaults to
    the path). Returns the data (plain dicts/lists/scalars; ``None`` for an empty document), or
    ``(data, KeyLines)`` with ``with_lines=True``. Raises :class:`FormatError` on a syntax
    error, a duplicate key or a merge key.
    """
    text, label = _read_source(source, filename)
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise FormatError(label, "", "valid YAML",
                              f"a syntax error ({exc.problem or exc})", line) from None
        except yaml.YAMLError as exc:
            raise FormatError(label, "", "valid YAML",
                              f"a syntax error ({str(exc).splitlines()[0]})") from None
        lines = KeyLines()
        data = None if node is None else _build(loader, node, (), lines, label)
    finally:
        loader.dispose()
    return (data, lines) if with_lines else data


def _build(loader, node, path: tuple, lines: KeyLines, label):
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        first_line: dict = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise FormatError(label, format_key_path(path), "plain keys",
                                  "a merge key '<<' (not supported)", line)
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise FormatError(label, format_key_path(path), "scalar keys",
                                  describe_value(key), line)
            if key in first_line:
                raise FormatError(label, format_key_path(path + (key,)), "each key once",
                                  f"a duplicate at line {line} (first at line "
                                  f"{first_line[key]})", line)
            first_line[key] = line
            lines[path + (key,)] = line
            out[key] = _build(loader, value_node, path + (key,), lines, label)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            items.append(_build(loader, item, path + (i,), lines, label))
        return items
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise FormatError(label, format_key_path(path), "a valid scalar",
                          str(exc).split("\n")[0], node.start_mark.line + 1) from None


def check_keys(mapping, allowed, key_path: tuple, lines: KeyLines | None,
               file: str | None, required=()) -> None:
    """Raise :class:`FormatError` if ``mapping`` is not a dict, has a key outside ``allowed``
    (naming the key's path and line) or lacks a ``required`` key."""
    line_of = (lines.line if lines is not None else (lambda _p: None))
    if not isinstance(mapping, dict):
        raise FormatError(file, format_key_path(key_path), "a mapping",
                          describe_value(mapping), line_of(key_path))
    for key in mapping:
        if key not in allowed:
            raise FormatError(file, format_key_path(key_path + (key,)),
                              f"one of the keys {', '.join(allowed)}",
                              f"unknown key {key!r}", line_of(key_path + (key,)))
    for key in required:
        if key not in mapping:
            raise FormatError(file, format_key_path(key_path), f"a key {key!r}",
                              "none", line_of(key_path))
