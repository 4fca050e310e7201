"""The token stream shared by the einsum parser, and affine index expressions.

``parse_index`` reads an index such as ``m1*M0+m0`` (grammar in :mod:`dataflow.parse`); it lives
below :mod:`dataflow.expr` so that an :class:`~dataflow.expr.Access` built from strings can parse
its indices without importing the full einsum parser.
"""

from __future__ import annotations

import re

from .affine import (IndexExpr, is_rank_name, is_size_name, poly_add, poly_const, poly_mul,
                     poly_size)
from .errors import CascadeError

__all__ = ["Tokens", "parse_index", "read_index"]

TOKEN_RE = re.compile(r"\s*(?:(?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<sym>[\[\](),=+\-*/]))")


class Tokens:
    """A token stream over one line of text with 1-based columns for error messages."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[tuple[str, str, int]] = []   # (kind, value, column)
        pos = 0
        while True:
            match = TOKEN_RE.match(text, pos)
            if match is None or match.end() == pos:
                rest = text[pos:]
                if rest.strip():
                    column = pos + len(rest) - len(rest.lstrip()) + 1
                    self.fail(f"unexpected character {rest.strip()[0]!r}", column)
                break
            kind = match.lastgroup
            self.items.append((kind, match.group(kind), match.start(kind) + 1))
            pos = match.end()
        self.items.append(("end", "", len(text) + 1))
        self.pos = 0

    def fail(self, message: str, column: int | None = None):
        """Raise CascadeError quoting the text, with the column (default: next token's)."""
        if column is None:
            column = self.peek()[2]
        raise CascadeError(f"'{self.text}': {message} at column {column}")

    def peek(self, ahead: int = 0) -> tuple[str, str, int]:
        """Return the token ``ahead`` positions on without consuming it."""
        return self.items[min(self.pos + ahead, len(self.items) - 1)]

    def next(self) -> tuple[str, str, int]:
        """Consume and return the next token."""
        item = self.peek()
        self.pos += 1
        return item

    def accept(self, symbol: str) -> bool:
        """Consume the next token if it is ``symbol``; return whether it was."""
        kind, value, _ = self.peek()
        if kind == "sym" and value == symbol:
            self.pos += 1
            return True
        return False

    def expect(self, symbol: str, what: str | None = None) -> None:
        """Consume ``symbol`` or fail saying what was expected and found."""
        if not self.accept(symbol):
            kind, value, _ = self.peek()
            found = "the end" if kind == "end" else repr(value)
            self.fail(f"expected {what or repr(symbol)}, found {found}")

    def at_end(self) -> bool:
        """True when all tokens are consumed."""
        return self.peek()[0] == "end"


# ----------------------------------------------------------------------------- indices

def read_index(tokens: Tokens) -> IndexExpr:
    terms, const = _index_sum(tokens)
    return IndexExpr(tuple(terms.items()), const)


def _index_sum(tokens: Tokens):
    terms, const = _index_term(tokens)
    while True:
        kind, value, _ = tokens.peek()
        if kind == "sym" and value in "+-":
            tokens.next()
            other_terms, other_const = _index_term(tokens)
            sign = 1 if value == "+" else -1
            for var, coef in other_terms.items():
                terms[var] = poly_add(terms.get(var, ()), coef, sign)
            const = poly_add(const, other_const, sign)
        else:
            break
    return {v: c for v, c in terms.items() if c}, const


def _index_term(tokens: Tokens):
    start = tokens.peek()[2]
    terms, const = _index_factor(tokens)
    while tokens.accept("*"):
        other_terms, other_const = _index_factor(tokens)
        if terms and other_terms:
            tokens.fail("index is not affine: product of rank variables", start)
        if other_terms:
            terms, const, other_terms, other_const = other_terms, other_const, terms, const
        # (terms, const) * other_const where other has no rank variables
        terms = {v: poly_mul(c, other_const) for v, c in terms.items()}
        const = poly_mul(const, other_const)
        terms = {v: c for v, c in terms.items() if c}
    return terms, const


def _index_factor(tokens: Tokens):
    kind, value, column = tokens.next()
    if kind == "num":
        if not value.isdigit():
            tokens.fail(f"index constants must be integers, found {value!r}", column)
        return {}, poly_const(int(value))
    if kind == "name":
        if is_rank_name(value):
            return {value: poly_const(1)}, ()
        if is_size_name(value):
            return {}, poly_size(value)
        tokens.fail(f"{value!r} is neither a rank (lowercase, e.g. 'm1') nor a rank size "
                    f"(uppercase, e.g. 'M1')", column)
    if kind == "sym" and value == "(":
        terms, const = _index_sum(tokens)
        tokens.expect(")")
        return terms, const
    if kind == "sym" and value == "-":
        terms, const = _index_factor(tokens)
        return {v: poly_add((), c, -1) for v, c in terms.items()}, poly_add((), const, -1)
    found = "the end" if kind == "end" else repr(value)
    tokens.fail(f"expected a rank, a size or an integer in an index, found {found}", column)


def parse_index(text: str) -> IndexExpr:
    """Parse an affine index expression such as ``m1*M0+m0``; return an :class:`IndexExpr`.

    Raises CascadeError (naming the column) on a syntax error or a non-affine product.
    """
    tokens = Tokens(str(text))
    index = read_index(tokens)
    if not tokens.at_end():
        tokens.fail(f"unexpected {tokens.peek()[1]!r} after the index")
    return index
