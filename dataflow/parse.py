"""The text form of einsums.

Grammar (whitespace is ignored; ``#`` starts a comment in multi-line cascade text)::

    einsum   := access '=' rhs
    rhs      := ('sum' | 'max' | 'min') '(' expr ')'     # reduce absent ranks with + / max / min
              | expr                                     # reduce absent ranks with +
    expr     := term (('+' | '-') term)*
    term     := unary (('*' | '/') unary)*
    unary    := '-' unary | primary
    primary  := NUMBER | 'inf' | access | FUNC '(' expr (',' expr)* ')' | '(' expr ')'
    access   := TENSOR '[' [index (',' index)*] ']'
    index    := iterm (('+' | '-') iterm)*               # affine in rank variables
    iterm    := ifactor ('*' ifactor)*
    ifactor  := INTEGER | RANK | SIZE | '(' index ')' | '-' ifactor

``RANK`` is a lowercase identifier (``m1``), ``SIZE`` an uppercase one (``M1``, the size of
rank ``m1``), ``TENSOR`` any identifier, ``FUNC`` one of ``exp sqrt rsqrt relu sigmoid silu gelu
tanh`` or two-argument ``max``/``min``.
"""

from __future__ import annotations

import re

from .affine import (IndexExpr, is_rank_name, is_size_name, poly_add, poly_const, poly_mul,
                     poly_size)
from .einsum import Einsum
from .errors import CascadeError
from .expr import FUNCTIONS, Access, BinOp, Call, Const, Neg

__all__ = ["parse_einsum", "parse_index", "parse_expr"]

_TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<sym>[\[\](),=+\-*/]))")
_REDUCTIONS = {"sum": "+", "max": "max", "min": "min"}
_RESERVED = set(FUNCTIONS) | {"inf", "sum"}


class _Tokens:
    """A token stream over one line of text with 1-based columns for error messages."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[tuple[str, str, int]] = []   # (kind, value, column)
        pos = 0
        while True:
            match = _TOKEN.match(text, pos)
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

def _index(tokens: _Tokens) -> IndexExpr:
    terms, const = _index_sum(tokens)
    return IndexExpr(tuple(terms.items()), const)


def _index_sum(tokens: _Tokens):
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


def _index_term(tokens: _Tokens):
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


def _index_factor(tokens: _Tokens):
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


# ----------------------------------------------------------------------------- expressions

def _access(tokens: _Tokens, name: str, column: int) -> Access:
    if name in _RESERVED:
        tokens.fail(f"{name!r} is reserved and cannot name a tensor", column)
    tokens.expect("[", f"'[' after tensor name {name!r}")
    indices = []
    if not tokens.accept("]"):
        indices.append(_index(tokens))
        while tokens.accept(","):
            indices.append(_index(tokens))
        tokens.expect("]", "',' or ']'")
    return Access(name, tuple(indices))


def _expr(tokens: _Tokens):
    node = _term(tokens)
    while True:
        kind, value, _ = tokens.peek()
        if kind == "sym" and value in "+-":
            tokens.next()
            node = BinOp(value, node, _term(tokens))
        else:
            return node


def _term(tokens: _Tokens):
    node = _unary(tokens)
    while True:
        kind, value, _ = tokens.peek()
        if kind == "sym" and value in "*/":
            tokens.next()
            node = BinOp(value, node, _unary(tokens))
        else:
            return node


def _unary(tokens: _Tokens):
    if tokens.accept("-"):
        arg = _unary(tokens)
        return Const(-arg.value) if isinstance(arg, Const) else Neg(arg)
    return _primary(tokens)


def _primary(tokens: _Tokens):
    kind, value, column = tokens.next()
    if kind == "num":
        return Const(float(value))
    if kind == "sym" and value == "(":
        node = _expr(tokens)
        tokens.expect(")", "')'")
        return node
    if kind == "name":
        if value == "inf":
            return Const(float("inf"))
        nxt = tokens.peek()
        if nxt[0] == "sym" and nxt[1] == "(":
            return _call(tokens, value, column)
        return _access(tokens, value, column)
    found = "the end" if kind == "end" else repr(value)
    tokens.fail(f"expected a tensor, number or function, found {found}", column)


def _call(tokens: _Tokens, func: str, column: int):
    tokens.expect("(")
    args = [_expr(tokens)]
    while tokens.accept(","):
        args.append(_expr(tokens))
    tokens.expect(")", "',' or ')'")
    if func in ("sum",) or (func in ("max", "min") and len(args) == 1):
        tokens.fail(f"one-argument {func}() is a reduction and must wrap the whole "
                    f"right-hand side", column)
    if func not in FUNCTIONS:
        tokens.fail(f"unknown function {func!r} (functions: {', '.join(FUNCTIONS)})", column)
    if len(args) != FUNCTIONS[func]:
        tokens.fail(f"{func}() takes {FUNCTIONS[func]} argument(s), found {len(args)}", column)
    return Call(func, tuple(args))


def _rhs(tokens: _Tokens):
    """Parse a right-hand side; return ``(expr, reduce_op)``."""
    kind, value, _ = tokens.peek()
    if kind == "name" and value in _REDUCTIONS and tokens.peek(1)[1] == "(":
        # One-argument sum/max/min around the whole RHS is a reduction wrapper.
        saved = tokens.pos
        tokens.next()
        tokens.next()
        inner = _expr(tokens)
        if tokens.accept(")") and tokens.at_end():
            return inner, _REDUCTIONS[value]
        tokens.pos = saved
    node = _expr(tokens)
    return node, "+"


# ----------------------------------------------------------------------------- public API

def parse_index(text: str) -> IndexExpr:
    """Parse an affine index expression such as ``m1*M0+m0``; return an :class:`IndexExpr`.

    Raises CascadeError (naming the column) on a syntax error or a non-affine product.
    """
    tokens = _Tokens(str(text))
    index = _index(tokens)
    if not tokens.at_end():
        tokens.fail(f"unexpected {tokens.peek()[1]!r} after the index")
    return index


def parse_expr(text: str):
    """Parse a right-hand-side expression (no reduction wrapper); return its tree."""
    tokens = _Tokens(str(text))
    node = _expr(tokens)
    if not tokens.at_end():
        tokens.fail(f"unexpected {tokens.peek()[1]!r}")
    return node


def parse_einsum(text: str, name: str | None = None) -> Einsum:
    """Parse one einsum such as ``QK[m,p] = Q[e,p] * K[e,m]``; return an :class:`Einsum`.

    ``name`` defaults to the output tensor's name. No rank sizes are needed. Raises
    CascadeError with the column on a syntax error, e.g. ``'Z[m,n] = A[m,k] * ': expected a
    tensor, number or function, found the end at column 19``.
    """
    if not isinstance(text, str):
        raise CascadeError(f"an einsum must be text, found {text!r}")
    tokens = _Tokens(text)
    kind, value, column = tokens.next()
    if kind != "name":
        tokens.fail("expected the output tensor (e.g. 'Z[m,n] = ...')", column)
    output = _access(tokens, value, column)
    tokens.expect("=", "'='")
    if tokens.at_end():
        tokens.fail("expected a tensor, number or function, found the end")
    expr, reduce_op = _rhs(tokens)
    if not tokens.at_end():
        tokens.fail(f"unexpected {tokens.peek()[1]!r}")
    return Einsum(name or output.tensor, output, expr, reduce_op)
