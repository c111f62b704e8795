"""A plain install, as an operator makes one with ``pip install .``: a wheel of this checkout
in a fresh venv, run from a directory that is not the checkout. The barclamps, their
templates, the wizard's styles and the examples must all come from the package.

The venv gets the wheel alone (``--no-deps``, no index); the dependencies come from the
venv running the tests, through a path file. Only this venv's site-packages is a site
directory, so the checkout (installed there editable) is not importable: ``wizard`` is the
wheel's, which the test checks first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
LAB_NETWORK = "127.86.0.0/24"
"""The lab's BMCs stay off the default 127.1.0.0/22, which another lab may hold."""

NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv*", "__pycache__", "*.egg-info", "build", "dist", ".*cache", ".hypothesis",
    "tests", "benchmarks", "snapshot_report.html")


def build_wheel(into: Path) -> Path:
    """A wheel of the checkout, built from a copy (a build writes build/ and egg-info)."""
    source = into / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCES)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(into),
               str(source)]
    if _setuptools_major() >= 77:  # what pyproject.toml's [build-system] requires: offline
        command.insert(4, "--no-build-isolation")
    built = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = into.glob("crowbar_wizard-*.whl")
    return wheel


def _setuptools_major() -> int:
    """The major version of setuptools in this venv (0: none)."""
    try:
        return int(metadata.version("setuptools").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return 0


def fresh_venv(venv: Path, wheel: Path) -> Path:
    """A venv with the wheel installed and this venv's packages on its path; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True,
                             timeout=60).stdout.strip()
    ours = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    (Path(purelib) / "_running_venv.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)], capture_output=True, text=True, timeout=300, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return python


PILOT = """
import asyncio
from wizard.answers.examples import LAB_EXAMPLE
from wizard.tui.app import WizardApp, starting_answers

async def main():
    path, answers, saved = starting_answers(None)  # no answers/ here: the lab example
    assert (path, saved) == (None, False) and answers.site.name == "lab", (path, answers)
    app = WizardApp(None, None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.screen.step == "welcome", app.screen
        await pilot.click("#lab")
        await pilot.pause()
        assert app.answers.site.name == "lab" and app.path is None, app.answers
        app.go("network")
        await pilot.pause()
        assert app.screen.step == "network", app.screen
    print(LAB_EXAMPLE)

asyncio.run(main())
"""


def test_a_wheel_installed_elsewhere_has_everything(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "wheel")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("wizard/")}
    sources = {path.relative_to(ROOT).as_posix() for path in (ROOT / "wizard").rglob("*")
               if path.is_file() and "__pycache__" not in path.parts}
    assert sources - shipped == set(), "files of wizard/ the wheel leaves out"

    venv = tmp_path / "venv"
    python = fresh_venv(venv, wheel)
    here = tmp_path / "operator"
    here.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CROWBAR_") and k not in ("PYTHONPATH", "PYTHONHOME")}
    env |= {"CROWBAR_LAB_DIR": str(tmp_path / "lab"), "CROWBAR_STATE_DIR": str(tmp_path / "state"),
            "HOME": str(here), "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}

    def run(*words: str, status: int = 0, timeout: float = 120) -> str:
        done = subprocess.run(list(words), cwd=here, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        out = done.stdout + done.stderr
        assert done.returncode == status, f"{' '.join(words)} exited {done.returncode}:\n{out}"
        assert "Traceback" not in out, out
        return out

    where = run(str(python), "-c", "import wizard; print(wizard.__file__)").strip()
    assert Path(where).is_relative_to(venv), f"wizard imported from {where}, not the wheel"
    cw = str(venv / "bin" / "crowbar-wizard")
    assert "Barclamps (23)" in run(cw, "barclamps")
    assert "nova-compute-kvm" in run(cw, "barclamps", "show", "nova")
    assert "lab-small" in run(cw, "example")
    run(cw, "example", "lab-small", "-o", "lab.yaml")
    assert "lab.yaml: valid (6 nodes" in run(cw, "validate", "lab.yaml")
    assert "Address budget" in run(cw, "plan", "lab.yaml")
    # every barclamp's Chef templates, and the PXE tree's
    env["CROWBAR_KEYSTONE_PASSWORD"] = "plain-install"
    assert "to chef-repo" in run(cw, "chef", "export", "lab.yaml", "chef-repo")
    run(cw, "pxe", "render", "lab.yaml", "pxe")

    lab_example = run(str(python), "-c", PILOT, timeout=120).strip().splitlines()[-1]
    assert Path(lab_example).is_relative_to(venv) and Path(lab_example).is_file()

    try:
        run(cw, "lab", "up", "--nodes", "6", "--network", LAB_NETWORK)
        assert "all 6 nodes ready" in run(cw, "apply", "lab.yaml", "--lab", timeout=300)
        assert "ctl-1" in run(cw, "status", "lab.yaml", "--lab")
    finally:
        subprocess.run([cw, "lab", "down"], cwd=here, env=env, capture_output=True,
                       timeout=120, check=False)
