"""Shared fixtures of the archsim tests.

- ``repo_root``: the checkout's root directory (the parent of ``tests/``).
- ``SCALESIM_CSV``: the SCALE-Sim v3 reference results (tests/reference, copied from
  ../shared/reference so validation runs on any clone).
- ``run_archsim(*args, cwd=None, timeout=60)``: run the ``archsim`` command as
  ``sys.executable -m archsim.cli ARGS`` (so it works in any venv) with the checkout first on
  ``PYTHONPATH`` and ``ARCHSIM_DEBUG`` unset; returns the ``subprocess.CompletedProcess`` with
  text ``stdout``/``stderr``. ``cwd`` defaults to the repository root.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testpaths import REPO_ROOT, SCALESIM_CSV, SHARED_SCALESIM_CSV  # noqa: F401


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def _run_archsim(*args, cwd=None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("ARCHSIM_DEBUG", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([sys.executable, "-m", "archsim.cli", *map(str, args)],
                          cwd=str(cwd or REPO_ROOT), env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def run_archsim():
    return _run_archsim
