"""The one solver facade: every ILP in archsim (memory mapping, binding, tiers, RDU sections)
is built with PuLP and solved here, with HiGHS (CBC when highspy is missing).

Reproducible by construction: one thread, a fixed random seed and a limit on **work** (branch
and bound nodes), never on wall-clock time unless the caller asks for one. The same model gives
the same answer on any machine, however loaded. A wall-clock limit (``SolveLimits(time_s=...)``,
``--time-limit`` on the CLI) is honoured, and its result is marked ``limit: "time"``: it may
differ between runs and machines.

:func:`solve` returns a plain dict::

    status     optimal | node_limit | time_limit | infeasible | no_solution
    limit      None, "nodes" or "time": which limit stopped the search (None: it finished)
    objective  the incumbent's objective (None without one)
    bound      the best proven bound (None when unknown); equals objective when optimal
    gap        (objective - bound) / |objective| (0 when optimal, None when unknown)
    nodes      branch-and-bound nodes explored (HiGHS; a measure of work, reproducible)
    solver     "highs" or "cbc"

No wall-clock seconds are recorded: results must not depend on the machine. Timings belong to
``benchmarks/``.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass
from typing import Any

from archsim.errors import UserError

#: Default branch-and-bound node budget of every solve. Generous for the problems archsim
#: builds (the 50 tiny-graph memory ILPs need at most a few hundred nodes), small enough that
#: a hard instance stops in seconds with its incumbent, bound and gap.
DEFAULT_NODE_LIMIT = 20_000
#: Fixed seed of the solver's randomised choices (HiGHS ``random_seed``, CBC ``randomSeed``).
DEFAULT_SEED = 0


@dataclass(frozen=True)
class SolveLimits:
    """How much a solve may do. ``nodes``: branch-and-bound nodes (None: no limit);
    ``time_s``: wall-clock seconds, only when asked for (None: no time limit); ``threads``:
    solver threads (1 keeps every result reproducible); ``seed``: the solver's random seed."""

    nodes: int | None = DEFAULT_NODE_LIMIT
    time_s: float | None = None
    threads: int = 1
    seed: int = DEFAULT_SEED

    def __post_init__(self):
        if self.nodes is not None and (isinstance(self.nodes, bool) or
                                       not isinstance(self.nodes, int) or self.nodes < 1):
            raise UserError(f"--node-limit must be a positive whole number, found "
                            f"{self.nodes!r}")
        if self.time_s is not None and not (isinstance(self.time_s, (int, float)) and
                                            math.isfinite(self.time_s) and self.time_s > 0):
            raise UserError(f"--time-limit must be a positive number of seconds, found "
                            f"{self.time_s!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or \
                self.threads < 1:
            raise UserError(f"--threads must be a positive whole number, found "
                            f"{self.threads!r}")

    def describe(self) -> str:
        """One line for messages: ``20000 nodes``, ``20000 nodes or 5 s`` ..."""
        parts = [f"{self.nodes} nodes"] if self.nodes is not None else []
        if self.time_s is not None:
            parts.append(f"{self.time_s:g} s")
        return " or ".join(parts) or "no limit"

    def advice(self) -> str:
        """What to give to let the solver go further."""
        if self.time_s is not None:
            return "give a longer --time-limit or a larger --node-limit"
        return "give a larger --node-limit"


def limits_from(nodes: int | None = None, time_s: float | None = None,
                threads: int | None = None) -> SolveLimits:
    """SolveLimits from CLI-style options (None: the default)."""
    return SolveLimits(nodes=DEFAULT_NODE_LIMIT if nodes is None else nodes, time_s=time_s,
                       threads=1 if threads is None else threads)


def new_var(prob, name: str, lo=0, hi=1, cat: str = "Binary"):
    """A PuLP variable of ``prob`` (``add_variable`` on PuLP >= 3.3, which tracks names)."""
    import pulp

    if hasattr(prob, "add_variable"):
        return prob.add_variable(name, lo, hi, cat=cat)
    return pulp.LpVariable(name, lo, hi, cat=cat)


_BANNER_DONE = False


def _new_highs():
    """A ``highspy.Highs`` instance. HiGHS prints a copyright banner on stdout when the first
    instance of a process is made, before any option can silence it; it would corrupt output
    such as ``--json -``, so that first construction runs with stdout pointed at /dev/null."""
    global _BANNER_DONE
    import highspy

    if _BANNER_DONE:
        return highspy.Highs()
    # what Python already buffered goes out before the descriptor moves (a closed or
    # detached sys.stdout has nothing to flush)
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        h = highspy.Highs()
        # the banner may sit in C's stdio buffer: flush it into /dev/null, not later into
        # the restored stdout (without a libc symbol table there is no buffer to flush)
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None).fflush(None)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
    _BANNER_DONE = True
    return h


