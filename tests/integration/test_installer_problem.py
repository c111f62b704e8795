"""An installer whose Chef client fails reports it at once: its post-install step, run for real.

Each case renders a node's answer file (preseed, user-data or kickstart) and runs its
post-install step as its installer would, under a real shell, against the real provisioner
HTTP service (:mod:`tests.integration.provisioner_process`, serving the lab example with
the same token key) listening on the admin address in a network namespace; the node's
commands run in a namespace of their own holding the node's reserved address, so the
service's checks (the node's address, its token) are the real ones. Then the journal the
service wrote says what the admin node knows: ``problem`` with the installer's reason, or
``installed``.

What stands in, and why:

- the installer's environment and the installed system are two directories made into
  roots (a private mount namespace: this machine's ``/usr`` bound read-only, its ``/dev``,
  their own ``/etc``, ``/var``, ``/root``) and entered with ``chroot``: there is no d-i,
  subiquity or anaconda here, and nothing may write to this machine's own files;
- d-i's ``in-target`` and curtin's ``curtin in-target --`` are a ``chroot /target`` (the
  real ones also log the output and mount /proc: nothing here needs either);
- apt is real (Debian's, for Ubuntu's too), in an installed system whose apt knows no
  index that lists ``chef``: as with a mirror that has none, it says "Unable to locate
  package chef". dnf is not installed here: a script says what dnf says for a package
  no repository has, and fails as it does;
- where a case needs the package to install, apt-get and dnf are scripts that succeed;
- ``update-initramfs``, ``update-grub`` and ``restorecon`` do nothing: the installed
  system's initramfs, boot loader and SELinux labels are not made here.

The shells are the real ones each installer uses, as far as this machine has them: dash
for d-i's busybox ash and for subiquity, bash for anaconda's %post.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import need
from tests.netns import Segment, leftovers, need_root_netns
from tests.unit.test_install_templates import SHELLS, VARIANTS, _answers, post_commands
from wizard.answers import OS_FAMILIES
from wizard.catalog import default_catalog
from wizard.engine.journal import Journal
from wizard.provisioning.render import install_files
from wizard.provisioning.site import ProvisionerSite

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ADMIN = "192.168.124.10"
PORT = 8091
"""The lab example's admin address and provisioner port: what its answer files call."""
STANDINS = {
    "apt-get:ok": "#!/bin/sh\necho 'Setting up chef (18.2.7-1) ...'\n",
    "dnf:ok": "#!/bin/sh\necho 'Installed: chef-18.2.7-1.el9.x86_64'\n",
    "dnf:missing": "#!/bin/sh\necho 'Last metadata expiration check: 0:01:02 ago.'\n"
                   "echo 'No match for argument: chef' >&2\n"
                   "echo 'Error: Unable to find a match: chef' >&2\nexit 1\n",
    "nothing": "#!/bin/sh\nexit 0\n",
}
DRIVER = r"""
set -eu
family=$1; shift
for root in "$@"; do  # each a root: this machine's /usr read-only, its /dev
    mount --bind /usr "$root/usr"
    mount -o remount,bind,ro "$root/usr"
    mount --bind /dev "$root/dev"
done
n=0
while [ -f "$1/commands/$n" ]; do  # in order, until one fails, as the installers do
    status=0
    chroot "$1" /usr/bin/env -i PATH=/fake:/usr/sbin:/usr/bin HOME=/root \
        "$SHELL_NAME" -c "$(cat "$1/commands/$n")" || status=$?
    echo "command $n: exit $status"
    [ "$status" = 0 ] || exit "$status"
    n=$((n + 1))
done
"""


@dataclass
class Admin:
    segment: Segment
    journal: Path
    log: Path
    work: Path


@pytest.fixture(scope="module")
def admin() -> Iterator[Admin]:
    """The provisioner on the admin address of a segment of its own."""
    need_root_netns()
    for tool in ("curl", "openssl", "apt-get", "bash", "unshare"):
        need(tool)
    work = Path(tempfile.mkdtemp(prefix="cw-instprob-"))
    segment = Segment("ip")
    try:
        server = segment.host("admin", f"{ADMIN}/24")
        (work / "media").mkdir()
        log = work / "provisioner.log"
        process = segment.start(
            server, "env", f"PYTHONPATH={ROOT}", sys.executable, "-m",
            "tests.integration.provisioner_process", str(PORT), str(work), "10", "60", "0",
            "0", ADMIN, log=log, cwd=ROOT)
        deadline = time.monotonic() + 30
        while not segment.run(server, "ss", "-Hltn", f"sport = :{PORT}").stdout.strip():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the provisioner did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield Admin(segment, work / "journal.db", log, work)
    finally:
        segment.close()
        shutil.rmtree(work, ignore_errors=True)
        assert leftovers(segment.prefix) == []


@dataclass
class Install:
    """What running a node's post-install step left behind."""

    result: subprocess.CompletedProcess[str]
    target: Path
    mirror: str


