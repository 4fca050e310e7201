"""Built-in example cascades shipped as YAML in the ``dataflow.cascades`` package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .cascade import Cascade, cascade_from_yaml
from .errors import CascadeError

__all__ = ["builtin_cascades", "load_cascade"]


def _cascade_dir():
    return resources.files("dataflow.cascades")


def builtin_cascades() -> list[str]:
    """Return the names of the built-in cascades (file names without ``.yaml``), sorted."""
    return sorted(entry.name[:-5] for entry in _cascade_dir().iterdir()
                  if entry.name.endswith(".yaml"))


def load_cascade(name_or_path, ranks_override: dict | None = None) -> Cascade:
    """Return a built-in cascade by name (e.g. ``"attention"``) or the cascade in a YAML file.

    ``ranks_override`` replaces rank sizes (e.g. ``{"m": 64, "p": 64}`` for tests). A string
    containing a path separator or ending in ``.yaml``/``.yml``, or a Path, is a file; anything
    else must be a built-in name (CascadeError listing the built-ins otherwise).
    """
    text = str(name_or_path)
    is_path = isinstance(name_or_path, Path) or "/" in text or "\\" in text or \
        text.endswith((".yaml", ".yml"))
    if is_path:
        return cascade_from_yaml(Path(text), ranks_override=ranks_override)
    names = builtin_cascades()
    if text not in names:
        raise CascadeError(f"unknown cascade {text!r} (built-in cascades: {', '.join(names)}; "
                           f"or give a path to a .yaml file)")
    resource = _cascade_dir() / f"{text}.yaml"
    return cascade_from_yaml(resource.read_text(encoding="utf-8"), f"{text}.yaml",
                             ranks_override=ranks_override)
