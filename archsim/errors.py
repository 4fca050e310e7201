"""Exception types shared by archsim.

Every error a user can cause (a bad design file, an impossible mapping, a bad CLI argument)
derives from :class:`UserError`; the CLI prints those as one line and exits with code 2.
"""
from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input; the message alone explains it (no traceback)."""


class DesignError(UserError, ValueError):
    """A design file or a ``--set`` override is invalid."""


class MappingError(UserError, ValueError):
    """A mapping is impossible on the given design (the message says why)."""


class WorkloadError(UserError, ValueError):
    """A workload cannot be evaluated on the given design."""
