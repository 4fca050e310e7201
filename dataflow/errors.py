"""Error types of the workload language (and of every YAML file archsim reads).

Every message is one human-readable line that says *where* (file and line when known, then an
einsum's text or a key path such as ``tensors.QK.bits``) and *what* (expected versus found).
"""

from __future__ import annotations

__all__ = ["CascadeError", "FormatError", "describe_value", "format_key_path"]


class CascadeError(ValueError):
    """A cascade (or a piece of one) is malformed: syntax, validation or evaluation error.

    The message is a single line. ``einsum_index`` is the position of the offending einsum in
    its cascade when the error is about one einsum (else None); ``key_path`` is the YAML-style
    key path (a tuple) when the error is about a declaration (else None). Loaders use both to
    prefix the message with a file name and line number (see ``with_location``).
    """

    def __init__(self, message: str, *, einsum_index: int | None = None,
                 key_path: tuple | None = None) -> None:
        super().__init__(" ".join(str(message).split("\n")))
        self.einsum_index = einsum_index
        self.key_path = key_path

    @property
    def message(self) -> str:
        """The one-line message (same as ``str(self)``)."""
        return str(self.args[0]) if self.args else ""

    def with_location(self, file: str | None, line: int | None = None) -> "CascadeError":
        """Return a copy of this error whose message starts with ``file:line: ``."""
        where = _location(file, line)
        message = f"{where}: {self.message}" if where else self.message
        return CascadeError(message, einsum_index=self.einsum_index, key_path=self.key_path)

    def __reduce__(self):
        return (_rebuild_cascade_error, (type(self), self.message, self.einsum_index,
                                         self.key_path))


def _rebuild_cascade_error(cls, message, einsum_index, key_path):
    return cls(message, einsum_index=einsum_index, key_path=key_path)


class FormatError(CascadeError):
    """A YAML file (cascade or design) has a value of the wrong form.

    Attributes: ``file`` (str or None), ``key_path`` (dotted text such as ``units.sa0.rows``;
    list items are written ``einsums[2]``), ``expected`` and ``found`` (human-readable
    descriptions; use :func:`describe_value` to describe a value), ``line`` (1-based or None).
    ``str()`` reads ``designs/npu.yaml:12: units.sa0.rows: expected a positive integer,
    found 'abc'``.
    """

    def __init__(self, file: str | None, key_path, expected: str, found: str,
                 line: int | None = None) -> None:
        path_text = key_path if isinstance(key_path, str) else format_key_path(key_path or ())
        self.file = None if file is None else str(file)
        self.expected = expected
        self.found = found
        self.line = line
        where = _location(self.file, line) or "<yaml>"
        body = f"expected {expected}, found {found}"
        message = f"{where}: {path_text}: {body}" if path_text else f"{where}: {body}"
        super().__init__(message, key_path=None)
        self.key_path = path_text

    def __reduce__(self):
        return (FormatError, (self.file, self.key_path, self.expected, self.found, self.line))


def _location(file: str | None, line: int | None) -> str:
    if file is None and line is None:
        return ""
    if file is None:
        return f"line {line}"
    return f"{file}:{line}" if line is not None else str(file)


def format_key_path(path) -> str:
    """Return a key path tuple as text: ``('units', 'sa0', 'rows')`` -> ``units.sa0.rows``,
    integers become list subscripts: ``('einsums', 2)`` -> ``einsums[2]``."""
    out = ""
    for key in path:
        if isinstance(key, int) and not isinstance(key, bool):
            out += f"[{key}]"
        else:
            out += ("." if out else "") + str(key)
    return out


def describe_value(value) -> str:
    """Return a short human-readable description of a YAML value for error messages:
    ``'abc'`` for a string, ``3.5`` for a number, ``a list`` / ``a mapping`` / ``nothing``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"