def _highs_solver(limits: SolveLimits):
    """A PuLP HiGHS solver configured by ``limits``, which also reads back incumbents that
    PuLP's own wrapper does not map (HiGHS's node limit)."""
    import pulp

    class _HiGHS(pulp.HiGHS):
        def createAndConfigureSolver(self, lp):
            h = _new_highs()
            h.setOptionValue("output_flag", False)
            h.setOptionValue("threads", limits.threads)
            h.setOptionValue("random_seed", limits.seed)
            if limits.nodes is not None:
                h.setOptionValue("mip_max_nodes", limits.nodes)
            if limits.time_s is not None:
                h.setOptionValue("time_limit", float(limits.time_s))
            lp.solverModel = h

        def actualSolve(self, lp):
            self.createAndConfigureSolver(lp)
            self.buildSolverModel(lp)
            self.callSolver(lp)
            h = lp.solverModel
            sol = h.getSolution()
            values = list(sol.col_value)
            for var in lp.variables():
                var.varValue = values[var.index] if var.index < len(values) else None
            return 0

    return _HiGHS(msg=False)


def solve(prob, limits: SolveLimits | None = None) -> dict[str, Any]:
    """Solve PuLP problem ``prob`` within ``limits`` (default: :data:`DEFAULT_NODE_LIMIT`
    nodes, one thread, seed 0, no time limit); see the module docstring for the dict it
    returns. Variable values are set on ``prob``'s variables as PuLP does."""
    import pulp

    limits = limits or SolveLimits()
    if "HiGHS" in pulp.listSolvers(onlyAvailable=True):
        prob.solve(_highs_solver(limits))
        h = prob.solverModel
        st = h.getModelStatus()
        ms = h.modelStatusToString(st).lower()
        info = h.getInfo()
        has_sol = getattr(info, "primal_solution_status", 2) == 2
        nodes = int(getattr(info, "mip_node_count", 0) or 0)
        if "optimal" in ms:
            status, limit = "optimal", None
        elif "time" in ms:
            status, limit = "time_limit", "time"
        elif "solution limit" in ms or "node" in ms:
            status, limit = "node_limit", "nodes"
        elif "infeasible" in ms:
            status, limit = "infeasible", None
        else:
            status, limit = ms.replace(" ", "_"), None
        if not has_sol and status not in ("infeasible",):
            status = "no_solution"
        obj = info.objective_function_value if has_sol else None
        bound = getattr(info, "mip_dual_bound", None)
        gap = getattr(info, "mip_gap", None)
        if bound is not None and not math.isfinite(bound):
            bound = None
        if gap is not None and not math.isfinite(gap):
            gap = None
        name = "highs"
    else:                                   # pragma: no cover - highspy is a dependency
        options = [f"randomSeed {limits.seed + 1}", f"randomCbcSeed {limits.seed + 1}"]
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=limits.time_s, threads=limits.threads,
                                   maxNodes=limits.nodes, options=options)
        prob.solve(solver)
        st = pulp.LpStatus[prob.status]
        proven = prob.sol_status == pulp.LpSolutionOptimal
        if st == "Infeasible":
            status, limit = "infeasible", None
        elif st == "Optimal" and proven:
            status, limit = "optimal", None
        elif prob.sol_status == pulp.LpSolutionIntegerFeasible:
            # CBC does not say which limit stopped it: a time limit only if it was the only one
            limit = "time" if limits.time_s is not None and limits.nodes is None else "nodes"
            status = f"{'time' if limit == 'time' else 'node'}_limit"
        else:
            status, limit = "no_solution", None
        obj = pulp.value(prob.objective) if status != "no_solution" else None
        bound, gap, nodes, name = None, None, None, "cbc"
    if status == "optimal":
        bound, gap = obj, 0.0
    return {"status": status, "limit": limit, "objective": obj, "bound": bound, "gap": gap,
            "nodes": nodes, "solver": name}
