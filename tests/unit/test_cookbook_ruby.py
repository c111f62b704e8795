"""The shipped cookbooks' Ruby, checked by Ruby's own tools: every .rb parses (``ruby -c``),
every ERB template compiles to Ruby that parses (``erb -x``), and rubocop finds nothing,
with the style in ``wizard/barclamps/.rubocop.yml`` (rubocop's defaults, Cookstyle's choices
where they differ)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import need

BARCLAMPS = Path(__file__).parents[2] / "wizard" / "barclamps"
RUBY = sorted(BARCLAMPS.glob("*/cookbooks/*/**/*.rb"))
TEMPLATES = sorted(BARCLAMPS.glob("*/cookbooks/*/templates/**/*.erb"))


def test_there_is_ruby_to_check() -> None:
    assert len(RUBY) >= 20 and len(TEMPLATES) >= 8


@pytest.mark.parametrize("path", RUBY, ids=lambda p: str(p.relative_to(BARCLAMPS)))
def test_ruby_parses(path: Path) -> None:
    result = subprocess.run([need("ruby"), "-wc", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(BARCLAMPS)))
def test_erb_templates_compile(path: Path) -> None:
    source = subprocess.run([need("erb"), "-x", "-T", "-", str(path)], capture_output=True,
                            text=True, timeout=60, check=True).stdout
    result = subprocess.run([need("ruby"), "-c"], input=source, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_rubocop_finds_nothing() -> None:
    result = subprocess.run([need("rubocop"), "--format", "emacs", "--cache", "false", "."],
                            cwd=BARCLAMPS, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
