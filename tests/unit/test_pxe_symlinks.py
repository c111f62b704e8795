"""No write of ``pxe render`` (or of dnsmasq's driver) follows a symbolic link out of DIR.

A link is planted at every path a render writes, the old predictable temp names included:
dangling, to a file outside and to a directory outside. Then the render runs again: either
it succeeds and the link is gone (replaced), or it stops with one clear line, exit 1;
either way nothing outside DIR was created or changed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wizard.base.ownedfs import LinkError
from wizard.cli.main import main
from wizard.provisioning.dnsmasq import Dnsmasq, find_dnsmasq

EXAMPLE = Path("answers/examples/lab-small.yaml")
WRITTEN = [
    ".crowbar-wizard-pxe", "token.key",
    "dnsmasq", "dnsmasq/hosts", "dnsmasq/dnsmasq.conf", "dnsmasq/dnsmasq.conf.last-good",
    "dnsmasq/hosts/nodes", "dnsmasq/hosts/nodes.last-good", "dnsmasq/.trial-{pid}.conf",
    "tftp", "tftp/pxelinux.cfg", "tftp/undionly.kpxe", "tftp/ipxe.efi",
    "tftp/.pxelinux.cfg.new", "tftp/.pxelinux.cfg.old",
    "http", "http/boot", "http/boot/default.ipxe", "http/install", ".http.new", ".http.old",
]
"""Paths (relative to DIR) a render writes or wrote: files, directories, temp names."""


def snapshot(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry under ``root``: mode and, for files, content (links not followed)."""
    found: dict[str, tuple[int, bytes | None]] = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        found[str(path.relative_to(root))] = (
            info.st_mode, path.read_bytes() if path.is_file() and not path.is_symlink()
            else None)
    return found


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """What a link may point to: a file, a directory with a file, and a name not there."""
    root = tmp_path / "outside"
    (root / "victim-dir").mkdir(parents=True)
    (root / "victim").write_text("precious\n")
    (root / "victim-dir" / "inside").write_text("precious too\n")
    return root


@pytest.mark.skipif(find_dnsmasq() is None, reason="dnsmasq is not installed")
@pytest.mark.parametrize("target", ["absent", "victim", "victim-dir"])
@pytest.mark.parametrize("relative", WRITTEN)
def test_render_never_writes_through_a_link(tmp_path: Path, outside: Path, relative: str,
                                            target: str, capsys) -> None:
    tree = tmp_path / "pxe"
    assert main(["pxe", "render", str(EXAMPLE), str(tree)]) == 0
    link = tree / relative.format(pid=os.getpid())
    if link.is_dir() and not link.is_symlink():
        os.rename(link, tmp_path / "moved-away")  # (kept: some are in use by other links)
    else:
        link.unlink(missing_ok=True)
    link.symlink_to(outside / target)
    before = snapshot(outside)
    capsys.readouterr()

    code = main(["pxe", "render", str(EXAMPLE), str(tree)])

    assert snapshot(outside) == before
    assert not (outside / "absent").exists()
    err = capsys.readouterr().err
    if code == 0:
        if not link.name.startswith(".") and not link.name.endswith(".last-good"):
            assert not link.is_symlink()  # replaced (temp names and unused ones stay)
        assert "Traceback" not in err
    else:
        assert code == 1
        assert err.count("\n") == 1 and err.startswith("cannot render: "), err
        assert link.name in err


@pytest.mark.skipif(find_dnsmasq() is None, reason="dnsmasq is not installed")
@pytest.mark.parametrize("relative", ["leases", "dnsmasq.log"])
def test_dnsmasq_start_refuses_a_link_where_it_writes(tmp_path: Path, outside: Path,
                                                      relative: str) -> None:
    """dnsmasq runs as root: its lease file and log are not opened through a link (the
    refusal comes before any process starts)."""
    directory = tmp_path / "dnsmasq"
    directory.mkdir()
    (directory / relative).symlink_to(outside / "absent")
    driver = Dnsmasq(directory)
    with pytest.raises(LinkError, match=f"{relative} is a symbolic link"):
        driver.start()
    assert not driver.running()
    assert not (outside / "absent").exists()


@pytest.mark.skipif(find_dnsmasq() is None, reason="dnsmasq is not installed")
@pytest.mark.parametrize("target", ["absent", "victim"])
def test_dnsmasq_check_writes_no_predictable_temp_file(tmp_path: Path, outside: Path,
                                                       target: str) -> None:
    """The config under test goes to an unpredictable new file, not ``.trial-<pid>.conf``."""
    directory = tmp_path / "dnsmasq"
    directory.mkdir()
    (directory / f".trial-{os.getpid()}.conf").symlink_to(outside / target)
    before = snapshot(outside)
    Dnsmasq(directory).check("port=0\n", "")
    assert snapshot(outside) == before
    assert sorted(p.name for p in directory.iterdir()) == [f".trial-{os.getpid()}.conf"]
