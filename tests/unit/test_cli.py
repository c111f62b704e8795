"""The crowbar-wizard command line, run as an operator would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from tests.unit.base_answers import BASE
from wizard.base import filelock
from wizard.cli.apply import ProgressView
from wizard.cli.hardware import _table
from wizard.cli.main import NO_TERMINAL, main, schema_text
from wizard.engine.convergence import step_name
from wizard.engine.journal import Journal
from wizard.engine.paths import SitePaths
from wizard.hardware.discovery import SweepResult
from wizard.hardware.ipmi import BmcInventory

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "answers" / "examples").glob("*.yaml"))
PROBLEM_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>\S+): .+$")


def _script() -> str:
    found = shutil.which("crowbar-wizard", path=str(Path(sys.executable).parent))
    assert found, "the crowbar-wizard console script is not installed in this venv"
    return found


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_script(), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60, check=False)


def test_validate_every_example_with_the_installed_script() -> None:
    result = run("validate", *map(str, EXAMPLES))
    assert result.returncode == 0, result.stderr
    # the examples reference secrets this machine does not have: warnings, not errors
    assert all(": warning: " in line for line in result.stderr.splitlines())
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == list(map(str, EXAMPLES))


def test_broken_copy_exits_2_with_file_line_col_lines(tmp_path: Path) -> None:
    broken = tmp_path / "lab.yaml"
    text = (ROOT / "answers/examples/lab-small.yaml").read_text()
    text = text.replace("subnet: 192.168.125.0/24", "subnet: 192.168.125.0/33", 1)
    text = text.replace("name: ctl-1", "name: CTL_1", 1)
    broken.write_text(text)
    result = run("validate", str(broken))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert all(PROBLEM_LINE.match(line) for line in lines), lines
    assert [PROBLEM_LINE.match(line)["path"] for line in lines] == [
        "networks.storage.subnet", "nodes[0].name"
    ]


def test_validate_reports_each_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\n")
    assert main(["validate", str(EXAMPLES[0]), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out.startswith(f"{EXAMPLES[0]}: valid (")
    assert f"{bad}:1:1: site: required key 'site' is missing" in err.splitlines()


def test_bare_command_prints_help() -> None:
    result = run()
    assert result.returncode == 0
    assert "usage: crowbar-wizard" in result.stdout
    for command in ("validate", "plan", "new", "schema"):
        assert command in result.stdout


@pytest.mark.parametrize("args", [[], ["--observe"]], ids=["edit", "observe"])
def test_the_wizard_without_a_terminal_says_it_needs_one(args: list[str],
                                                         tmp_path: Path) -> None:
    """Input from nowhere, output to a file: one line and exit 1, not escape codes
    written there until killed."""
    with (tmp_path / "out").open("w") as out:
        result = subprocess.run([_script(), "wizard", str(EXAMPLES[0]), *args],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                                text=True, timeout=60, check=False, cwd=tmp_path,
                                env=os.environ | {"CROWBAR_STATE_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [NO_TERMINAL]
    assert (tmp_path / "out").read_text() == ""


def test_the_wizard_with_a_file_and_lab_says_which_one_line(capsys) -> None:
    """Not the message's characters sorted, one a line (InputError takes problems)."""
    assert main(["wizard", str(EXAMPLES[0]), "--lab"]) == 2
    assert capsys.readouterr().err == "crowbar-wizard wizard: FILE or --lab, not both\n"


@pytest.mark.parametrize("command", ["validate", "plan", "new", "schema"])
def test_every_command_has_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: crowbar-wizard {command}")
    assert len(out.splitlines()) > 4


