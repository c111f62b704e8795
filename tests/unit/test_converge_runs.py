"""What the journal's converge steps tell of each node (``wizard.engine.converge_runs``),
beyond the Deploy screen's fold (tests/unit/test_deploy_progress.py): the roles each node is
planned to converge, and the words the screen and ``status`` put them in."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wizard.answers import load
from wizard.catalog import default_catalog
from wizard.chef.objects import render
from wizard.engine.converge_runs import ago, clock, duration, planned_roles, role_label

EXAMPLES = sorted(Path("answers/examples").resolve().glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_planned_roles_are_the_run_lists_the_chef_objects_have(
        example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each node's planned roles (the admin node's too) are its Chef node's run list, in
    order: what the runner converges, a step per role."""
    text = example.read_text()
    for name in set(re.findall(r"env:([A-Z0-9_]+)", text)):
        monkeypatch.setenv(name, "made-up")
    answers = load(example)
    objects = render(answers, default_catalog())
    run_lists = {body["name"].removesuffix(f".{answers.site.domain}"):
                 [item.removeprefix("role[").removesuffix("]") for item in body["run_list"]]
                 for body in objects.nodes.values()}
    assert planned_roles(answers) == run_lists
    assert answers.admin.hostname in run_lists


def test_words() -> None:
    assert role_label("nova-compute-kvm") == "nova/nova-compute-kvm"
    assert role_label("no-such-role") == "no-such-role"
    assert clock("2026-11-30T19:10:12+00:00") == "19:10:12 UTC"
    assert clock("2026-11-30T20:10:12.123+01:00") == "19:10:12 UTC"
    assert clock("2026-11-30T19:10:09.881Z") == "19:10:09 UTC"
    assert clock(None) == clock("not a time") == "?"
    assert [duration(s) for s in (0.065, 0.4, 3.25, 30, 185, 7300, None)] == [
        "0.065 s", "0.4 s", "3.2 s", "30 s", "3 min 5 s", "2 h 1 min", "? s"]
    now = datetime(2026, 11, 30, 19, 15, 17, tzinfo=UTC)
    assert ago("2026-11-30T19:10:12+00:00", now) == "5 min 5 s ago"
    assert ago("2026-11-30T19:15:30Z", now) == "0 s ago", "a node's clock ahead of ours"
    assert ago(None, now) == "?"
