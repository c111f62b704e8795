"""The deployer cookbook's handler records a chef-client run as the engine reads it back.

``wizard/barclamps/deployer/cookbooks/deployer/libraries/converge_status.rb`` is executed by
real Ruby, through ``tests/chef_handler_harness.rb``: chef-client itself cannot run here (no
Chef client package exists in any registry these machines reach), so the harness stands in
for the end of a run with the parts of Chef the handler touches (Chef::Handler, Chef::Config,
Chef::Log, the run status and the node; its comments say what each does). What the handler
saved goes through :func:`wizard.chef.converge.read_run`, as the engine reads a node.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import need
from wizard.chef.converge import RunRecord, read_run

ROOT = Path(__file__).parents[2]
HARNESS = ROOT / "tests" / "chef_handler_harness.rb"
LIBRARY = (ROOT / "wizard" / "barclamps" / "deployer" / "cookbooks" / "deployer" / "libraries"
           / "converge_status.rb")
REQUEST = "5f0c1e2d3b4a6978"
RUN_LIST = ["role[deployer-client]", "role[provisioner-base]", "role[ntp-client]"]
NODE = {
    "name": "compute-1.lab.crowbar.test", "chef_environment": "lab", "run_list": RUN_LIST,
    "normal": {"crowbar": {"converge": {"request": REQUEST},
                           "network": {"admin": "192.168.124.90"}}},
    "automatic": {"ohai_time": 1796068476.25, "fqdn": "compute-1.lab.crowbar.test"},
}
START = "2026-11-30T19:54:36+01:00"  # the node's own clock, not in UTC


def run_handlers(tmp_path: Path, **scenario: Any) -> dict[str, Any]:
    """What the handlers did at the end of one run (see the harness for the scenario)."""
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"loads": 1, "node": NODE, "start_time": START,
                                "elapsed": 42.5, "exception": None} | scenario))
    result = subprocess.run([need("ruby"), str(HARNESS), str(LIBRARY), str(path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    outcome: dict[str, Any] = json.loads(result.stdout)
    return outcome


def only_save(outcome: dict[str, Any]) -> dict[str, Any]:
    assert len(outcome["saved"]) == 1, outcome["saved"]
    saved: dict[str, Any] = outcome["saved"][0]
    return saved


def test_a_successful_run_is_recorded_for_its_request(tmp_path: Path) -> None:
    outcome = run_handlers(tmp_path)
    run = read_run(only_save(outcome), REQUEST)
    assert run == RunRecord(request=REQUEST, status="success", started="2026-11-30T18:54:36Z",
                            elapsed=42.5, error=None, run_list=tuple(RUN_LIST),
                            ohai_time=1796068476.25)
    assert run.ok
    assert outcome["start_time"] == START  # the run's own start time is left as it was
    assert outcome["log"] == []


def test_a_failed_run_is_recorded_with_its_error(tmp_path: Path) -> None:
    """chef-client saves no node after a failure: the handler's save is the only record."""
    outcome = run_handlers(tmp_path, exception={
        "class": "RuntimeError", "message": "package[chrony] failed: E: Unable to locate package"})
    saved = only_save(outcome)
    run = read_run(saved, REQUEST)
    assert isinstance(run, RunRecord) and not run.ok
    assert (run.status, run.request, run.run_list) == ("failed", REQUEST, tuple(RUN_LIST))
    assert run.error == "RuntimeError: package[chrony] failed: E: Unable to locate package"
    assert saved["normal"]["crowbar"]["network"] == {"admin": "192.168.124.90"}  # kept
    assert saved["normal"]["crowbar"]["converge"]["request"] == REQUEST


def test_a_long_error_is_cut(tmp_path: Path) -> None:
    outcome = run_handlers(tmp_path, exception={"class": "ArgumentError", "message": "x" * 9000})
    run = read_run(only_save(outcome), REQUEST)
    assert isinstance(run, RunRecord) and run.error is not None
    assert run.error.startswith("ArgumentError: xxx") and 1900 < len(run.error) <= 2000


def test_a_run_that_was_not_asked_for_is_not_recorded(tmp_path: Path) -> None:
    node = {**NODE, "normal": {"crowbar": {"network": {"admin": "192.168.124.90"}}}}
    for exception in (None, {"class": "RuntimeError", "message": "boom"}):
        outcome = run_handlers(tmp_path, node=node, exception=exception)
        assert outcome["saved"] == []
        assert [level for level, _ in outcome["log"]] == ["info"]
    assert run_handlers(tmp_path, node=None)["saved"] == []  # failed before loading its node


def test_a_save_that_fails_is_logged_and_not_raised(tmp_path: Path) -> None:
    """The handler's own rescue says what failed; Chef's catch-all ("Report handler ...
    raised") would hide it among other handlers' errors."""
    outcome = run_handlers(tmp_path, save_fails=True,
                           exception={"class": "RuntimeError", "message": "boom"})
    assert outcome["saved"] == []
    [(level, message)] = outcome["log"]
    assert level == "error" and "could not save" in message and "compute-1" in message
    assert "ECONNREFUSED" in message or "Connection refused" in message
    assert "raised" not in message


@pytest.mark.parametrize("loads", [1, 2, 3])
def test_loading_the_library_again_registers_the_handler_once(tmp_path: Path,
                                                              loads: int) -> None:
    """Libraries load on every run, again in one process when chef-client does not fork:
    one handler in each list, one record and one save per run, and no warning."""
    for exception in (None, {"class": "RuntimeError", "message": "boom"}):
        outcome = run_handlers(tmp_path, loads=loads, exception=exception)
        assert outcome["handlers"] == {"report_handlers": 1, "exception_handlers": 1}
        assert isinstance(read_run(only_save(outcome), REQUEST), RunRecord)


def test_a_record_for_another_request_is_no_run_for_this_one(tmp_path: Path) -> None:
    """The engine's side: the record names the request the run saw, not the latest."""
    saved = only_save(run_handlers(tmp_path))
    assert "recorded no run for this converge" in str(read_run(saved, "0123456789abcdef"))
