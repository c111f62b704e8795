"""The example answers files shipped with the package (``answers/examples`` in a checkout):
the wizard opens the lab example, and an operator copies one to start from."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

EXAMPLES = Path(str(files("wizard"))) / "examples"
LAB_EXAMPLE = EXAMPLES / "lab-small.yaml"
