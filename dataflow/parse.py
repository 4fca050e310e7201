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

from .einsum import Einsum
from .errors import CascadeError
from .expr import FUNCTIONS, Access, BinOp, Call, Const, Neg
from .index_text import Tokens, parse_index, read_index

__all__ = ["parse_einsum", "parse_index", "parse_expr"]

_REDUCTIONS = {"sum": "+", "max": "max", "min": "min"}
_RESERVED = set(FUNCTIONS) | {"inf", "sum"}


# ----------------------------------------------------------------------------- expressions

def _access(tokens: Tokens, name: str, column: int) -> Access:
    if name in _RESERVED:
        tokens.fail(f"{name!r} is reserved and cannot name a tensor", column)
    tokens.expect("[", f"'[' after tensor name {name!r}")
    indices = []
    if not tokens.accept("]"):
        indices.append(read_index(tokens))
        while tokens.accept(","):
            indices.append(read_index(tokens))
        tokens.expect("]", "',' or ']'")
    return Access(name, tuple(indices))


def _expr(tokens: Tokens):
    node = _term(tokens)
    while True:
        kind, value, _ = tokens.peek()
        if kind == "sym" and value in "+-":
            tokens.next()
            node = BinOp(value, node, _term(tokens))
        else:
            return node


def _term(tokens: Tokens):
    node = _unary(tokens)
    while True:
        kind, value, _ = tokens.peek()
        if kind == "sym" and value in "*/":
            tokens.next()
            node = BinOp(value, node, _unary(tokens))
        else:
            return node


def _unary(tokens: Tokens):
    if tokens.accept("-"):
        arg = _unary(tokens)
        return Const(-arg.value) if isinstance(arg, Const) else Neg(arg)
    return _primary(tokens)


def _primary(tokens: Tokens):
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


def _call(tokens: Tokens, func: str, column: int):
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


def _rhs(tokens: Tokens):
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

def parse_expr(text: str):
    """Parse a right-hand-side expression (no reduction wrapper); return its tree."""
    tokens = Tokens(str(text))
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
    tokens = Tokens(text)
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
