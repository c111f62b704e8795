"""Two labs on one machine, through the installed crowbar-wizard command: without --network
the second takes another loopback block and both answer; with the first's block it exits 1
naming the first lab; a lab whose directory was removed under it is named too, and stopped
by lab down. The labs without --network take free blocks of 127.1.0.0/16 (beside a
developer's own lab, if one is up); the others are on 127.83.0.0/16, away from other tests'."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import netaddr
import pytest

from wizard.lab import control
from wizard.lab.control import AddressesUnavailable, Lab
from wizard.lab.fleet import default_port

pytestmark = pytest.mark.slow


def cli(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = shutil.which("crowbar-wizard", path=str(Path(sys.executable).parent))
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CROWBAR_LAB_DIR": str(directory)}, check=False)


def test_a_second_lab_takes_another_block_or_names_the_first(tmp_path: Path) -> None:
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    try:
        up = cli(first, "lab", "up", "--nodes", "3")
        assert up.returncode == 0, up.stderr
        again = cli(second, "lab", "up", "--nodes", "2")
        assert again.returncode == 0, again.stderr
        labs = [json.loads(cli(d, "lab", "status", "--json").stdout) for d in (first, second)]
        for lab in labs:
            assert lab["running"] and all(b["answering"] for b in lab["bmcs"]), lab
        blocks = [netaddr.IPNetwork(Lab(d).spec().network) for d in (first, second)]
        assert blocks[0].prefixlen == blocks[1].prefixlen == 22
        assert blocks[0] != blocks[1] and blocks[1] in netaddr.IPNetwork("127.1.0.0/16")
        assert all(netaddr.IPAddress(b["address"]) in blocks[1] for b in labs[1]["bmcs"])
        note = again.stdout.splitlines()[1]
        assert note.startswith(f"lab up: on {blocks[1]}, as 127.1.0.0/22 is in use"), note
        if blocks[0] == netaddr.IPNetwork("127.1.0.0/22"):  # no lab of the developer's: ours
            assert note.endswith(f"by the lab in {first} (fleet pid {labs[0]['pid']})"), note

        refused = cli(third, "lab", "up", "--nodes", "1", "--network", str(blocks[0]))
        assert refused.returncode == 1
        address = labs[0]["bmcs"][0]["address"]
        assert refused.stderr == (
            f"lab up: {address}:{labs[0]['bmcs'][0]['port']} is in use by the lab in {first} "
            f"(fleet pid {labs[0]['pid']}); give another --network, or none to take a free "
            "block\n")
        assert not third.exists()
    finally:
        downs = [cli(d, "lab", "down") for d in (first, second, third)]
    assert [d.returncode for d in downs] == [0, 0, 0]
    _wait_for_none_left(tmp_path)


def test_a_lab_whose_directory_was_removed_is_named_and_stopped_by_lab_down(
        tmp_path: Path) -> None:
    gone, other = tmp_path / "gone", tmp_path / "other"
    try:
        assert cli(gone, "lab", "up", "--nodes", "2", "--network", "127.83.0.0/24").returncode == 0
        pid = Lab(gone).pid()
        shutil.rmtree(gone)  # its processes go on, holding the addresses
        refused = cli(other, "lab", "up", "--nodes", "2", "--network", "127.83.0.0/24")
        assert refused.returncode == 1
        assert refused.stderr.startswith(
            f"lab up: 127.83.0.1:{default_port()} and 1 more of the 2 BMC addresses are in use "
            f"by a lab whose directory {gone} was removed while it ran (fleet pid {pid}; "
            f"`crowbar-wizard lab down` with CROWBAR_LAB_DIR={gone} stops it)"), refused.stderr
        assert "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1
        assert not other.exists()

        down = cli(gone, "lab", "down")
        assert down.stdout.startswith("lab down: the BMC fleet, its node agents"), down.stdout
        _wait_for_none_left(gone)
        up = cli(other, "lab", "up", "--nodes", "2", "--network", "127.83.0.0/24")
        assert up.returncode == 0, up.stderr  # the addresses are free again
    finally:
        cli(gone, "lab", "down")
        cli(other, "lab", "down")
    _wait_for_none_left(tmp_path)


def test_a_fleet_that_meets_a_held_address_says_what_holds_it(tmp_path: Path) -> None:
    """Taken between lab up's check and the fleet's bind (or while a fleet that
    ensure_running restarts was down): the fleet ends with one line, lab up names the
    holder."""
    lab = Lab(tmp_path / "lab")
    lab.up(2, network="127.83.1.0/24")
    try:
        control.stop_group(lab.pidfile)  # the fleet dies; its directory stays
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.83.1.2", default_port()))
            with pytest.raises(AddressesUnavailable) as raised:
                lab.ensure_running()
        assert str(raised.value).startswith(
            f"127.83.1.2:{default_port()} is in use by pid {os.getpid()} ("), raised.value
    finally:
        lab.down()
    _wait_for_none_left(tmp_path)


def test_a_lab_without_network_tries_the_next_block_when_its_own_was_taken(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another lab took the free block found before this one's fleet bound it."""
    offered = iter(["127.83.2.0/24", "127.83.3.0/24"])
    monkeypatch.setattr(control, "free_block", lambda port, first: next(offered))
    lab = Lab(tmp_path / "lab")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.83.2.1", default_port()))
        try:
            spec = lab.up(1)
            assert spec.network == "127.83.3.0/24" == lab.spec().network
            assert lab.answering() == {"127.83.3.1"}
        finally:
            lab.down()
    _wait_for_none_left(tmp_path)


def _wait_for_none_left(root: Path) -> None:
    """Wait until no process names ``root`` in its command line or environment (the node
    agents' command line names no directory; under the CLI their CROWBAR_LAB_DIR does)."""
    deadline = time.monotonic() + 20
    while left := _processes_of(root):
        assert time.monotonic() < deadline, f"still running: {left}"
        time.sleep(0.1)


def _processes_of(root: Path) -> list[str]:
    mark = str(root).encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or proc.name == str(os.getpid()):
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if mark in cmdline or mark in (proc / "environ").read_bytes():
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found