def test_new_500_nodes_then_validate(tmp_path: Path) -> None:
    out = tmp_path / "a.yaml"
    result = run("new", "--supernet", "10.20.0.0/16", "--nodes", "500", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert run("validate", str(out)).returncode == 0
    assert "10.20.0.0/21" in out.read_text()
    assert out.stat().st_mode & 0o777 == 0o644  # secrets are references, nothing inline


def test_new_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "a.yaml"
    out.write_text("keep me\n")
    assert main(["new", "--supernet", "10.0.0.0/16", "--nodes", "5", "-o", str(out)]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "keep me\n"
    assert main(["new", "--supernet", "10.0.0.0/16", "--nodes", "5", "-o", str(out),
                 "--force"]) == 0
    assert out.read_text().startswith("# Crowbar Wizard answers file")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--supernet", "10.20.0.0/24", "--nodes", "500"], "cannot plan: 10.20.0.0/24 holds 256"),
        (["--supernet", "banana", "--nodes", "5"], "cannot plan: supernet: 'banana' is not"),
        (["--supernet", "0.0.0.0/0", "--nodes", "5"],
         "cannot plan: supernet: 0.0.0.0/0 is wider than /8"),
        (["--supernet", "224.0.0.0/8", "--nodes", "5"],
         "cannot plan: supernet: 224.0.0.0/8 is in 224.0.0.0/4, the multicast block"),
        (["--supernet", "10.0.0.0/16", "--nodes", "5", "--domain", "Bad Domain"],
         "invalid option:"),
    ],
)
def test_new_with_bad_input_writes_nothing(tmp_path: Path, capsys, args, message) -> None:
    out = tmp_path / "a.yaml"
    assert main(["new", *args, "-o", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_plan_shows_networks_and_budget(capsys) -> None:
    assert main(["plan", str(ROOT / "answers/examples/lab-small.yaml")]) == 0
    out = capsys.readouterr().out
    assert "lab (lab.crowbar.test): 6 nodes, 7 networks, 16 barclamps" in out
    assert "mask 255.255.255.192" in out  # nova_floating's /26
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines()
            if line.startswith("│") and line.split()[1] in ("admin", "public", "bmc_vlan")}
    # admin: 254 usable, 2+60+80+10 in ranges, 80 host addresses, 6 nodes, 74 spare
    assert [c for c in rows["admin"] if c != "│"][-5:] == ["254", "152", "80", "6", "74"]
    assert [c for c in rows["public"] if c != "│"][-3:] == ["48", "1", "47"]


def test_plan_of_invalid_file_exits_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    public = "vlan: 300\n    use_vlan: true\n    ranges:\n      host: 192.168.126.2"
    bad.write_text(BASE.replace(public, public.replace("vlan: 300", "vlan: 0")))
    assert main(["plan", str(bad)]) == 2
    assert "networks.public.vlan: Input should be greater than or equal to 1" in (
        capsys.readouterr().err
    )


def test_no_command_prints_an_inline_secret(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(BASE.replace("env:CROWBAR_BMC_PASSWORD", "hunter2hunter2"))
    for args in (["validate", str(path)], ["plan", str(path)]):
        result = run(*args)
        assert result.returncode == 0, result.stderr
        assert "hunter2" not in result.stdout + result.stderr


def test_committed_schema_is_current() -> None:
    committed = (ROOT / "answers" / "schema.json").read_text()
    assert committed == schema_text(), "answers/schema.json is stale: run crowbar-wizard schema"


def test_schema_command_writes_the_file(tmp_path: Path, capsys) -> None:
    out = tmp_path / "schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert out.read_text() == schema_text()
    assert main(["schema", "-o", "-"]) == 0
    assert capsys.readouterr().out.endswith(schema_text())


def test_unresolvable_secret_references_are_warnings(tmp_path: Path, monkeypatch) -> None:
    key = tmp_path / "crowbar.pem"
    path = tmp_path / "a.yaml"
    path.write_text(BASE.replace("/etc/crowbar/chef/crowbar.pem", str(key)))
    monkeypatch.delenv("CROWBAR_BMC_PASSWORD", raising=False)
    lines = path.read_text().splitlines()
    password = lines.index("  password: env:CROWBAR_BMC_PASSWORD") + 1
    chef_key = lines.index(f"  key: file:{key}") + 1
    result = run("validate", str(path))
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        f"{path}:{password}:13: bmc.password: warning: environment variable "
        "CROWBAR_BMC_PASSWORD is not set (needed to deploy)",
        f"{path}:{chef_key}:8: chef.key: warning: cannot read {key}: No such file or directory "
        "(needed to deploy)",
    ]
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\n")
    monkeypatch.setenv("CROWBAR_BMC_PASSWORD", "x")
    result = subprocess.run([_script(), "validate", str(path)], capture_output=True, text=True,
                            check=False)
    assert (result.returncode, result.stderr) == (0, "")


def test_unresolvable_barclamp_secrets_are_warnings_too(tmp_path: Path) -> None:
    """The lab example's keystone admin_password (env:CROWBAR_KEYSTONE_PASSWORD) is what
    `chef export` and `apply` fail on when unset: validate names it, as a warning."""
    example = ROOT / "answers/examples/lab-small.yaml"
    lines = example.read_text().splitlines()
    line = lines.index("      admin_password: env:CROWBAR_KEYSTONE_PASSWORD") + 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROWBAR_")}
    result = subprocess.run([_script(), "validate", str(example)], capture_output=True,
                            text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert (f"{example}:{line}:23: barclamps.keystone.attributes.admin_password: warning: "
            "environment variable CROWBAR_KEYSTONE_PASSWORD is not set (needed to deploy; "
            "`apply --lab` makes one up)") in result.stderr.splitlines(), result.stderr
    env |= {"CROWBAR_KEYSTONE_PASSWORD": "x", "CROWBAR_BMC_PASSWORD": "x"}
    result = subprocess.run([_script(), "validate", str(example)], capture_output=True,
                            text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0
    assert [line.split(": ")[1] for line in result.stderr.splitlines()] == ["chef.key"]


def test_allocate_does_what_validate_suggests_though_a_required_secret_is_unset(
        tmp_path: Path) -> None:
    """validate suggests allocate for a missing required barclamp; allocate places the roles
    and writes, listing the required secret it does not set, instead of refusing on it."""
    head, _, rest = (ROOT / "answers/examples/lab-small.yaml").read_text().partition(
        "barclamps:\n")
    path, out = tmp_path / "k.yaml", tmp_path / "k2.yaml"
    path.write_text(head + "barclamps:\n  keystone: {}\nnodes:\n" + rest.partition("nodes:\n")[2])
    assert "run `crowbar-wizard allocate FILE`" in run("validate", str(path)).stderr
    result = run("allocate", str(path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "ctl-1 <- keystone-server (keystone)" in result.stdout
    required = ("barclamps.keystone: {}keystone attribute admin_password is required: "
                "Password of the cloud's admin user (env:NAME or file:PATH).")
    assert [line.split(":", 3)[3].strip() for line in result.stderr.splitlines()] == [
        required.format("still to set: ")]
    result = run("validate", str(out))
    assert (result.returncode, result.stderr.splitlines()) == (
        2, [f"{out}:111:3: " + required.format("")])


def test_unwritable_output_is_one_clear_line(capsys) -> None:
    assert main(["new", "--supernet", "10.0.0.0/16", "--nodes", "3", "-o", "/proc/a.yaml"]) == 1
    assert capsys.readouterr().err == (
        "crowbar-wizard: /proc/a.yaml: cannot write there: No such file or directory\n"
    )


def test_secret_files_that_are_no_text_secret_are_one_warning(tmp_path: Path) -> None:
    """A ``file:`` secret is read bounded: a device, a FIFO, binary data or a huge file is
    one clear warning, never a hang, a MemoryError or a UnicodeDecodeError."""
    binary, nul, big, fifo = (tmp_path / name for name in ("bin", "nul", "big", "fifo"))
    binary.write_bytes(b"\xca\xfe\xba\xbe secret")
    nul.write_bytes(b"secret\0more")
    big.write_text("x" * (64 * 1024 + 1))
    os.mkfifo(fifo)
    cases = {"/dev/zero": "/dev/zero is not a regular file",
             str(fifo): f"{fifo} is not a regular file",
             str(binary): f"{binary} is not UTF-8 text",
             str(nul): f"{nul} holds binary data (NUL bytes), not a secret",
             str(big): f"{big} is larger than 64 KiB: not a secret"}
    path = tmp_path / "a.yaml"
    for target, message in cases.items():
        path.write_text(BASE.replace("env:CROWBAR_BMC_PASSWORD", f"file:{target}"))
        result = run("validate", str(path))
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines()[0].endswith(
            f"bmc.password: warning: {message} (needed to deploy)"), result.stderr
        assert "Traceback" not in result.stderr


def test_chef_push_key_that_is_a_device_is_one_clear_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(BASE)
    assert main(["chef", "push", str(path), "--server", "http://127.0.0.1:9", "--client", "c",
                 "--key", "/dev/zero"]) == 1
    assert capsys.readouterr().err == "cannot push: /dev/zero is not a regular file\n"


HOSTILE = "[bold]Evil[/] [/] [ctl-1]"


def test_text_from_bmcs_and_problem_reasons_prints_as_written(capsys) -> None:
    """The discover table (a terminal's live view) and apply's problem lines put FRU text
    and reasons into rich markup: shown literally, never a MarkupError."""
    bmc = BmcInventory("10.0.1.9", 623, manufacturer="Acme", model=HOSTILE, serial=HOSTILE)
    console = Console(width=300, record=True, file=sys.stdout)
    console.print(_table([SweepResult(bmc.address, 623, "found", bmc=bmc),
                          SweepResult("10.0.1.8", 623, "bmc_error", HOSTILE)],
                         Counter(found=1, bmc_error=1), 2))
    table = console.export_text()
    assert f"Acme {HOSTILE}" in table and table.count(HOSTILE) == 3
    view = ProgressView()
    view.progress.console.file = sys.stdout
    view({"event": "state", "node": "ctl-1", "state": "problem", "reason": HOSTILE})
    assert f"ctl-1: problem: {HOSTILE}" in capsys.readouterr().out


@pytest.mark.parametrize(("words", "problem"), [
    (["status", "site.yaml"], "missing NODE (or --all for every node)"),
    (["n1", "status"], "missing ANSWERS"),
    (["--all", "n1", "on", "site.yaml"], "3 words, expected ACTION ANSWERS (--all names no node)"),
])
def test_power_says_which_word_is_missing(words: list[str], problem: str) -> None:
    result = run("power", *words)
    assert result.returncode == 2
    assert result.stderr == (f"power: {problem}; usage: crowbar-wizard power {{NODE|--all}} "
                             "ACTION ANSWERS\n")


# --- status: each node's convergence -----------------------------------------------------

LAB_EXAMPLE = ROOT / "answers/examples/lab-small.yaml"
CORE_ROLES = ["deployer-client", "provisioner-base", "ipmi-configure", "dns-client",
              "logging-client", "ntp-client"]
FAILED = "converge provisioner/provisioner-base, ...: chef-client failed: recipe[ntp] raised"


def converge_journal(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A journal mid-converge, on a clock that moves a second a call: the admin node ready,
    ctl-1 converging (a second try), compute-1 waiting after its core run, compute-2 in
    problem (its run failed), compute-3 ready before apply converged nodes, storage-1
    registering its Chef node, and a machine PXE discovery found."""
    seconds = iter(range(3600))

    def now() -> str:
        second = next(seconds)
        return f"2026-11-30T19:{second // 60:02d}:{second % 60:02d}.000Z"
    monkeypatch.setattr(filelock, "now", now)
    record = json.dumps({"started": "2026-11-30T19:10:12+00:00", "elapsed": 3.25,
                         "status": "success", "error": None, "run_list": [],
                         "request": "r", "ohai_time": 1.0})

    def run(journal: Journal, node: str, roles: list[str], ok: bool | None,
            attempt: int = 1) -> None:
        steps = [step_name(role) for role in roles]
        journal.steps_started(node, steps, detail="r", attempt=attempt, run_list=[])
        if ok is not None:
            journal.steps_ended(node, steps, ok=ok, detail=record if ok else FAILED)
    with Journal.open(SitePaths(state).journal) as journal:
        journal.transition("admin", "readying")
        run(journal, "admin", ["deployer-client", "dns-server", "logging-server", "ntp-server"],
            ok=True)
        journal.transition("admin", "ready")
        for node in ("ctl-1", "compute-1", "compute-2"):
            journal.transition(node, "readying")
            run(journal, node, CORE_ROLES, ok=node != "compute-2")
        journal.transition("compute-2", "problem", FAILED)
        run(journal, "ctl-1", ["database-server"], ok=False)
        run(journal, "ctl-1", ["database-server"], ok=None, attempt=2)
        journal.transition("compute-3", "ready")
        journal.transition("storage-1", "readying")
        journal.step_started("storage-1", "chef-node", attempt=1)
        journal.transition("d52-54-00-aa-bb-07", "discovered")


def test_status_says_each_nodes_convergence(tmp_path: Path, capsys,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """What converges now (barclamp/role, since when, the try), that a node waits, how many
    of its roles converged, its last run: when, how long ago, how long, how it ended (the
    error once: a problem's reason is not said twice). Nodes with nothing converging say
    what they said before."""
    converge_journal(tmp_path, monkeypatch)
    assert main(["status", str(LAB_EXAMPLE), "--state", str(tmp_path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}

    def row(name: str, said: str) -> None:
        assert re.fullmatch(re.escape(f"{name:24s} ") + said, lines[name]), lines[name]
    ago, at = r"\(\d[\w .]* ago\)", r"19:\d\d:\d\d UTC"
    row("admin", rf"ready  4 of 4 roles converged; last run 19:10:12 UTC {ago}: success in 3.2 s")
    row("ctl-1", rf"readying  converging database/database-server since {at}, try 2; 6 of 16 "
                 rf"roles converged; last run {at} {ago}: failed after 1.0 s: {re.escape(FAILED)}")
    row("compute-1", r"readying  waiting for other nodes' roles; 6 of 7 roles converged; last "
                     rf"run 19:10:12 UTC {ago}: success in 3.2 s")
    row("compute-2", rf"problem: {re.escape(FAILED)}  last run {at} {ago}: failed after 1.0 s")
    assert lines["compute-3"] == f"{'compute-3':24s} ready"
    assert lines["storage-1"] == f"{'storage-1':24s} readying", "registering: not waiting"
    assert lines["d52-54-00-aa-bb-07"] == f"{'d52-54-00-aa-bb-07':24s} discovered"


def test_status_json_keeps_its_keys_and_adds_activity_and_converge(
        tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    converge_journal(tmp_path, monkeypatch)
    assert main(["status", str(LAB_EXAMPLE), "--state", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    ctl = shown["ctl-1"]
    assert (ctl["state"], ctl["reason"], ctl["activity"]) == ("readying", None, "converging")
    converge = ctl["converge"]
    assert converge["converging"] == [{"role": "database-server", "barclamp": "database"}]
    assert converge["attempt"] == 2 and converge["since"].startswith("2026-11-30T19:")
    assert converge["roles_converged"] == CORE_ROLES and len(converge["roles"]) == 16
    assert converge["last_run"] | {"started": None} == {
        "roles": ["database-server"], "status": "failed", "started": None, "elapsed": 1.0,
        "error": FAILED, "run_list": [], "timed_by": "journal"}
    admin = shown["admin"]["converge"]["last_run"]
    assert (admin["started"], admin["elapsed"], admin["timed_by"]) == (
        "2026-11-30T19:10:12+00:00", 3.25, "chef-client")
    assert shown["compute-1"]["activity"] == "waiting"
    assert shown["compute-2"]["activity"] == "problem"
    assert shown["compute-3"]["converge"] == {
        "converging": [], "attempt": None, "since": None, "roles_converged": [],
        "last_run": None, "roles": []}, "ready without converging: no role left"
    assert shown["storage-1"]["activity"] == "readying"
    assert shown["d52-54-00-aa-bb-07"] == {"state": "discovered", "reason": None,
                                           "activity": "discovered", "converge": None}
