"""The example answers files shipped with the package (``answers/examples`` in a checkout):
the wizard opens the lab example, and an operator copies one to start from
(``crowbar-wizard example NAME -o FILE``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

EXAMPLES = Path(str(files("wizard"))) / "examples"
LAB_EXAMPLE = EXAMPLES / "lab-small.yaml"


def examples() -> dict[str, Path]:
    """Every shipped example by name (its file name without ``.yaml``), sorted."""
    return {path.stem: path for path in sorted(EXAMPLES.glob("*.yaml"))}


def summary(path: Path) -> str:
    """What an example is, from its first comment line (``# Crowbar Wizard example: ...``)."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    return first.lstrip("# ").removeprefix("Crowbar Wizard example: ").rstrip(".")
