"""Affine index expressions over rank variables, with coefficients over rank sizes.

A rank is named by a lowercase identifier (``m``, ``m1``); its *size* is written in upper case
(``M``, ``M1``). An index expression is affine in the rank variables; its coefficients and its
constant are integer polynomials in the sizes, so ``m1*M0+m0``, ``m1+1``, ``M1`` and ``0`` are
all valid and are resolved to plain integers once the sizes are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .errors import CascadeError

__all__ = ["IndexExpr", "Poly", "poly_const", "poly_eval", "poly_text", "is_rank_name",
           "is_size_name", "size_name"]

# A polynomial in size names: ((monomial, coefficient), ...) where a monomial is a sorted tuple
# of size names (() is the constant monomial). Sorted with the constant last; no zero terms.
Poly = tuple


def is_rank_name(name: str) -> bool:
    """Return True if ``name`` is a valid rank name (lowercase identifier, e.g. ``m1``)."""
    return (isinstance(name, str) and name[:1].isalpha() and name.isidentifier()
            and name == name.lower() and name[:1].islower())


def is_size_name(name: str) -> bool:
    """Return True if ``name`` is a valid rank size name (uppercase identifier, e.g. ``M1``)."""
    return (isinstance(name, str) and name[:1].isalpha() and name.isidentifier()
            and name == name.upper() and name[:1].isupper())


def size_name(rank: str) -> str:
    """Return the size name of a rank: ``m1`` -> ``M1``."""
    return rank.upper()


def _poly_key(item):
    mono = item[0]
    return (len(mono) == 0, mono)


def _normalize(terms: dict) -> Poly:
    return tuple(sorted(((m, c) for m, c in terms.items() if c != 0), key=_poly_key))


@lru_cache(maxsize=256)
def poly_const(value: int) -> Poly:
    """Return the constant polynomial ``value``."""
    value = int(value)
    return (((), value),) if value else ()


def poly_size(name: str) -> Poly:
    """Return the polynomial consisting of one size name."""
    return ((( name,), 1),)


def poly_add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    """Return ``a + sign*b``."""
    terms = dict(a)
    for mono, coef in b:
        terms[mono] = terms.get(mono, 0) + sign * coef
    return _normalize(terms)


def poly_mul(a: Poly, b: Poly) -> Poly:
    """Return ``a * b``."""
    terms: dict = {}
    for ma, ca in a:
        for mb, cb in b:
            mono = tuple(sorted(ma + mb))
            terms[mono] = terms.get(mono, 0) + ca * cb
    return _normalize(terms)


def poly_eval(poly: Poly, sizes: dict[str, int]) -> int:
    """Return the integer value of ``poly`` with ``sizes`` (size name -> int).

    Raises KeyError(name) for an unknown size name.
    """
    total = 0
    for mono, coef in poly:
        value = coef
        for name in mono:
            value *= sizes[name]
        total += value
    return total


def poly_names(poly: Poly) -> tuple[str, ...]:
    """Return the size names used by ``poly``, in sorted order."""
    return tuple(sorted({n for mono, _ in poly for n in mono}))


def _mono_text(mono: tuple, coef: int) -> str:
    """Text of ``coef*mono`` with coef > 0."""
    parts = ([str(coef)] if coef != 1 or not mono else []) + list(mono)
    return "*".join(parts)


def poly_text(poly: Poly) -> str:
    """Return the canonical text of a polynomial (``0`` when empty), e.g. ``M1+1``."""
    if not poly:
        return "0"
    out = ""
    for mono, coef in poly:
        body = _mono_text(mono, abs(coef))
        if not out:
            out = ("-" if coef < 0 else "") + body
        else:
            out += ("-" if coef < 0 else "+") + body
    return out


_ONE = (((), 1),)


@dataclass(frozen=True)
class IndexExpr:
    """An affine index: ``sum(coef * var) + const``.

    ``terms`` holds ``(rank variable, coefficient polynomial)`` pairs in order of first
    appearance (no zero coefficients, each variable once); ``const`` is a polynomial in sizes.
    Build one with :func:`dataflow.parse_index` or :meth:`IndexExpr.var`.
    """

    terms: tuple = ()
    const: Poly = ()

    @staticmethod
    @lru_cache(maxsize=1024)
    def var(name: str) -> "IndexExpr":
        """Return the plain index consisting of rank variable ``name``."""
        return IndexExpr(((name, _ONE),), ())

    @staticmethod
    def constant(value: int) -> "IndexExpr":
        """Return the constant integer index ``value``."""
        return IndexExpr((), poly_const(value))

    @property
    def plain(self) -> str | None:
        """The rank variable if this index is just one variable (``m``), else None."""
        if len(self.terms) == 1 and not self.const and self.terms[0][1] == _ONE:
            return self.terms[0][0]
        return None

    def variables(self) -> tuple[str, ...]:
        """Return the rank variables of this index, in order of appearance."""
        return tuple(v for v, _ in self.terms)

    def size_names(self) -> tuple[str, ...]:
        """Return the size names this index uses (sorted)."""
        names = set(poly_names(self.const))
        for _, coef in self.terms:
            names.update(poly_names(coef))
        return tuple(sorted(names))

    def resolve(self, sizes: dict[str, int]) -> tuple[dict[str, int], int]:
        """Return ``(coefficients, constant)`` as integers given ``sizes`` (size name -> int).

        Raises CascadeError naming the first unknown size name.
        """
        try:
            coefs = {v: poly_eval(c, sizes) for v, c in self.terms}
            const = poly_eval(self.const, sizes)
        except KeyError as exc:
            known = ", ".join(sizes) or "none"
            raise CascadeError(f"index '{self}' uses unknown rank size {exc.args[0]!r} "
                               f"(sizes: {known})") from None
        return {v: c for v, c in coefs.items() if c != 0}, const

    def value_range(self, sizes: dict[str, int], extents: dict[str, int]) -> tuple[int, int]:
        """Return the inclusive ``(min, max)`` value of this index when each variable ``v``
        ranges over ``[0, extents[v])``."""
        if len(self.terms) == 1 and not self.const and self.terms[0][1] == _ONE:
            return 0, extents[self.terms[0][0]] - 1
        coefs, const = self.resolve(sizes)
        low = high = const
        for var, coef in coefs.items():
            span = coef * (extents[var] - 1)
            low += min(0, span)
            high += max(0, span)
        return low, high

    def __str__(self) -> str:
        text = self.__dict__.get("_text")
        if text is None:
            text = self._format()
            object.__setattr__(self, "_text", text)
        return text

    def _format(self) -> str:
        out = ""
        for var, coef in self.terms:
            negative = bool(coef) and coef[0][1] < 0
            if negative:
                coef = poly_add((), coef, -1)
            if coef == poly_const(1):
                body = var
            elif len(coef) == 1:
                mono, c = coef[0]
                body = (f"{c}*" if c != 1 else "") + "*".join((var,) + mono)
            else:
                body = f"{var}*({poly_text(coef)})"
            out += ("-" if negative else ("+" if out else "")) + body
        if self.const or not out:
            const_text = poly_text(self.const)
            if out and not const_text.startswith("-"):
                const_text = "+" + const_text
            out += const_text
        return out
