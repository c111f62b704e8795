"""What every step shares (:mod:`screens.steps`): the step list goes where it is told, by
key or by click, and an observer's step follows the controller's edits where it stands."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from screens.app import STEPS, WizardApp
from wizard.answers import load
from wizard.sessions import Control

LAB = Path("answers/examples/lab-small.yaml").resolve()
SIZE = (80, 24)
NAMES = [name for name, _ in STEPS]


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test in its own directory, with the lab example as ``lab.yaml``, and its own
    state (the control lock, journals) and lab directories."""
    monkeypatch.chdir(tmp_path)
    Path("lab.yaml").write_text(LAB.read_text())
    monkeypatch.setenv("CROWBAR_LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.setenv("CROWBAR_STATE_DIR", str(tmp_path / "state"))


def lab_app() -> WizardApp:
    return WizardApp(Path("lab.yaml"), load("lab.yaml"))


async def until(pilot, check, seconds: float = 10) -> None:
    """Let the app run until ``check()`` holds (each round: its queued messages handled,
    then a short wait for timers)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {seconds} s: {check.__doc__ or check}")
        await pilot.pause(0.05)


async def shown(pilot, step: str) -> None:
    """Wait until ``step``'s screen is shown, composed."""
    app = pilot.app
    await until(pilot, lambda: app.screen.step == step and bool(app.screen.query("#steps")))


def start_from(target: str) -> str:
    """Another step to start from: the one after ``target`` (before, for the last)."""
    index = NAMES.index(target)
    return NAMES[index + 1] if index + 1 < len(NAMES) else NAMES[index - 1]


# --- the step list -------------------------------------------------------------------------


@pytest.mark.parametrize("target", NAMES)
def test_the_step_list_goes_to_a_step_by_keys(target: str) -> None:
    """Focus the step list, move to the step with the arrow keys, enter: it is shown."""
    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=SIZE) as pilot:
            app.go(start_from(target))
            await shown(pilot, start_from(target))
            steps = app.screen.query_one("#steps")
            steps.focus()
            await pilot.pause()
            assert steps.index == NAMES.index(start_from(target)), "the step shown"
            moves = NAMES.index(target) - NAMES.index(start_from(target))
            await pilot.press(*(["down"] * moves if moves > 0 else ["up"] * -moves))
            assert steps.index == NAMES.index(target)
            await pilot.press("enter")
            await shown(pilot, target)
            assert app.screen.query_one("#steps").index == NAMES.index(target)
    asyncio.run(walk())


@pytest.mark.parametrize("target", NAMES)
def test_the_step_list_goes_to_a_step_by_click(target: str) -> None:
    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=SIZE) as pilot:
            app.go(start_from(target))
            await shown(pilot, start_from(target))
            await pilot.click(f"#step-{target}")  # lands on the item's text, a child
            await shown(pilot, target)
            assert app.screen.query_one("#steps").index == NAMES.index(target)
    asyncio.run(walk())


def test_the_step_list_is_refused_as_next_is_until_there_are_answers() -> None:
    """No answers yet: the list, like ctrl+n, stays on Welcome and says why."""
    async def walk() -> None:
        app = WizardApp()
        async with app.run_test(size=SIZE) as pilot:
            assert app.screen.step == "welcome"
            await pilot.click("#step-network")
            await until(pilot, lambda: any(n.message.startswith("Start a plan")
                                           for n in app._notifications))
            assert app.screen.step == "welcome"
            assert app.screen.query_one("#steps").index == 0, "the list marks Welcome still"
    asyncio.run(walk())


def test_an_observer_goes_by_the_step_list_too() -> None:
    """Another session has control: this one still moves between steps by the list, as by
    ctrl+n, and is not told that it may not edit."""
    other = Control({"user": "alice", "tty": "/dev/pts/7"})
    assert other.try_take()

    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=SIZE) as pilot:
            await shown(pilot, "review")
            assert app.observing
            app.screen.query_one("#steps").focus()
            await pilot.press("up", "up", "enter")
            await shown(pilot, "discovery")
            await pilot.click("#step-deploy")
            await shown(pilot, "deploy")
            assert not any(n.message.startswith("Read-only") for n in app._notifications)
    try:
        asyncio.run(walk())
    finally:
        other.release()


def test_a_step_left_by_the_list_shows_itself_in_it_again() -> None:
    """Back on a step left through the list, its list marks that step, not the one
    chosen there."""
    async def walk() -> None:
        app = lab_app()
        async with app.run_test(size=SIZE) as pilot:
            app.go("network")
            await shown(pilot, "network")
            await pilot.click("#step-barclamps")
            await shown(pilot, "barclamps")
            await pilot.press("ctrl+b", "ctrl+b")
            await shown(pilot, "network")
            assert app.screen.query_one("#steps").index == NAMES.index("network")
    asyncio.run(walk())
