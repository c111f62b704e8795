"""README.md, run: every command its code blocks, command tables and prose show, on the lab.

The README is parsed: fenced blocks (a ``$ `` prompt line is a command followed by its
output; otherwise each line is a command), the first column of every table headed
``command``, and every inline ``crowbar-wizard ...`` span of the prose. Each command is
either run by a step of :data:`STEPS` (with what a reader substitutes: files, a free
port, the lab's Chef server) or named in :data:`SKIPPED` with the reason. A command
the README gains without either fails the fast test below; a step whose command fails, or
whose output no longer shows what the README shows, fails the slow one, which runs every
step in a temporary directory (its own lab, state and HOME), lab up before and lab down
after, and lists every failed command with its output.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.terminal import PtySession
from wizard.engine.journal import holder
from wizard.lab.control import Lab

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
LAB_NETWORK = "127.84.0.0/24"
"""The lab's BMCs stay off the default 127.1.0.0/22, which another lab may hold."""
EXAMPLE = "answers/examples/lab-small.yaml"
KEYSTONE = "CROWBAR_KEYSTONE_PASSWORD=readme-test"


# --- what the README shows --------------------------------------------------------------------


@dataclass
class Shown:
    """A command as the README shows it, and the output it shows under it (if any)."""

    command: str
    output: list[str] = field(default_factory=list)


_SPAN = re.compile(r"`([^`]+)`")
_CELL = re.compile(r"(?<!\\)\|")
_INLINE = re.compile(r"^(\w+=\S+ )*crowbar-wizard\b")


def readme_commands(text: str) -> list[Shown]:
    """Every command the README shows, in order, with the output shown under a prompt."""
    shown: list[Shown] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            end = lines.index("```", index + 1)
            shown += _block(lines[index + 1:end])
            index = end + 1
            continue
        if line.startswith("|"):
            start = index
            while index < len(lines) and lines[index].startswith("|"):
                index += 1
            shown += _table(lines[start:index])
            continue
        paragraph = []
        while index < len(lines) and lines[index] and not lines[index].startswith(("```", "|")):
            paragraph.append(lines[index])
            index += 1
        for span in _SPAN.findall(" ".join(paragraph)):
            if _INLINE.match(span):
                shown.append(Shown(span))
        index += 1 if not paragraph else 0
    return shown


def _block(body: list[str]) -> list[Shown]:
    if any(line.startswith("$ ") for line in body):
        shown: list[Shown] = []
        for line in body:
            if line.startswith("$ "):
                shown.append(Shown(line[2:].strip()))
            elif shown:
                shown[-1].output.append(line)
        return shown
    commands = (re.sub(r"\s+#.*$", "", line).strip() for line in body)
    return [Shown(command) for command in commands if command]


def _table(rows: list[str]) -> list[Shown]:
    header = [cell.strip() for cell in _CELL.split(rows[0])[1:-1]]
    if not header or header[0] != "command":
        return []
    shown = []
    for row in rows[2:]:
        first = _CELL.split(row)[1]
        shown += [Shown(span.replace("\\|", "|")) for span in _SPAN.findall(first)]
    return shown


# --- running them -----------------------------------------------------------------------------


def _normal(line: str) -> str:
    return " ".join(line.split())


