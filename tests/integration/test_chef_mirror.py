"""The preflight's mirror check against real mirrors over real HTTP.

Each mirror is a directory laid out and compressed as Debian's, Ubuntu's or Rocky's are
(:mod:`tests.fake_mirror`: real ``Packages.xz``/``.gz`` files, ``repomd.xml`` and a gzipped
``primary.xml``), served by python's ``http.server`` in a process of its own on a free port
of 127.0.0.1; the check reads it as ``pxe preflight`` does. Stand-ins: none but the mirrors'
small size (and, for the bounds, the bounds made small).
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fake_mirror import NEAR_MISSES, apt_component, rpm_repo, serve
from wizard.provisioning import mirror
from wizard.provisioning.preflight import PreflightReport, check_chef_mirror

pytestmark = pytest.mark.slow
OWN = "http://192.0.2.10:8091"
"""The admin node's own provisioner (an address nothing here answers on)."""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """Serve a directory: its URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(directory: Path) -> str:
        process, port = serve(directory)
        processes.append(process)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


def check(url: str, os_id: str, timeout: float = 5) -> PreflightReport:
    return check_chef_mirror(url, os_id, OWN, timeout=timeout)


def test_a_debian_mirror_without_chef_is_a_problem_naming_the_os_and_package(
        tmp_path: Path, served: Callable[[Path], str]) -> None:
    """Debian's own archive has no chef package: the preflight says so before any node
    installs, naming the OS, the package and where it looked."""
    apt_component(tmp_path / "debian", "bookworm", "main", NEAR_MISSES)
    url = served(tmp_path) + "/debian"
    report = check(url, "debian-12")
    assert report.problems == [
        f"the mirror {url} has no package 'chef' (chef-client) for debian-12 in "
        "dists/bookworm/main/binary-amd64: every node would install without its Chef client; "
        "add the package to the mirror, or unset chef.server_url"]


def test_a_debian_mirror_with_chef_passes(tmp_path: Path, served: Callable[[Path], str]) -> None:
    index = apt_component(tmp_path / "debian", "bookworm", "main", [*NEAR_MISSES, "chef"])
    url = served(tmp_path) + "/debian/"  # a trailing slash is the same mirror
    report = check(url, "debian-12")
    assert report.problems == []
    assert report.notes == [f"the mirror has chef-client for debian-12: {url}dists/bookworm/"
                            f"main/binary-amd64/{index.name}"]


def test_ubuntu_is_looked_for_in_every_component_and_index_form(
        tmp_path: Path, served: Callable[[Path], str]) -> None:
    """Subiquity's sources list all four components: chef in universe (a gzipped index,
    no .xz there) counts; in none of them is a problem."""
    root = tmp_path / "ubuntu"
    apt_component(root, "noble", "main", NEAR_MISSES)
    apt_component(root, "noble", "restricted", [])
    universe = apt_component(root, "noble", "universe", ["ohai"], index="Packages.gz")
    url = served(tmp_path) + "/ubuntu"
    report = check(url, "ubuntu-24.04")
    assert report.problems
    assert "'chef' (chef-client) for ubuntu-24.04 in dists/noble/main,restricted,universe," \
           "multiverse/binary-amd64" in report.problems[0]
    universe.unlink()
    apt_component(root, "noble", "universe", ["ohai", "chef"], index="Packages.gz")
    assert check(url, "ubuntu-24.04").problems == []


def test_a_rocky_mirror_is_read_through_repomd(tmp_path: Path,
                                               served: Callable[[Path], str]) -> None:
    """BaseOS and AppStream, each through its repomd.xml to its primary index: a package
    that only requires chef is not chef."""
    root = tmp_path / "rocky"
    rpm_repo(root, "BaseOS", NEAR_MISSES)
    rpm_repo(root, "AppStream", ["chef-workstation"])
    url = served(tmp_path) + "/rocky"
    [problem] = check(url, "rocky-9").problems
    assert "no package 'chef' (chef-client) for rocky-9 in BaseOS and AppStream" in problem
    rpm_repo(root, "AppStream", ["chef-workstation", "chef"])
    report = check(url, "rocky-9")
    assert report.problems == [] and "/AppStream/x86_64/os/repodata/" in report.notes[0]


def test_a_mirror_without_indexes_is_one_clear_problem(tmp_path: Path,
                                                       served: Callable[[Path], str]) -> None:
    (tmp_path / "debian").mkdir()
    url = served(tmp_path) + "/debian"
    [problem] = check(url, "debian-12").problems
    assert problem == (f"cannot check that the mirror {url} has chef-client for debian-12: "
                       f"{url}/dists/bookworm/ has no package index (Packages.xz or "
                       "Packages.gz or Packages) for main")
    [problem] = check(url, "alma-9").problems
    assert f"{url}/BaseOS/x86_64/os/repodata/repomd.xml is missing" in problem


def test_a_mirror_that_cannot_be_reached_is_one_line_not_a_traceback() -> None:
    """Nothing listens: one problem line naming the mirror and why."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    [problem] = check(f"http://127.0.0.1:{port}/debian", "debian-12").problems
    assert problem.startswith(f"cannot check that the mirror http://127.0.0.1:{port}/debian "
                              "has chef-client for debian-12: ")
    assert "Connection refused" in problem and "\n" not in problem


def test_a_mirror_that_never_answers_times_out() -> None:
    """It takes the connection and says nothing: the request's timeout ends the check."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/debian"
        [problem] = check(url, "debian-12", timeout=0.5).problems
    assert "cannot check that the mirror" in problem and "timed out" in problem


def test_what_is_downloaded_and_unpacked_is_bounded(
        tmp_path: Path, served: Callable[[Path], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An index that unpacks to more than the bound (here: a small bound, and a real xz
    file of 4.6 MB of stanzas in under 1 KB) is refused; so is one that downloads larger."""
    root = tmp_path / "debian"
    index = apt_component(root, "bookworm", "main", ["ohai"] * 20_000)
    url = served(tmp_path) + "/debian"
    with monkeypatch.context() as patched:
        patched.setattr(mirror, "MAX_UNPACKED_BYTES", 1024 * 1024)
        [problem] = check(url, "debian-12").problems
    assert problem.endswith("Packages.xz unpacks to more than 1048576 bytes")
    monkeypatch.setattr(mirror, "MAX_INDEX_BYTES", index.stat().st_size - 1)
    [problem] = check(url, "debian-12").problems
    assert problem.endswith(f"Packages.xz is larger than {index.stat().st_size - 1} bytes")


def test_a_mirror_on_the_provisioners_own_address_is_noted_not_asked() -> None:
    """The provisioner starts after the preflight: there is nothing to ask yet."""
    report = check(f"{OWN}/ubuntu", "ubuntu-24.04")
    assert report.problems == []
    assert report.notes == [f"chef-client in the mirror not checked: {OWN}/ubuntu is on this "
                            f"admin node's own provisioner ({OWN}), which starts after the "
                            "preflight"]
