"""Paths and helpers the test modules import by name (a module name no other test directory
uses, unlike ``conftest``, so imports resolve the same in any test order)."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCALESIM_CSV = REPO_ROOT / "tests" / "reference" / "scalesim_gemm.csv"
SHARED_SCALESIM_CSV = REPO_ROOT.parent / "shared" / "reference" / "scalesim_gemm.csv"


def ok(proc):
    """Assert a CLI run succeeded; return its stdout."""
    assert proc.returncode == 0, (f"exit {proc.returncode}\nstdout:\n{proc.stdout}\n"
                                  f"stderr:\n{proc.stderr}")
    assert "Traceback" not in proc.stderr
    return proc.stdout


def user_error(proc) -> str:
    """Assert a CLI run failed as a user error (exit 2, one stderr line, no traceback);
    return that line."""
    assert proc.returncode == 2, (f"exit {proc.returncode}\nstdout:\n{proc.stdout}\n"
                                  f"stderr:\n{proc.stderr}")
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("archsim") and "error" in lines[0], lines[0]
    return lines[0]


def serve_argv(base: dict, args: list) -> list:
    """``archsim serve --quiet`` arguments: ``base`` flag -> value, overridden by ``args``
    (flag, value pairs)."""
    base = dict(base)
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    return ["serve", "--quiet"] + [x for kv in base.items() for x in kv]
