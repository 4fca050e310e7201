"""Every notebook in ``notebooks/`` runs top to bottom without a cell error.

Each notebook is executed in a fresh Jupyter kernel (nbclient + ipykernel, the ``python3``
kernel of this interpreter) with:

- ``ARCHSIM_NOTEBOOK_SMALL=1``: the notebook's parameters cell switches to its tiny settings
  (see notebooks/README.md), so the whole run takes seconds, not minutes;
- ``MPLBACKEND=Agg``: no display is needed;
- the working directory ``notebooks/`` (as when a person opens it there) and the checkout first
  on ``PYTHONPATH``, so the kernel imports this checkout's archsim whether or not it is installed;
- a time limit per cell (:data:`CELL_TIMEOUT_S`).

Notebooks are found by glob, so a new notebook is covered without touching this file. The
notebook packages (nbclient, nbformat, ipykernel) are part of the ``test`` extra; they are
imported inside the tests so that, if they are missing, these tests fail (not skip) while the
rest of the suite still collects and runs.
"""
from __future__ import annotations

import json
import os

import pytest

from testpaths import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Seconds one cell may run on the small settings before the test fails.
CELL_TIMEOUT_S = 180


def _kernel_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ARCHSIM_DEBUG", None)
    env["ARCHSIM_NOTEBOOK_SMALL"] = "1"
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def test_notebooks_found():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_saved_clean(path):
    """Saved without outputs or execution counts, valid nbformat 4, with a parameters cell."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: clear the outputs of cells {dirty} before saving"
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert tagged, f"{path.name}: no cell is tagged 'parameters'"
    assert "ARCHSIM_NOTEBOOK_SMALL" in nb.cells[tagged[0]].source, (
        f"{path.name}: the parameters cell does not read ARCHSIM_NOTEBOOK_SMALL")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute(env=_kernel_env(), cwd=str(NOTEBOOK_DIR))
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell raised\n{exc}", pytrace=False)
    errors = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
    assert not errors, f"{path.name}:\n" + "\n".join(errors)
    # every code cell ran (none was skipped by a timeout or an interrupted kernel)
    unrun = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and c.source.strip() and c.get("execution_count") is None]
    assert not unrun, f"{path.name}: cells {unrun} did not run"
    # an output that is not JSON-serializable would break saving the executed notebook
    json.dumps(nb)
