"""The physics every family shares, written once: roofline time, collective communication,
whole-cycle rounding and peak FLOP/s.

Each family composes these; none re-derives them. A formula here changes every family's
figure at once, so a change to it is a model-version change of every family
(:mod:`archsim.core.identity`).

* :func:`roofline_time` — a step limited by compute or by one memory stream, whichever is
  slower: ``max(compute, bytes / bandwidth)``, in the unit of ``compute`` (cycles or
  seconds; ``bandwidth`` in bytes per that unit).
* :func:`ring_allreduce` and :func:`one_shot_allreduce` — the two all-reduce algorithms over
  ``p`` peers: a ring moves ``2 (p-1)/p`` of the data in ``2 (p-1)`` steps (reduce-scatter then
  all-gather, Patarasuk & Yuan 2009); a one-shot exchange sends every peer's partial to the
  ``p-1`` others in one step. Both return (bandwidth time, latency time, bytes each peer sends);
  :func:`allreduce` picks the faster (or a named one), :func:`all_to_all` is expert
  parallelism's exchange. The ``link`` unit (:mod:`archsim.units.link`), the RDU family and
  the serving models all time collectives with these.
* :func:`whole_cycles` — a modelled time rounded up to whole clock cycles, forgiving the float
  noise of sums of fractions (``slack``).
* :func:`peak_flops_per_s` — a compute unit's peak, 2 FLOPs per MAC (:data:`FLOPS_PER_MAC`).
"""
from __future__ import annotations

import math

#: FLOPs counted per multiply-accumulate (one multiply, one add), as in every paper we cite.
FLOPS_PER_MAC = 2

#: Default float slack of :func:`whole_cycles`: a unit model's time within 1e-9 cycles above
#: an integer is that integer.
CYCLE_SLACK = 1e-9


def roofline_time(compute: float, nbytes: float, bandwidth: float) -> float:
    """``max(compute, nbytes / bandwidth)``: the time of a step whose ``compute`` time and
    whose stream of ``nbytes`` at ``bandwidth`` overlap fully. ``compute`` and the result are
    in one time unit (cycles or seconds); ``bandwidth`` is bytes per that unit."""
    return max(compute, nbytes / bandwidth)


def ring_allreduce(nbytes: float, peers: int, bandwidth: float,
                   step_latency: float) -> tuple[float, float, float]:
    """(bandwidth time, latency time, bytes each peer sends) of a ring all-reduce of
    ``nbytes`` over ``peers`` peers: ``2 (p-1)/p x nbytes`` over a link of ``bandwidth``
    (bytes per time unit) and ``2 (p-1)`` steps of ``step_latency``. Zero for one peer or no
    data."""
    if peers <= 1 or nbytes == 0:
        return 0.0, 0.0, 0.0
    moved = 2 * (peers - 1) / peers * nbytes
    return moved / bandwidth, 2 * (peers - 1) * step_latency, moved


def one_shot_allreduce(nbytes: float, peers: int, bandwidth: float,
                       step_latency: float) -> tuple[float, float, float]:
    """(bandwidth time, latency time, bytes each peer sends) of a one-shot all-reduce: every
    peer sends its ``nbytes`` partial to the ``p-1`` others at once, one step of latency."""
    if peers <= 1:
        return 0.0, 0.0, 0.0
    moved = (peers - 1) * nbytes
    return moved / bandwidth, step_latency, moved


#: Collective algorithms :func:`allreduce` chooses between (``auto``: the faster).
ALLREDUCE_ALGORITHMS = ("auto", "ring", "one_shot")


def allreduce(nbytes: float, peers: int, bandwidth: float, step_latency: float,
              algorithm: str = "auto") -> tuple[float, float, float, str]:
    """(bandwidth time, latency time, bytes each peer sends, algorithm) of an all-reduce of
    ``nbytes`` over ``peers`` peers: :func:`ring_allreduce`, :func:`one_shot_allreduce`, or
    (``auto``) whichever of the two finishes first, as collective libraries pick by message
    size (one-shot for small messages, ring for large ones). Every family's link uses this."""
    if algorithm not in ALLREDUCE_ALGORITHMS:
        raise ValueError(f"all-reduce algorithm must be one of {ALLREDUCE_ALGORITHMS}, "
                         f"got {algorithm!r}")
    if peers <= 1 or nbytes == 0:
        return 0.0, 0.0, 0.0, "none"
    ring = ring_allreduce(nbytes, peers, bandwidth, step_latency)
    shot = one_shot_allreduce(nbytes, peers, bandwidth, step_latency)
    if algorithm == "ring" or (algorithm == "auto" and ring[0] + ring[1] <= shot[0] + shot[1]):
        return (*ring, "ring")
    return (*shot, "one_shot")


def all_to_all(nbytes: float, peers: int, bandwidth: float,
               step_latency: float) -> tuple[float, float, float]:
    """(bandwidth time, latency time, bytes each peer sends) of an all-to-all in which each
    peer holds ``nbytes`` spread evenly over the ``peers`` destinations: ``(p-1)/p`` of it
    leaves over the link, in one step of latency."""
    if peers <= 1 or nbytes == 0:
        return 0.0, 0.0, 0.0
    moved = (peers - 1) / peers * nbytes
    return moved / bandwidth, step_latency, moved


def whole_cycles(cycles: float, slack: float = CYCLE_SLACK) -> int:
    """``cycles`` rounded up to a whole number of clock cycles (0 for none): a time within
    ``slack`` above an integer rounds down to it, so float sums of exact fractions do not gain
    a cycle."""
    return int(math.ceil(cycles - slack)) if cycles > 0 else 0


def peak_flops_per_s(model) -> float:
    """Peak FLOP/s of a compute unit model (:class:`archsim.units.base.UnitModel`):
    ``FLOPS_PER_MAC x rows x cols x arrays x clock`` for systolic arrays, the spec's matrix
    peak for a GPU roofline unit, the unit's own figure for a PCU, one FLOP per lane per cycle
    otherwise."""
    spec = model.spec
    clk = model.clock_hz
    if spec.kind == "systolic_array":
        return float(FLOPS_PER_MAC) * spec.rows * spec.cols * spec.arrays * clk
    if spec.kind == "gpu_roofline":
        return spec.matrix_flops_per_s
    if spec.kind == "pcu":
        return model.peak_flops_per_s
    return float(getattr(spec, "lanes", 1)) * clk
