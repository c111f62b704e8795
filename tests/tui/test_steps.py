"""What every step shares (:mod:`wizard.tui.steps`): the step list goes where it is told, by
key or by click, and an observer's step follows the controller's edits where it stands."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from tests.tui.helpers import SIZE, lab_app, leaf
from wizard.engine.sessions import Control
from wizard.tui.app import WizardApp
from wizard.tui.steps import STEPS

NAMES = [name for name, _ in STEPS]


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
    """Wait until ``step``'s screen is shown, composed, and has handled what that
    brought (its resume)."""
    app = pilot.app
    await until(pilot, lambda: app.screen.step == step and bool(app.screen.query("#steps")))
    await pilot.pause()


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


# --- an observer follows the controller ----------------------------------------------------


@contextlib.contextmanager
def acting(app: WizardApp) -> Iterator[None]:
    """What the test does to ``app`` it does as ``app``: two apps run here, and Textual
    takes "the app" of what runs (a screen shown, the messages it handles) from the
    context that started it."""
    with app._context():
        yield


async def observed(cpilot, opilot, check) -> None:
    """Let both sessions run until the observer shows what the controller did:
    ``check()`` holds (the controller keeps its edits in the draft a moment after them;
    the observer looks at it every second)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"the observer does not show the edit: {check.__doc__}")
        await cpilot.pause(0.05)
        await opilot.pause(0.05)


def test_an_observers_focus_and_cursor_stay_put_as_the_controller_edits_a_network() -> None:
    """Two sessions on one answers file: the observer stands on the networks table, on
    storage's row; the controller changes storage's VLAN. The observer's table and form
    show the new VLAN, and its focus and cursor are where they were."""
    async def walk() -> None:
        controller, observer = lab_app(), lab_app()
        async with controller.run_test(size=SIZE) as cpilot:
            await until(cpilot, lambda: controller.control.held)
            async with observer.run_test(size=SIZE) as opilot:
                assert observer.observing
                with acting(observer):
                    observer.go("network")
                    await shown(opilot, "network")
                    table = observer.screen.query_one("#networks")
                    table.focus()
                    await opilot.press("down", "down", "down")
                    await until(opilot, lambda: observer.screen.current == "storage")
                    assert table.cursor_row == 3 and observer.focused is table

                with acting(controller):
                    controller.go("network")
                    await shown(cpilot, "network")
                    controller.screen.query_one("#networks").move_cursor(row=3)
                    await until(cpilot, lambda: controller.screen.query_one(
                        "#net-vlan").value == "200")  # storage's form
                    controller.screen.query_one("#net-vlan").value = "201"
                    await until(cpilot,
                                lambda: controller.answers.networks["storage"].vlan == 201)

                def vlan_shown() -> bool:
                    """storage's VLAN 201 in the observer's table"""
                    return str(table.get_cell("storage", "vlan")).startswith("201")
                await observed(cpilot, opilot, vlan_shown)
                assert observer.answers.networks["storage"].vlan == 201
                assert observer.focused is table, "the focus stays on the table"
                assert table.cursor_row == 3, "the cursor stays on storage"
                assert observer.screen.current == "storage"
                await until(opilot, lambda: observer.screen.query_one("#net-vlan").value
                            == "201")  # storage's form shows it too
                await until(opilot, lambda: observer.screen.query_one("#net-vlan").disabled)
                assert observer.focused is table and table.cursor_row == 3
    asyncio.run(walk())


def test_an_observers_focus_and_cursors_stay_put_as_the_controller_edits_barclamps() -> None:
    """The observer's cursor on nova's role matrix, the controller takes a node out of a
    role there; then the observer's cursor down the catalog (it scrolls), the controller
    selects ceph. The observer shows each edit, its focus, cursors and scroll unmoved."""
    async def walk() -> None:
        controller, observer = lab_app(), lab_app()
        async with controller.run_test(size=SIZE) as cpilot:
            await until(cpilot, lambda: controller.control.held)
            async with observer.run_test(size=SIZE) as opilot:
                assert observer.observing
                for app, pilot in ((observer, opilot), (controller, cpilot)):
                    with acting(app):
                        app.go("barclamps")
                        await shown(pilot, "barclamps")
                        tree, node = leaf(app.screen, "nova")
                        tree.move_cursor(node)
                        await until(pilot, lambda app=app: app.screen.current == "nova")
                with acting(observer):
                    matrix = observer.screen.query_one("#matrix")
                    matrix.focus()
                    await opilot.press("down", "down", "right")
                    assert matrix.cursor_coordinate == (2, 1) and observer.focused is matrix

                with acting(controller):
                    cmatrix = controller.screen.query_one("#matrix")
                    cmatrix.focus()
                    cmatrix.move_cursor(row=cmatrix.get_row_index("compute-3"), column=2)
                    await cpilot.press("enter")
                    await until(cpilot, lambda: "compute-3" not in controller.answers.barclamps[
                        "nova"].roles["nova-compute-kvm"])

                def taken_out() -> bool:
                    """compute-3 no nova-compute-kvm in the observer's matrix"""
                    row = matrix.get_row_index("compute-3")
                    return str(matrix.get_cell_at((row, 2))) == "·"
                await observed(cpilot, opilot, taken_out)
                assert observer.focused is matrix, "the focus stays on the matrix"
                assert matrix.cursor_coordinate == (2, 1), "and its cursor where it was"

                with acting(observer):
                    tree, _ = leaf(observer.screen, "nova")
                    tree.focus()
                    for _ in range(tree.last_line):  # down the catalog until it scrolls
                        if tree.scroll_offset.y > 0:
                            break
                        await opilot.press("down")
                    await opilot.press("up", "up", "up")  # the cursor inside the view
                    line, scrolled = tree.cursor_line, tree.scroll_offset
                    assert scrolled.y > 0
                with acting(controller):
                    ctree, ceph = leaf(controller.screen, "ceph")
                    ctree.select_node(ceph)
                    await until(cpilot, lambda: "ceph" in controller.answers.barclamps)

                def selected() -> bool:
                    """ceph marked selected in the observer's catalog"""
                    return str(leaf(observer.screen, "ceph")[1].label).startswith("●")
                await observed(cpilot, opilot, selected)
                assert observer.focused is tree, "the focus stays on the catalog"
                assert tree.cursor_line == line and tree.scroll_offset == scrolled
    asyncio.run(walk())
