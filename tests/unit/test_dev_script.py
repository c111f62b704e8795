"""``./dev lab``: what it runs, with stand-ins for the venv's tools (no setup, no lab)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.terminal import PtySession

ROOT = Path(__file__).resolve().parents[2]


def dev_checkout(tmp_path: Path) -> Path:
    """A copy of ``dev`` whose venv is set up already and whose ``crowbar-wizard`` writes
    its arguments to ``calls`` (the lab: not running)."""
    if subprocess.run(["dpkg-query", "-W", "-f=${Status}", "goiardi"], capture_output=True,
                      text=True).stdout != "install ok installed":
        pytest.skip("goiardi is not installed (./dev deps installs it): ./dev lab would")
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").symlink_to(sys.executable)
    wizard = bin_ / "crowbar-wizard"
    wizard.write_text(f"""#!/bin/sh
echo "$*" >> {tmp_path / "calls"}
[ "$1 $2" != "lab status" ] || echo '{{"running": false}}'
""")
    wizard.chmod(0o755)
    stamp = tmp_path / ".venv" / ".installed"
    stamp.touch()
    later = time.time() + 5
    os.utime(stamp, (later, later))  # newer than pyproject.toml: no pip install
    return tmp_path


def test_dev_lab_at_a_terminal_opens_the_lab_example(tmp_path: Path) -> None:
    """Not the newest file in answers/ (the lab's example is what the README promises)."""
    checkout = dev_checkout(tmp_path)
    (checkout / "answers").mkdir()
    (checkout / "answers" / "site.yaml").write_text("site: {}\n")
    session = PtySession.start(["bash", str(checkout / "dev"), "lab"], os.environ)
    try:
        assert session.process.wait(timeout=60) == 0
    finally:
        session.close()
    calls = (checkout / "calls").read_text().splitlines()
    assert "wizard --lab" in calls, calls


def test_dev_without_a_command_lists_lowest() -> None:
    done = subprocess.run(["bash", str(ROOT / "dev")], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 2
    assert "./dev lowest  the fast suite against the lowest versions" in done.stdout
    assert done.stdout.rstrip().endswith("installed editable (.[test]).")


def lowest_checkout(tmp_path: Path, pytest_status: int) -> tuple[Path, dict[str, str]]:
    """A copy of ``dev`` whose .venv is set up already, with stand-ins that write their
    arguments to ``calls``: uv (its venv's python exits ``pytest_status``), and dpkg-query
    saying every Debian package is installed (no apt-get)."""
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").symlink_to(sys.executable)
    calls = tmp_path / "calls"
    fake_python = f'#!/bin/sh\necho "lowest python $*" >> {calls}\nexit {pytest_status}\n'
    uv = bin_ / "uv"
    uv.write_text(f"""#!/bin/sh
echo "uv $*" >> {calls}
if [ "$1" = venv ]; then
    for last; do :; done
    mkdir -p "$last/bin"
    printf '%s' '{fake_python}' > "$last/bin/python"
    chmod 755 "$last/bin/python"
fi
if [ "$1 $2" = "pip compile" ]; then
    for last; do :; done
    printf 'pydantic==2.11.0\\nrich==14.2.0\\ntextual==6.10.0\\n' > "$last"
fi
""")
    uv.chmod(0o755)
    stamp = tmp_path / ".venv" / ".installed"
    stamp.touch()
    later = time.time() + 5
    os.utime(stamp, (later, later))  # newer than pyproject.toml: no pip install
    tools = tmp_path / "tools"
    tools.mkdir()
    dpkg = tools / "dpkg-query"
    dpkg.write_text("#!/bin/sh\nprintf 'install ok installed'\n")
    dpkg.chmod(0o755)
    env = os.environ | {"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    return tmp_path, env


def test_dev_lowest_runs_the_fast_suite_on_uvs_lowest_direct_resolution(tmp_path: Path) -> None:
    checkout, env = lowest_checkout(tmp_path, pytest_status=0)
    done = subprocess.run(["bash", str(checkout / "dev"), "lowest", "-x"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lowest = ".venv-lowest"
    assert (checkout / "calls").read_text().splitlines() == [
        f"uv venv -q --python {shutil.which('python3', path=env['PATH'])} {lowest}",
        f"uv pip compile -q --resolution lowest-direct --extra test --python {lowest}/bin/python"
        f" pyproject.toml -o {lowest}/requirements.txt",
        f"uv pip sync -q --python {lowest}/bin/python {lowest}/requirements.txt",
        f"uv pip install -q --python {lowest}/bin/python --no-deps -e .",
        "lowest python -m pytest -x",
    ]
    assert "against them: pydantic==2.11.0 rich==14.2.0 textual==6.10.0" in done.stderr


@pytest.mark.parametrize(("status", "said"), [(1, ""), (5, "pytest collected no tests")])
def test_dev_lowest_fails_as_the_suite_does(tmp_path: Path, status: int, said: str) -> None:
    checkout, env = lowest_checkout(tmp_path, pytest_status=status)
    done = subprocess.run(["bash", str(checkout / "dev"), "lowest"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == (status if status != 5 else 1), done.stderr
    assert said in done.stderr
