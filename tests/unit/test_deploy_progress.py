"""What the Deploy step folds from an apply's journal: machines PXE discovery finds while
the apply serves the admin network are news in the log, not nodes of the deploy."""

from __future__ import annotations

from wizard.engine.deployments import Event
from wizard.tui.deploy_progress import STEP_NAMES, DeployProgress


def event(seq: int, kind: str, node: str, **data: object) -> Event:
    return Event(seq, "2026-01-01T00:00:00.000Z", kind, node, None, dict(data))


def test_a_discovered_machine_is_a_log_line_not_a_node_of_the_deploy() -> None:
    progress = DeployProgress(["ctl-1"])
    changed, lines = progress.apply([
        event(1, "inventory", "d52-54-00-aa-bb-07", mac="52:54:00:aa:bb:07"),
        event(2, "transition", "d52-54-00-aa-bb-07", to="discovered"),
        event(3, "transition", "ctl-1", to="hardware-installing"),
    ])
    assert lines == ["discovered d52-54-00-aa-bb-07 (52:54:00:aa:bb:07) by PXE"]
    assert list(progress.nodes) == ["ctl-1"] and changed == {"ctl-1"}
    assert progress.total == len(STEP_NAMES)
    assert progress.counts() == {"hardware-installing": 1}


def test_a_discovered_machine_this_apply_deploys_is_shown() -> None:
    """Added to the answers, the machine is a node of the deploy, from its first state."""
    progress = DeployProgress(["d52-54-00-aa-bb-07"])
    changed, _ = progress.apply([event(1, "transition", "d52-54-00-aa-bb-07", to="discovered")])
    assert changed == {"d52-54-00-aa-bb-07"}
    assert progress.counts() == {"discovered": 1}