def install(admin: Admin, os_id: str, node: str, *, variant: str = "example",
            package: str = "real") -> Install:
    """Run ``node``'s post-install step for ``os_id`` (``package``: ``real`` apt, or a
    stand-in package manager that ``ok`` installs chef or, for dnf, finds it ``missing``)."""
    family = OS_FAMILIES[os_id][0]
    answers = _answers(os_id, **VARIANTS[variant])
    site = ProvisionerSite(answers, default_catalog(), b"k" * 32)
    commands = post_commands(family, install_files(site, site.nodes[node]))
    base = admin.work / node
    target = base / "target" if family != "rhel" else base
    roots = [base, target] if family != "rhel" else [base]
    for root in roots:
        for directory in ("usr", "dev", "fake", "etc/ssl", "etc/network", "root", "tmp",
                          "var/log", "commands"):
            (root / directory).mkdir(parents=True, exist_ok=True)
        for link in ("bin", "sbin", "lib", "lib64"):
            (root / link).symlink_to(f"usr/{link}")
        shutil.copy("/etc/ssl/openssl.cnf", root / "etc/ssl/")
    for number, command in enumerate(commands):
        (base / "commands" / str(number)).write_text(command)
    standins = {"update-initramfs": "nothing", "update-grub": "nothing",
                "restorecon": "nothing"}
    if family == "rhel":
        standins["dnf"] = f"dnf:{package}"
        (target / "etc/yum.repos.d").mkdir()
        (target / "etc/NetworkManager/system-connections").mkdir(parents=True)
    else:
        tool = "in-target" if family == "debian" else "curtin"
        (base / "fake" / tool).write_text(
            "#!/bin/sh\n" + ("" if family == "debian" else
                             '[ "$1 $2" = "in-target --" ] || exit 2\nshift 2\n')
            + 'exec chroot /target "$@"\n')
        (base / "fake" / tool).chmod(0o755)
        if package == "ok":
            standins["apt-get"] = "apt-get:ok"
        _empty_apt(target)
    for name, kind in standins.items():
        (target / "fake" / name).write_text(STANDINS[kind])
        (target / "fake" / name).chmod(0o755)
    namespace = admin.segment.host(node, f"{site.nodes[node].address}/24")
    driver = admin.work / "driver.sh"
    driver.write_text(DRIVER)
    result = admin.segment.run(
        namespace, "env", f"SHELL_NAME={SHELLS[family]}", "unshare", "--mount",
        "--propagation", "private", "sh", str(driver), family, *map(str, roots),
        check=False, timeout=120)
    return Install(result, target, answers.provisioning.mirror)


def _empty_apt(target: Path) -> None:
    """The installed system's apt, set up with no package index at all."""
    for directory in ("etc/apt/apt.conf.d", "etc/apt/sources.list.d", "etc/apt/preferences.d",
                      "var/lib/dpkg", "var/lib/apt/lists/partial",
                      "var/cache/apt/archives/partial"):
        (target / directory).mkdir(parents=True, exist_ok=True)
    (target / "etc/apt/sources.list").write_text("")
    (target / "var/lib/dpkg/status").write_text("")


def journal_of(admin: Admin, node: str) -> tuple[tuple[str, str | None], list[str]]:
    """``node``'s state and reason as the service recorded them, and every state it was in."""
    with Journal.open(admin.journal, lock=False) as journal:
        states = [event.data["to"] for event in journal.events(kind="transition")
                  if event.node == node]
        return journal.states().get(node, ("", None)), states


@pytest.mark.parametrize(("os_id", "node", "said"), [
    ("debian-12", "ctl-1", "E: Unable to locate package chef"),
    ("ubuntu-24.04", "compute-1", "E: Unable to locate package chef"),
    ("rocky-9", "compute-2", "Error: Unable to find a match: chef"),
])
def test_a_mirror_without_chef_puts_the_node_in_problem_at_once(
        admin: Admin, os_id: str, node: str, said: str) -> None:
    """The package manager cannot install chef: the installer posts the problem with
    the package manager's own last words, the node is in ``problem`` with that reason
    (never ``installed``), and the post-install step still succeeds, so the installed OS
    is kept (with what the step wrote before: root's keys, where it writes them; subiquity
    writes them itself)."""
    done = install(admin, os_id, node, package="missing" if os_id == "rocky-9" else "real")
    assert done.result.returncode == 0, done.result.stdout + done.result.stderr
    reason = f"installer: chef-client could not be installed from {done.mirror}: {said}"
    assert journal_of(admin, node) == (("problem", reason), ["problem"])
    assert said in (done.target / "var/log/crowbar-chef.log").read_text()
    if not os_id.startswith("ubuntu"):
        assert "admin@crowbar" in (done.target / "root/.ssh/authorized_keys").read_text()
    assert not (done.target / "etc/chef/client.pem").exists()
    assert f"{node} reports a problem with its install" in admin.log.read_text()


@pytest.mark.parametrize(("os_id", "node"), [("ubuntu-24.04", "compute-3"),
                                             ("alma-9", "storage-1")])
def test_a_key_the_admin_node_does_not_register_puts_the_node_in_problem(
        admin: Admin, os_id: str, node: str) -> None:
    """chef installs (a stand-in package manager), client.rb and the key are made for real,
    but the admin node registers no key (this provisioner has no Chef server: 404): the
    installer says so, and the node is in ``problem``, not ``installed``."""
    done = install(admin, os_id, node, package="ok")
    assert done.result.returncode == 0, done.result.stdout + done.result.stderr
    assert journal_of(admin, node) == (
        ("problem", "installer: chef-client could not be configured: the admin node did not "
                    "register its key"), ["problem"])
    assert (done.target / "etc/chef/client.pem").stat().st_mode & 0o077 == 0
    assert "chef_server_url" in (done.target / "etc/chef/client.rb").read_text()
    assert f"POST /nodes/{node}/client-key" in admin.log.read_text()


def test_without_a_chef_server_the_node_is_installed(admin: Admin) -> None:
    """Positive control: the same run without a Chef server calls ``installed``."""
    done = install(admin, "debian-12", "storage-2", variant="no-chef")
    assert done.result.returncode == 0, done.result.stdout + done.result.stderr
    assert journal_of(admin, "storage-2") == (("installed", None), ["installed"])
