"""Writers of the trees this tool owns do not follow a planted link (see wizard.base.ownedfs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.base import ownedfs
from wizard.base.filelock import take
from wizard.base.yamlfile import write_atomic
from wizard.engine.pause import set_paused


@pytest.fixture
def dangling(tmp_path: Path) -> tuple[Path, Path]:
    """A link in the owned tree ``tmp_path/tree`` to a name outside that does not exist."""
    (tmp_path / "tree").mkdir()
    link, target = tmp_path / "tree" / "file", tmp_path / "elsewhere"
    link.symlink_to(target)
    return link, target


@pytest.mark.parametrize("write", [
    lambda path: ownedfs.touch(path),
    lambda path: ownedfs.open_append(path).close(),
    lambda path: ownedfs.write_new(path, "x", 0o644),
    lambda path: ownedfs.read_text(path),
], ids=["touch", "append", "new", "read"])
def test_a_link_is_refused_in_one_line(dangling: tuple[Path, Path], write) -> None:
    link, target = dangling
    with pytest.raises(ownedfs.LinkError) as caught:
        write(link)
    assert str(caught.value) == (f"{link} is a symbolic link: crowbar-wizard does not write "
                                 "through links inside the directories it owns; remove it")
    assert not target.exists()


def test_pause_is_not_made_through_a_link(dangling: tuple[Path, Path]) -> None:
    link, target = dangling
    link = link.rename(link.with_name("paused"))
    with pytest.raises(ownedfs.LinkError):
        set_paused(link.with_name("journal.db"), True)
    assert not target.exists()


def test_whole_file_writes_replace_a_link(dangling: tuple[Path, Path], tmp_path: Path) -> None:
    link, target = dangling
    write_atomic(link, "mine\n", mode=0o644)
    assert not link.is_symlink() and link.read_text() == "mine\n"
    link.unlink()
    link.symlink_to(target)
    source = tmp_path / "source"
    source.write_bytes(b"\x00loader")
    ownedfs.copy_file(source, link)
    assert not link.is_symlink() and link.read_bytes() == b"\x00loader"
    assert not target.exists()


def test_a_lock_file_is_not_opened_through_a_link(dangling: tuple[Path, Path]) -> None:
    link, target = dangling
    with pytest.raises(OSError):
        take(link, {})
    assert not target.exists()


def test_real_dir_refuses_a_linked_directory(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "dnsmasq").symlink_to(tmp_path / "outside")
    with pytest.raises(ownedfs.LinkError, match="dnsmasq is a symbolic link"):
        ownedfs.real_dir(tmp_path / "tree" / "dnsmasq" / "hosts", tmp_path / "tree")
    assert list((tmp_path / "outside").iterdir()) == []
    assert ownedfs.real_dir(tmp_path / "tree" / "a" / "b", tmp_path / "tree").is_dir()