@dataclass
class Workspace:
    """The reader's directory: a copy of answers/, its own lab, state and HOME."""

    root: Path
    env: dict[str, str]

    @property
    def lab(self) -> Lab:
        return Lab(self.root / "lab")

    def run(self, command: str, *, status: int = 0, timeout: float = 120,
            ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` as typed in a shell (leading VAR=value words set the variable)."""
        words = shlex.split(command)
        env = dict(self.env)
        while words and re.match(r"^\w+=", words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        try:
            done = subprocess.run(words, cwd=self.root, env=env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"`{command}` still ran after {timeout} s") from None
        if done.returncode != status:
            raise AssertionError(f"`{command}` exited {done.returncode}, not {status}:\n"
                                 f"{done.stdout}{done.stderr}")
        assert "Traceback" not in done.stderr, f"`{command}`:\n{done.stderr}"
        return done

    def shows(self, shown: Shown, done: subprocess.CompletedProcess[str]) -> None:
        """What the README shows under the command appears in its output, in order; a line
        with an ellipsis (…) stands for lines left out."""
        actual = [_normal(line) for line in (done.stdout + done.stderr).splitlines()]
        position = 0
        for line in shown.output:
            if "…" in line:
                continue
            wanted = _normal(line).replace(str(self.root) + "/", "")
            try:
                position = actual.index(wanted, position) + 1
            except ValueError:
                raise AssertionError(
                    f"`{shown.command}` no longer prints what the README shows:\n  {wanted}\n"
                    f"it printed:\n{done.stdout}{done.stderr}") from None


Step = Callable[[Workspace, dict[str, Shown]], None]


def _contains(done: subprocess.CompletedProcess[str], *texts: str) -> None:
    out = done.stdout + done.stderr
    for text in texts:
        assert text in out, f"{text!r} not in the output of `{shlex.join(done.args)}`:\n{out}"


def top_example(ws: Workspace, shown: dict[str, Shown]) -> None:
    """The first block: new, plan, and validate on a copy of the lab example with three
    mistakes (a misspelt time zone, overlapping ranges, a BMC address used twice)."""
    text = (ws.root / EXAMPLE).read_text()
    lines = text.splitlines(keepends=True)
    second_bmc = [i for i, line in enumerate(lines) if "bmc_address:" in line][1]
    lines[second_bmc] = lines[second_bmc].replace("192.168.124.163", "192.168.124.162")
    broken = "".join(lines).replace("timezone: UTC", "timezone: Europe/Berln").replace(
        "dhcp: 192.168.124.21-192.168.124.80", "dhcp: 192.168.124.21-192.168.124.90")
    (ws.root / "lab.yaml").write_text(broken)
    for command, status in (
            ("crowbar-wizard new --supernet 10.20.0.0/16 --nodes 500 -o answers/site.yaml", 0),
            ("crowbar-wizard plan answers/site.yaml", 0),
            ("crowbar-wizard validate lab.yaml", 2)):
        ws.shows(shown[command], ws.run(command, status=status))


def no_terminal(ws: Workspace, shown: dict[str, Shown]) -> None:
    """`crowbar-wizard` alone without a terminal prints its help (the wizard needs one)."""
    _contains(ws.run("crowbar-wizard"), "usage: crowbar-wizard")


def the_wizard(ws: Workspace, shown: dict[str, Shown]) -> None:
    """The wizard on a terminal (a pty): its steps show, ctrl+q quits."""
    session = PtySession.start(["crowbar-wizard", "wizard", EXAMPLE], ws.env, cwd=ws.root,
                               rows=40, columns=120)
    try:
        session.wait_for(b"Review & save", seconds=60)
        session.keys(b"\x11")
        deadline = time.monotonic() + 30
        while session.process.poll() is None:
            assert time.monotonic() < deadline, "ctrl+q did not quit the wizard"
            session.read(0.2)
        assert session.process.returncode == 0, bytes(session.screen[-800:])
    finally:
        session.close()


def answers_commands(ws: Workspace, shown: dict[str, Shown]) -> None:
    """The commands over answers files alone."""
    examples = " ".join(sorted(str(p.relative_to(ws.root))
                               for p in (ws.root / "answers/examples").glob("*.yaml")))
    done = ws.run(f"crowbar-wizard validate {examples}")
    _contains(done, f"{EXAMPLE}: valid (6 nodes", "warning: environment variable "
              "CROWBAR_KEYSTONE_PASSWORD is not set")
    _contains(ws.run(f"crowbar-wizard plan {EXAMPLE}"), "Address budget")
    _contains(ws.run("crowbar-wizard new --supernet 10.30.0.0/16 --nodes 20 -o new.yaml"),
              "wrote new.yaml")
    ws.run("crowbar-wizard schema")
    assert (ws.root / "answers/schema.json").read_text() == (
        ROOT / "answers/schema.json").read_text(), "the committed answers/schema.json is stale"
    ws.run("crowbar-wizard schema -o schema.json")
    _contains(ws.run("crowbar-wizard barclamps"), "Barclamps (23)", "keystone")
    _contains(ws.run("crowbar-wizard barclamps show nova"), "nova-compute-kvm",
              "Chef cookbooks", "openstack-compute")
    _contains(ws.run(f"crowbar-wizard allocate {EXAMPLE} -o allocated.yaml"),
              "wrote allocated.yaml")


def example(ws: Workspace, shown: dict[str, Shown]) -> None:
    """The examples a plain install ships: listed, and the lab's copied out (the same file
    as answers/examples/), which validates; over an existing file only with --force."""
    _contains(ws.run("crowbar-wizard example"), "lab-small", "openstack", "hadoop")
    (ws.root / "lab.yaml").unlink()  # the first block's broken copy: this reader has none
    _contains(ws.run("crowbar-wizard example lab-small -o lab.yaml"), "wrote lab.yaml")
    assert (ws.root / "lab.yaml").read_text() == (ws.root / EXAMPLE).read_text()
    _contains(ws.run("crowbar-wizard validate lab.yaml"), "lab.yaml: valid (6 nodes")
    ws.run("crowbar-wizard example openstack -o lab.yaml", status=1)
    ws.run("crowbar-wizard example openstack -o lab.yaml --force")
    _contains(ws.run("crowbar-wizard example hadoop"), "name: hadoop")


def chef_export(ws: Workspace, shown: dict[str, Shown]) -> None:
    """chef export needs the keystone password (the quick start says so); an earlier
    export is replaced, a foreign file only with --force."""
    ws.run(f"crowbar-wizard chef export {EXAMPLE} chef-repo", status=1)
    done = ws.run(f"{KEYSTONE} crowbar-wizard chef export {EXAMPLE} chef-repo")
    _contains(done, "wrote ", "to chef-repo", "cookbooks", "Berksfile pins")
    assert (ws.root / "chef-repo/cookbooks/ntp/metadata.rb").is_file()
    assert "cookbook \"openstack-compute\", \"= 20.0.0\"" in (
        ws.root / "chef-repo/Berksfile").read_text()
    (ws.root / "chef-repo/notes.txt").write_text("mine\n")
    ws.run(f"{KEYSTONE} crowbar-wizard chef export {EXAMPLE} chef-repo", status=1)
    _contains(ws.run(f"{KEYSTONE} crowbar-wizard chef export {EXAMPLE} chef-repo --force"),
              "removed notes.txt")
    ws.run(f"CROWBAR_KEYSTONE_PASSWORD=... crowbar-wizard chef export {EXAMPLE} chef-repo")


def into_head(ws: Workspace, shown: dict[str, Shown]) -> None:
    """`crowbar-wizard … | head`: a real pipe whose reader goes away after one line; the
    command ends quietly (141 when it wrote after head left, 0 when all it had fitted in
    the pipe first; tests/e2e/test_lab_discovery.py makes the first case for sure)."""
    pipe = subprocess.run("crowbar-wizard barclamps | head -1; echo \"status ${PIPESTATUS[0]}\"",
                          shell=True, executable="/bin/bash", cwd=ws.root, env=ws.env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert pipe.stdout.splitlines()[-1] in ("status 0", "status 141"), pipe.stdout + pipe.stderr
    assert pipe.stderr == "", pipe.stderr


def lab_up(ws: Workspace, shown: dict[str, Shown]) -> None:
    _contains(ws.run(f"crowbar-wizard lab up --nodes 6 --network {LAB_NETWORK}"),
              "lab up: 6 BMCs")
    status = ws.run("crowbar-wizard lab status")
    _contains(status, "6 BMCs", "Chef server (goiardi) at")
    assert json.loads(ws.run("crowbar-wizard lab status --json").stdout)["chef"]["url"]
    _contains(ws.run("crowbar-wizard lab fault 1:converge_fail"), "set converge_fail")
    faults = json.loads(ws.run("crowbar-wizard lab status --json").stdout)["bmcs"][1]["faults"]
    assert faults == ["converge_fail"], faults
    _contains(ws.run("crowbar-wizard lab fault 1 --clear"),
              "cleared converge_fail, converge_hang")
    faults = json.loads(ws.run("crowbar-wizard lab status --json").stdout)["bmcs"][1]["faults"]
    assert faults == [], faults


def discover(ws: Workspace, shown: dict[str, Shown]) -> None:
    """A sweep of the lab's range with its user and password, as a reader types it."""
    network = LAB_NETWORK.rsplit(".", 1)[0]
    done = ws.run(f"CROWBAR_LAB_PASSWORD=crowbar-lab crowbar-wizard discover --range "
                  f"{network}.0/29 --user crowbar --password-env CROWBAR_LAB_PASSWORD --json")
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["found"] == 6, done.stdout


def chef_push(ws: Workspace, shown: dict[str, Shown]) -> None:
    """To the lab's goiardi naming its URL, client and key as a reader would for another
    server, then with --lab (the answers cabled to the lab: some objects change); a second
    push changes nothing."""
    chef = ws.lab.chef()
    assert chef is not None, "the lab has no Chef server: goiardi is not installed"
    key = ws.lab.chef_directory / "admin.pem"
    _contains(ws.run(f"{KEYSTONE} crowbar-wizard chef push {EXAMPLE} --server {chef.url} "
                     f"--client admin --key {key}"), "created")
    _contains(ws.run(f"crowbar-wizard chef push {EXAMPLE} --lab"), "updated")
    _contains(ws.run(f"crowbar-wizard chef push {EXAMPLE} --lab --prune"), "nothing changed")
    vendored = ws.root / "vendor" / "hello"
    (vendored / "recipes").mkdir(parents=True)
    (vendored / "metadata.rb").write_text("name 'hello'\nversion '1.0.0'\n")
    (vendored / "recipes" / "default.rb").write_text("log 'hello'\n")
    _contains(ws.run(f"crowbar-wizard chef push {EXAMPLE} --lab --cookbooks vendor"),
              "created cookbook hello 1.0.0")
    (vendored / "recipes" / "default.rb").write_text("log 'hello again'\n")
    refused = ws.run(f"crowbar-wizard chef push {EXAMPLE} --lab --cookbooks vendor", status=1)
    assert "recipes/default.rb" in refused.stderr and "--force" in refused.stderr, \
        refused.stderr
    _contains(ws.run(f"crowbar-wizard chef push {EXAMPLE} --lab --cookbooks vendor --force"),
              "updated cookbook hello 1.0.0")


def power(ws: Workspace, shown: dict[str, Shown]) -> None:
    """Power through the lab's BMCs (--lab: the example's BMCs are not on this machine)."""
    _contains(ws.run(f"crowbar-wizard power --all status {EXAMPLE} --lab"), "ctl-1")
    _contains(ws.run(f"crowbar-wizard power ctl-1 status {EXAMPLE} --lab"), "ctl-1")
    ws.run(f"crowbar-wizard power ctl-1 on {EXAMPLE} --lab")


def apply(ws: Workspace, shown: dict[str, Shown]) -> None:
    """The quick start's apply on the lab, paused, watched and resumed while it runs; the
    dry run before it, and a --json rerun after it."""
    _contains(ws.run(f"crowbar-wizard apply {EXAMPLE} --lab --dry-run"), "power-cycle 6 nodes")
    journal = ws.root / "lab/apply/lab/journal.db"
    running = subprocess.Popen(["crowbar-wizard", "apply", EXAMPLE, "--lab"], cwd=ws.root,
                               env=ws.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        deadline = time.monotonic() + 60
        while holder(journal) is None:
            assert running.poll() is None, f"apply ended at once:\n{running.communicate()[0]}"
            assert time.monotonic() < deadline, "apply never took its journal"
            time.sleep(0.05)
        _contains(ws.run(f"crowbar-wizard pause {EXAMPLE} --lab"), "paused the apply of lab")
        _contains(ws.run(f"crowbar-wizard status {EXAMPLE} --lab"), "ctl-1")
        ws.run(f"crowbar-wizard resume {EXAMPLE} --lab")
        ws.run(f"crowbar-wizard status {EXAMPLE} --lab --follow", timeout=300)
        out, _ = running.communicate(timeout=300)
    finally:
        if running.poll() is None:
            running.kill()
            running.wait()
    assert running.returncode == 0, out
    assert out.strip().endswith("all 6 nodes ready"), out
    done = ws.run(f"crowbar-wizard apply {EXAMPLE} --lab --json")
    *events, summary = done.stdout.splitlines()
    assert events and all(json.loads(line)["event"] for line in events), done.stdout
    assert summary == "all 6 nodes ready", done.stdout


def day_two(ws: Workspace, shown: dict[str, Shown]) -> None:
    """The deployed example: a node reinstalled, then one released (from a copy of the
    example, so the steps after it keep all six); two servers racked, and found."""
    _contains(ws.run(f"crowbar-wizard node reinstall compute-1 {EXAMPLE} --lab"),
              "all 6 nodes ready")
    (ws.root / "day-two.yaml").write_text((ws.root / EXAMPLE).read_text())
    _contains(ws.run("crowbar-wizard node release compute-3 day-two.yaml --lab"),
              "released compute-3")
    _contains(ws.run("crowbar-wizard lab rack 2"), "the lab has 8 now")
    _contains(ws.run("crowbar-wizard discover --lab"), "8 found")


def bigger_lab(ws: Workspace, shown: dict[str, Shown]) -> None:
    """The lab section: 20 BMCs swept with the lab's credentials; then 6 again, seeded."""
    ws.run("crowbar-wizard lab down")
    ws.run(f"crowbar-wizard lab up --nodes 20 --network {LAB_NETWORK}")
    _contains(ws.run("crowbar-wizard discover --lab"), "20 found")
    ws.run("crowbar-wizard lab down")
    ws.run(f"crowbar-wizard lab up --nodes 6 --seed 3 --network {LAB_NETWORK}")


def pxe(ws: Workspace, shown: dict[str, Shown]) -> None:
    """render writes the boot files; preflight and serve refuse here, where the example's
    admin address (192.168.124.10) is on no interface: serve starts nothing (bounded).
    Serving for real is tests/integration/test_pxe_namespaces.py's, in network namespaces."""
    _contains(ws.run(f"crowbar-wizard pxe render {EXAMPLE} pxe"), "accepted by dnsmasq --test")
    _contains(ws.run(f"crowbar-wizard pxe preflight {EXAMPLE}", status=1), "192.168.124.10")
    _contains(ws.run(f"crowbar-wizard pxe preflight {EXAMPLE} pxe", status=1),
              f"crowbar-wizard media build {ws.root / 'pxe'}")  # no discovery image yet
    _contains(ws.run(f"crowbar-wizard pxe serve {EXAMPLE} pxe", status=1), "not serving")


def ssh_setup(ws: Workspace, shown: dict[str, Shown]) -> None:
    """Printed only: --write (and sudo) would change this machine's sshd."""
    _contains(ws.run("crowbar-wizard ssh-setup --user crowbar"), "Match User crowbar")
    _contains(ws.run("crowbar-wizard ssh-setup --user crowbar --directory /srv/crowbar "
                     "--command 'crowbar-wizard wizard'"),
              "ForceCommand cd '/srv/crowbar' && exec 'crowbar-wizard' 'wizard'")


def serve_web(ws: Workspace, shown: dict[str, Shown]) -> None:
    """Started on a free port (8000 may be taken), the printed URL opened, then Ctrl-C."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["crowbar-wizard", "serve-web", EXAMPLE, "--listen", f"127.0.0.1:{port}", "--control",
         "--max-sessions", "2", "--request-timeout", "5"],
        cwd=ws.root, env=ws.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.search(r"http://\S+token=\S+", line)
        assert found, f"no URL printed: {line!r}"
        page = httpx.get(found.group(0), timeout=20)
        assert page.status_code == 200, page.text
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode in (0, 130), server.returncode


def lab_down(ws: Workspace, shown: dict[str, Shown]) -> None:
    """The lab stops, and nothing any command started is left running."""
    _contains(ws.run("crowbar-wizard lab down"), "stopped")
    status = ws.run("crowbar-wizard lab status --json", status=1)
    assert json.loads(status.stdout)["running"] is False, status.stdout
    deadline = time.monotonic() + 20
    while left := _started_here(ws):
        assert time.monotonic() < deadline, f"still running after lab down: {left}"
        time.sleep(0.1)


def _started_here(ws: Workspace) -> list[str]:
    """The command lines of live processes that have this workspace's environment."""
    mark = f"CROWBAR_LAB_DIR={ws.env['CROWBAR_LAB_DIR']}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and mark in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


STEPS: list[tuple[Step, tuple[str, ...]]] = [
    (top_example, (
        "crowbar-wizard new --supernet 10.20.0.0/16 --nodes 500 -o answers/site.yaml",
        "crowbar-wizard plan answers/site.yaml",
        "crowbar-wizard validate lab.yaml")),
    (no_terminal, ("crowbar-wizard",)),
    (the_wizard, ("crowbar-wizard wizard [FILE] [--lab]",)),
    (answers_commands, (
        "crowbar-wizard validate FILE...",
        "crowbar-wizard plan FILE",
        "crowbar-wizard new --supernet CIDR --nodes N -o FILE",
        "crowbar-wizard schema [-o FILE]",
        "crowbar-wizard barclamps [show NAME]",
        "crowbar-wizard barclamps show NAME",
        "crowbar-wizard allocate FILE [-o OUT]")),
    (example, (
        "crowbar-wizard example",
        "crowbar-wizard example lab-small -o lab.yaml",
        "crowbar-wizard example [NAME] [-o FILE] [--force]")),
    (chef_export, (
        "crowbar-wizard chef export FILE DIR [--force]",
        "CROWBAR_KEYSTONE_PASSWORD=... crowbar-wizard chef export "
        "answers/examples/lab-small.yaml chef-repo")),
    (into_head, ("crowbar-wizard … | head",)),
    (lab_up, ("crowbar-wizard lab up --nodes 6", "lab status [--json]",
              "crowbar-wizard lab fault 1 --clear")),
    (discover, ("crowbar-wizard discover --range CIDR|FIRST-LAST|ADDRESS --user U "
                "[--password-env VAR] [--json]",
                "discover --lab")),
    (chef_push, ("crowbar-wizard chef push FILE [--lab | --server URL --client NAME --key PEM] "
                 "[--cookbooks DIR] [--force] [--prune]",
                 "crowbar-wizard chef push answers/examples/lab-small.yaml --lab")),
    (power, ("crowbar-wizard power {NODE|--all} {status,on,off,cycle,reset,soft} FILE [--lab]",
             "crowbar-wizard power ctl-1 status answers/examples/lab-small.yaml --lab")),
    (apply, (
        "crowbar-wizard apply answers/examples/lab-small.yaml --lab",
        "crowbar-wizard apply FILE [--lab] [--dry-run] [--json]",
        "crowbar-wizard status FILE [--lab] [--follow]",
        "crowbar-wizard pause FILE [--lab]",
        "resume FILE [--lab]")),
    (day_two, (
        "crowbar-wizard node release NODE FILE [--lab] [--force]",
        "crowbar-wizard node reinstall NODE FILE [--lab]",
        "crowbar-wizard lab rack 2", "lab rack N")),
    (bigger_lab, (
        "crowbar-wizard lab up --nodes 20",
        "crowbar-wizard discover --lab",
        "crowbar-wizard lab up --nodes N [--seed S]")),
    (pxe, (
        "crowbar-wizard pxe render FILE DIR",
        "crowbar-wizard pxe preflight FILE [DIR]",
        "crowbar-wizard pxe serve FILE DIR [--allow-foreign-dhcp] [--state DIR]")),
    (ssh_setup, (
        "crowbar-wizard ssh-setup --user U [--directory D] [--command C] [--write]",
        "sudo crowbar-wizard ssh-setup --user crowbar --write")),
    (serve_web, (
        "crowbar-wizard serve-web [FILE] [--listen H:P] [--control] [--max-sessions N] "
        "[--request-timeout S]",
        "crowbar-wizard serve-web [FILE] --listen 127.0.0.1:8000")),
    (lab_down, ("lab down",)),
]
"""Every step, in the order run, with the README commands it runs."""

SKIPPED = {
    "./dev lab": "sets up .venv/ (pip, apt-get) and runs the quick start's headless commands "
                 "(lab up, apply --lab, status, lab down), which the steps run one by one",
    "./dev test": "the whole suite, this test included",
    "./dev deps": "apt-get install on this machine (CI's .ci/run does it)",
    "./dev bench": "the benchmarks: minutes of load, measured elsewhere",
    "./dev lowest": "a venv of the lowest dependency versions allowed and the fast suite in "
                    "it: minutes, run by CI (.ci/run)",
    ".venv/bin/pytest": "the fast suite, run by ./dev test",
    "sudo systemctl reload ssh": "reloads this machine's sshd",
    "ssh crowbar@ADMIN": "needs ssh-setup --write on a real sshd: "
                         "tests/e2e/test_ssh_sessions.py logs in through one",
    "crowbar-wizard media build [DIR] [--rebuild]": "tests/e2e/test_discovery_image.py "
        "builds the image (80 MB of packages, once a machine) and boots it in qemu",
    "crowbar-wizard media build DIR": "the same",
    "crowbar-wizard network check FILE NODE [--state DIR] [--json]": "needs a machine in "
        "the discovery image: tests/e2e/test_discovery_image.py checks a qemu VM's network",
    "crowbar-wizard discovered poweroff FILE MACHINE [--state DIR]": "needs a machine in the "
        "discovery image: tests/e2e/test_discovery_image.py powers a qemu VM off",
}
"""README commands not run here, and why."""


def test_every_readme_command_is_run_or_skipped_for_a_reason() -> None:
    shown = {s.command for s in readme_commands(README.read_text())}
    covered = {command for _, commands in STEPS for command in commands} | set(SKIPPED)
    missing = sorted(shown - covered)
    assert not missing, ("README commands no step of tests/e2e/test_readme.py runs (add them "
                         "to STEPS or SKIPPED):\n" + "\n".join(missing))
    stale = sorted(covered - shown)
    assert not stale, "commands the README no longer shows:\n" + "\n".join(stale)


def test_the_first_block_shows_commands_with_their_output() -> None:
    shown = {s.command: s for s in readme_commands(README.read_text())}
    assert shown["crowbar-wizard validate lab.yaml"].output[0].startswith("lab.yaml:9:13: ")
    assert shown["crowbar-wizard plan answers/site.yaml"].output[0] == "Address budget"


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    root = tmp_path / "reader"
    (root / "answers").mkdir(parents=True)
    (root / "home").mkdir()
    for example in (ROOT / "answers/examples").glob("*.yaml"):
        (root / "answers/examples").mkdir(exist_ok=True)
        (root / "answers/examples" / example.name).write_text(example.read_text())
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CROWBAR_") and k not in ("COLORTERM", "NO_COLOR")}
    env |= {"CROWBAR_LAB_DIR": str(root / "lab"), "CROWBAR_STATE_DIR": str(root / "state"),
            "HOME": str(root / "home"), "TERM": "xterm-256color",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    ws = Workspace(root, env)
    try:
        yield ws
    finally:
        subprocess.run(["crowbar-wizard", "lab", "down"], cwd=root, env=env,
                       capture_output=True, timeout=120, check=False)


@pytest.mark.slow
def test_every_readme_command_on_the_lab(workspace: Workspace) -> None:
    shown = {s.command: s for s in readme_commands(README.read_text())}
    failed = []
    for step, commands in STEPS:
        try:
            step(workspace, shown)
        except Exception as exc:  # each step's failure is reported, and the next step runs
            failed.append(f"{step.__name__} ({'; '.join(commands)}):\n{exc!r}"
                          if not isinstance(exc, AssertionError) else
                          f"{step.__name__} ({'; '.join(commands)}):\n{exc}")
    assert not failed, "README commands that fail on the lab:\n\n" + "\n\n".join(failed)
