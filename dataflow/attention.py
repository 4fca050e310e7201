"""Softmax attention as einsum cascades, for any tensor layout.

Four cascades compute the same ``AV[f,p] = sum_m softmax_m(QK[m,p]) * V[f,m]`` with
``QK[m,p] = sum_e Q[e,p] * K[e,m]`` (index conventions of shared/reference/fusemax.md: Q is
indexed by p, K and V by m, E and F are the key and value embedding sizes):

``3pass``
    fusemax.md "Attention cascades", 3-pass: ``QK``, global max ``GM``, numerator ``SN``,
    denominator ``SD``, normalized ``A = SN/SD`` and ``AV = sum_m A*V``.
``deferred``
    fusemax.md, division deferral: ``SNV = sum_m SN*V`` and ``AV = SNV/SD`` (F*P divisions
    instead of M*P).
``2pass``
    fusemax.md states it only in prose ("split M into (M1,M0): per-M1 local max and local sums,
    global max, then a second pass rescales the partitions"); the einsums are ours. With
    ``m = m1*M0 + m0``::

        BQK[m1,m0,p] = Q[e,p] * K[e,m1*M0+m0]        # pass 1
        LM[m1,p]     = max(BQK[m1,m0,p])             # local max of each M1 chunk
        SLN[m1,m0,p] = exp(BQK[m1,m0,p] - LM[m1,p])  # local numerator
        SLD[m1,p]    = sum(SLN[m1,m0,p])             # local denominator
        GM[p]        = max(LM[m1,p])                 # global max
        PRM[m1,p]    = exp(LM[m1,p] - GM[p])         # rescale factor of chunk m1
        SD[p]        = SLD[m1,p] * PRM[m1,p]         # global denominator
        SN[m1,m0,p]  = SLN[m1,m0,p] * PRM[m1,p]      # pass 2: rescale the partitions
        A[m1,m0,p]   = SN[m1,m0,p] / SD[p]
        AV[f,p]      = A[m1,m0,p] * V[f,m1*M0+m0]

    It is exact: ``SLN*PRM = exp(BQK-LM)*exp(LM-GM) = exp(QK-GM)`` (the 3-pass ``SN``) and
    ``SD = sum_m1 PRM * sum_m0 SLN = sum_m exp(QK-GM)``.
``1pass``
    FuseMax's cascade (fusemax.md "1-pass", FlashAttention-2 style): running max ``RM``,
    running denominator ``RD`` and running numerator ``RNV`` carried along the iterative rank
    ``m1`` (extent ``M1+1``: initial value at 0, final value at M1).

:func:`attention_einsums` returns the einsum text and tensor declarations of one attention for
a given layout (rank order of Q, K, V and the output, extra "outer" ranks such as batch, heads
or KV groups, tensor names and a prefix for the intermediates), to be placed in a larger
cascade; :func:`attention_cascade` returns a complete cascade with concrete sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .affine import is_rank_name, is_size_name
from .cascade import Cascade
from .einsum import Tensor
from .errors import CascadeError

__all__ = ["ATTENTION_KINDS", "AttentionPart", "attention_cascade", "attention_einsums"]

#: The attention cascades :func:`attention_einsums` can generate.
ATTENTION_KINDS = ("3pass", "deferred", "2pass", "1pass")

#: Kinds that split M into (M1, M0) and access K and V at ``m1*M0+m0``.
_SPLIT_KINDS = ("2pass", "1pass")

#: Default cascade names (those of the built-in YAML files).
_DEFAULT_NAMES = {"3pass": "attention", "deferred": "attention_deferred",
                  "2pass": "attention_2pass", "1pass": "attention_1pass"}

_DESCRIPTIONS = {
    "3pass": "3-pass softmax attention (shared/reference/fusemax.md)",
    "deferred": "3-pass softmax attention with division deferral (shared/reference/fusemax.md)",
    "2pass": "2-pass softmax attention: per-M1-chunk local max and sums, then a rescaling "
             "second pass (dataflow.attention)",
    "1pass": "1-pass FuseMax attention with running state along m1 "
             "(shared/reference/fusemax.md)",
}

# The attention ranks each operand must have; any other rank of an operand is an outer rank.
_CORE = {"q_ranks": ("e", "p"), "k_ranks": ("e", "m"), "v_ranks": ("f", "m"),
         "out_ranks": ("f", "p")}


@dataclass(frozen=True)
class AttentionPart:
    """One attention as a piece of a cascade.

    ``einsums`` are einsum text lines (the cascade text language, in program order);
    ``tensors`` maps every tensor the lines access (the inputs Q/K/V, the intermediates and
    the output) to its :class:`Tensor` declaration, so rank orders and the running-state
    extents (``{"m1": "M1+1"}``) are fixed. Pass both to :meth:`Cascade.from_text`, or merge
    them into a larger cascade's einsums and declarations.
    """

    einsums: tuple[str, ...]
    tensors: dict[str, Tensor] = field(default_factory=dict, hash=False)


def _check_kind(kind) -> None:
    if kind not in ATTENTION_KINDS:
        raise CascadeError(f"unknown attention kind {kind!r} (kinds: "
                           f"{', '.join(ATTENTION_KINDS)})")


def _outer_ranks(layouts: dict[str, tuple], split: bool) -> tuple[str, ...]:
    """Return the outer ranks (in order of first appearance over Q, K, V, output) after
    checking that each layout holds its attention ranks once and no reserved rank."""
    reserved = {"e", "p", "m", "f"} | ({"m1", "m0"} if split else set())
    outer: dict[str, None] = {}
    extras: dict[str, list[str]] = {}
    for label, ranks in layouts.items():
        core = _CORE[label]
        if not all(is_rank_name(r) for r in ranks):
            raise CascadeError(f"attention {label}: expected lowercase rank names, found "
                               f"{list(ranks)}")
        if len(set(ranks)) != len(ranks):
            raise CascadeError(f"attention {label}: each rank may appear once, found "
                               f"{list(ranks)}")
        missing = [r for r in core if r not in ranks]
        if missing:
            raise CascadeError(f"attention {label}: must contain the ranks "
                               f"{' and '.join(core)}, found {list(ranks)}")
        extras[label] = [r for r in ranks if r not in core]
        for rank in extras[label]:
            if rank in reserved:
                raise CascadeError(
                    f"attention {label}: rank {rank!r} is reserved for attention (ranks "
                    f"{', '.join(sorted(reserved))}); other ranks are outer ranks such as "
                    f"batch or heads, found {list(ranks)}")
            if label != "out_ranks":
                outer.setdefault(rank, None)
    lacking = [r for r in outer if r not in extras["out_ranks"]]
    stray = [r for r in extras["out_ranks"] if r not in outer]
    if lacking or stray:
        raise CascadeError(
            f"attention out_ranks: the output's outer ranks must be those of Q, K and V "
            f"({', '.join(outer) or 'none'}), found {list(layouts['out_ranks'])}")
    return tuple(outer)


def _access(tensor: str, ranks, substitute: dict | None = None) -> str:
    """Return access text ``tensor[r0,r1,...]`` with ranks replaced per ``substitute``."""
    substitute = substitute or {}
    return f"{tensor}[{','.join(str(substitute.get(r, r)) for r in ranks)}]"


def attention_einsums(kind: str, *, q: str = "Q", k: str = "K", v: str = "V", out: str = "AV",
                      prefix: str = "", q_ranks=("e", "p"), k_ranks=("e", "m"),
                      v_ranks=("f", "m"), out_ranks=("f", "p"), m0_size_name: str = "M0",
                      bits: int = 16) -> AttentionPart:
    """Return the einsums and tensor declarations of one softmax attention (an
    :class:`AttentionPart`).

    ``kind`` is one of :data:`ATTENTION_KINDS` (see the module docstring). ``q``, ``k``,
    ``v`` and ``out`` name the operands; ``q_ranks``/``k_ranks``/``v_ranks``/``out_ranks``
    give their dimension order. Q must have ranks e and p, K e and m, V f and m, the output f
    and p; any other rank is an *outer* rank (batch, heads, KV groups, ...) that is carried
    onto every intermediate, leading, in order of first appearance over Q, K, V. K and V may
    lack outer ranks that Q has (grouped-query attention: Q ``(b,g,r,p,e)``, K ``(b,g,m,e)``);
    the output must have all of them. Intermediates are named ``prefix`` + ``QK``, ``GM``,
    ... and are declared with ``bits`` bits (as are the operands).

    For ``2pass`` and ``1pass`` K and V are read at ``m1*M0+m0`` (``M0`` is
    ``m0_size_name``), so the cascade must have ranks ``m1`` and ``m0`` with M = M1*M0.

    Raises CascadeError for an unknown kind (listing the kinds), a layout without its
    attention ranks, and names that collide.
    """
    _check_kind(kind)
    split = kind in _SPLIT_KINDS
    layouts = {"q_ranks": tuple(q_ranks), "k_ranks": tuple(k_ranks),
               "v_ranks": tuple(v_ranks), "out_ranks": tuple(out_ranks)}
    outer = _outer_ranks(layouts, split)
    if split and not is_size_name(m0_size_name):
        raise CascadeError(f"attention m0_size_name: expected an uppercase size name such as "
                           f"'M0', found {m0_size_name!r}")
    operands = {q: layouts["q_ranks"], k: layouts["k_ranks"], v: layouts["v_ranks"],
                out: layouts["out_ranks"]}
    if len(operands) != 4:
        raise CascadeError(f"attention: q, k, v and out must be four different tensor names, "
                           f"found {q!r}, {k!r}, {v!r}, {out!r}")

    # Intermediate tensors: name -> (ranks, extents), declared in order of first write.
    inter: dict[str, tuple[tuple[str, ...], dict | None]] = {}

    def t(name: str, *ranks: str, extents: dict | None = None) -> str:
        """Declare (once) intermediate ``name`` with outer + ``ranks``; return its name."""
        full = prefix + name
        inter.setdefault(full, (outer + ranks, extents))
        return full

    def a(name: str, *indices: str) -> str:
        """Access text of intermediate ``name`` at outer ranks + ``indices``."""
        return _access(prefix + name, outer + indices)

    split_m = {"m": f"m1*{m0_size_name}+m0"} if split else None
    Q = _access(q, layouts["q_ranks"])
    K = _access(k, layouts["k_ranks"], split_m)
    V = _access(v, layouts["v_ranks"], split_m)
    OUT = _access(out, layouts["out_ranks"])

    if kind in ("3pass", "deferred"):
        # fusemax.md "Attention cascades": 3-pass and division deferral.
        for name, ranks in (("QK", ("m", "p")), ("GM", ("p",)), ("SN", ("m", "p")),
                            ("SD", ("p",))):
            t(name, *ranks)
        lines = [
            f"{a('QK', 'm', 'p')} = {Q} * {K}",
            f"{a('GM', 'p')} = max({a('QK', 'm', 'p')})",
            f"{a('SN', 'm', 'p')} = exp({a('QK', 'm', 'p')} - {a('GM', 'p')})",
            f"{a('SD', 'p')} = sum({a('SN', 'm', 'p')})",
        ]
        if kind == "3pass":
            t("A", "m", "p")
            lines += [f"{a('A', 'm', 'p')} = {a('SN', 'm', 'p')} / {a('SD', 'p')}",
                      f"{OUT} = {a('A', 'm', 'p')} * {V}"]
        else:
            t("SNV", "f", "p")
            lines += [f"{a('SNV', 'f', 'p')} = {a('SN', 'm', 'p')} * {V}",
                      f"{OUT} = {a('SNV', 'f', 'p')} / {a('SD', 'p')}"]
    elif kind == "2pass":
        # fusemax.md gives the 2-pass cascade only in prose; these einsums are ours (see the
        # module docstring for why they equal softmax attention exactly).
        for name, ranks in (("BQK", ("m1", "m0", "p")), ("LM", ("m1", "p")),
                            ("SLN", ("m1", "m0", "p")), ("SLD", ("m1", "p")), ("GM", ("p",)),
                            ("PRM", ("m1", "p")), ("SD", ("p",)), ("SN", ("m1", "m0", "p")),
                            ("A", ("m1", "m0", "p"))):
            t(name, *ranks)
        bqk, lm, sln = a("BQK", "m1", "m0", "p"), a("LM", "m1", "p"), a("SLN", "m1", "m0", "p")
        prm = a("PRM", "m1", "p")
        lines = [
            f"{bqk} = {Q} * {K}",
            f"{lm} = max({bqk})",
            f"{sln} = exp({bqk} - {lm})",
            f"{a('SLD', 'm1', 'p')} = sum({sln})",
            f"{a('GM', 'p')} = max({lm})",
            f"{prm} = exp({lm} - {a('GM', 'p')})",
            f"{a('SD', 'p')} = {a('SLD', 'm1', 'p')} * {prm}",
            f"{a('SN', 'm1', 'm0', 'p')} = {sln} * {prm}",
            f"{a('A', 'm1', 'm0', 'p')} = {a('SN', 'm1', 'm0', 'p')} / {a('SD', 'p')}",
            f"{OUT} = {a('A', 'm1', 'm0', 'p')} * {V}",
        ]
    else:
        # fusemax.md "1-pass (FuseMax, FlashAttention-2 style)", K and V read through the
        # affine index m1*M0+m0 instead of pre-split BK/BV tensors.
        state = {"m1": "M1+1"}
        t("RM", "m1", "p", extents=state)
        t("RD", "m1", "p", extents=state)
        t("RNV", "f", "m1", "p", extents=state)
        for name, ranks in (("BQK", ("m1", "m0", "p")), ("LM", ("m1", "p")),
                            ("SLN", ("m1", "m0", "p")), ("SLD", ("m1", "p")),
                            ("SLNV", ("f", "m1", "p")), ("PRM", ("m1", "p")),
                            ("SPD", ("m1", "p")), ("SPNV", ("f", "m1", "p"))):
            t(name, *ranks)
        bqk, sln = a("BQK", "m1", "m0", "p"), a("SLN", "m1", "m0", "p")
        rm, rm_next = a("RM", "m1", "p"), a("RM", "m1+1", "p")
        lm, prm = a("LM", "m1", "p"), a("PRM", "m1", "p")
        lines = [
            f"{a('RM', '0', 'p')} = -inf",
            f"{a('RD', '0', 'p')} = 0",
            f"{a('RNV', 'f', '0', 'p')} = 0",
            f"{bqk} = {Q} * {K}",
            f"{lm} = max({bqk})",
            f"{rm_next} = max({rm}, {lm})",
            f"{sln} = exp({bqk} - {rm_next})",
            f"{a('SLD', 'm1', 'p')} = sum({sln})",
            f"{a('SLNV', 'f', 'm1', 'p')} = {sln} * {V}",
            f"{prm} = exp({rm} - {rm_next})",
            f"{a('SPD', 'm1', 'p')} = {a('RD', 'm1', 'p')} * {prm}",
            f"{a('RD', 'm1+1', 'p')} = {a('SLD', 'm1', 'p')} + {a('SPD', 'm1', 'p')}",
            f"{a('SPNV', 'f', 'm1', 'p')} = {a('RNV', 'f', 'm1', 'p')} * {prm}",
            (f"{a('RNV', 'f', 'm1+1', 'p')} = {a('SLNV', 'f', 'm1', 'p')} + "
             f"{a('SPNV', 'f', 'm1', 'p')}"),
            f"{OUT} = {a('RNV', 'f', 'M1', 'p')} / {a('RD', 'M1', 'p')}",
        ]

    clash = [name for name in operands if name in inter]
    if clash:
        raise CascadeError(f"attention: operand name {clash[0]!r} collides with an "
                           f"intermediate of the {kind} cascade (intermediates: "
                           f"{', '.join(inter)}); choose another name or a prefix")
    tensors = {name: Tensor(name, ranks, bits) for name, ranks in list(operands.items())[:3]}
    for name, (ranks, extents) in inter.items():
        tensors[name] = Tensor(name, ranks, bits, extents)
    tensors[out] = Tensor(out, layouts["out_ranks"], bits)
    return AttentionPart(tuple(lines), tensors)


def _positive_int(label: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CascadeError(f"attention_cascade: {label} must be a positive integer, found "
                           f"{value!r}")
    return value


def attention_cascade(kind: str, *, m: int, p: int, e: int, f: int, m0: int | None = None,
                      outer: dict | None = None, bits: int = 16,
                      name: str | None = None) -> Cascade:
    """Return a complete attention :class:`Cascade` of ``kind`` (one of
    :data:`ATTENTION_KINDS`) with inputs ``Q[.., e, p]``, ``K[.., e, m]``, ``V[.., f, m]`` and
    output ``AV[.., f, p]``.

    ``m``, ``p``, ``e``, ``f`` are the rank sizes (keys, queries, key and value embedding).
    ``outer`` optionally maps extra leading ranks to sizes (e.g. ``{"b": 2, "h": 3}``) put in
    front of every tensor's ranks. For ``2pass`` and ``1pass`` M is split into ranks ``m1`` =
    M/M0 and ``m0`` = ``m0``, which must divide ``m`` (default ``min(m, 256)`` if that divides
    ``m``); the other kinds ignore ``m0``. Every tensor has ``bits`` bits. ``name`` defaults
    to the built-in cascade's name (``attention``, ``attention_deferred``,
    ``attention_2pass``, ``attention_1pass``). Raises CascadeError for an unknown kind, bad
    sizes, an ``m0`` that does not divide ``m`` or outer ranks that clash with attention ranks.
    """
    _check_kind(kind)
    sizes = {"m": m, "p": p, "e": e, "f": f}
    for label, value in sizes.items():
        _positive_int(label, value)
    outer = dict(outer or {})
    reserved = ("m", "m1", "m0", "p", "e", "f")
    for rank, size in outer.items():
        if rank in reserved:
            raise CascadeError(f"attention_cascade: outer rank {rank!r} clashes with the "
                               f"attention ranks ({', '.join(reserved)})")
        _positive_int(f"outer rank {rank!r}", size)
    ranks = {**outer, "m": m}
    if kind in _SPLIT_KINDS:
        if m0 is None:
            m0 = min(m, 256)
            if m % m0:
                raise CascadeError(f"attention_cascade: {kind} splits M into (M1, M0); the "
                                   f"default m0 = {m0} does not divide m = {m}, give m0")
        _positive_int("m0", m0)
        if m % m0:
            raise CascadeError(f"attention_cascade: {kind} splits M into (M1, M0) and needs "
                               f"M = M1*M0, but m0 = {m0} does not divide m = {m}")
        ranks.update(m1=m // m0, m0=m0)
    ranks.update(p=p, e=e, f=f)
    lead = tuple(outer)
    part = attention_einsums(kind, q_ranks=lead + ("e", "p"), k_ranks=lead + ("e", "m"),
                             v_ranks=lead + ("f", "m"), out_ranks=lead + ("f", "p"), bits=bits)
    cascade = Cascade.from_text(part.einsums, ranks, name=name or _DEFAULT_NAMES[kind],
                                default_bits=bits, tensors=part.tensors)
    return Cascade(cascade.name, cascade.ranks, cascade.tensors, cascade.einsums,
                   description=_DESCRIPTIONS[kind])
