"""Index algebra and value types of the ONNX importer: affine indices, views of
cascade tensors, element bits and name sanitizing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import CascadeError
from ..expr import FUNCTIONS


BITS = {
    "FLOAT": 32, "INT32": 32, "UINT32": 32, "FLOAT16": 16, "BFLOAT16": 16, "INT16": 16,
    "UINT16": 16, "FLOAT8E4M3FN": 8, "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8,
    "FLOAT8E8M0": 8, "INT8": 8, "UINT8": 8, "BOOL": 8, "DOUBLE": 64, "INT64": 64, "UINT64": 64,
    "INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2, "COMPLEX64": 64,
    "COMPLEX128": 128,
}
INT_TYPES = ("INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64", "BOOL")
RESERVED = set(FUNCTIONS) | {"inf", "sum"}
POSITIONAL = "abcdefghij"


class Lin:
    """An affine index ``sum(coef * rank) + const`` with integer coefficients."""

    __slots__ = ("const", "terms")

    def __init__(self, terms=None, const: int = 0) -> None:
        self.terms = {v: c for v, c in (terms or {}).items() if c}
        self.const = int(const)

    @classmethod
    def digits(cls, digits) -> Lin:
        """The mixed-radix index of ``[(rank, size), ...]`` (major first)."""
        terms, weight = {}, 1
        for var, size in reversed(digits):
            terms[var] = weight
            weight *= size
        return cls(dict(reversed(list(terms.items()))))

    def __add__(self, other: Lin) -> Lin:
        terms = dict(self.terms)
        for var, coef in other.terms.items():
            terms[var] = terms.get(var, 0) + coef
        return Lin(terms, self.const + other.const)

    def scale(self, factor: int) -> Lin:
        return Lin({v: c * factor for v, c in self.terms.items()}, self.const * factor)

    def shift(self, offset: int) -> Lin:
        return Lin(self.terms, self.const + offset)

    @property
    def plain(self) -> str | None:
        if self.const == 0 and len(self.terms) == 1:
            (var, coef), = self.terms.items()
            return var if coef == 1 else None
        return None


@dataclass(frozen=True)
class Atom:
    """A part of a value's dimension: ``size`` values of underlying dimension ``udim`` spaced
    ``stride`` apart."""

    size: int
    udim: int
    stride: int


@dataclass(frozen=True)
class Value:
    """An ONNX value as seen by the importer: a view of cascade tensor ``tensor`` (or the
    number ``const``). ``dims[d]`` lists the atoms (major first) of ONNX dimension ``d``; a
    size-1 dimension has none; underlying dimensions no atom covers are read at index 0."""

    key: str
    shape: tuple
    dims: tuple
    tensor: str | None = None
    const: float | None = None


@dataclass(frozen=True)
class Decl:
    shape: tuple           # cascade shape (size-1 dims dropped)
    bits: int
    ranks: tuple | None    # None until the first access (graph inputs, weights)


class NeedPlain(Exception):
    """A value's view cannot be read as required: copy it to a plain tensor and retry."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def sanitize(name: str) -> str:
    text = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", str(name))).strip("_") or "t"
    if text[0].isdigit():
        text = "t_" + text
    if text in RESERVED:
        text += "_"
    return text


def num(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        raise CascadeError("a constant is NaN")
    if math.isinf(value):
        text = "inf" if value > 0 else "-inf"
    elif value == int(value) and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = repr(value)
    return f"({text})" if text.startswith("-") else text


def attr_float(value) -> float:
    """An ONNX float attribute (float32) as the shortest decimal that round-trips in float32
    (``1e-05``, not ``9.999999747378752e-06``)."""
    return float(str(np.float32(value)))


def prod(values) -> int:
    return math.prod(int(v) for v in values)
