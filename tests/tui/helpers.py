"""Helpers the TUI tests share: the app on the lab example, the catalog's leaves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.screen import Screen
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from wizard.answers import load
from wizard.tui.app import WizardApp

LAB = Path("answers/examples/lab-small.yaml").resolve()
SIZE = (80, 24)


def lab_app() -> WizardApp:
    """The wizard on ``lab.yaml`` (the lab example, in the test's own directory)."""
    return WizardApp(Path("lab.yaml"), load("lab.yaml"))


def leaf(screen: Screen[Any], name: str) -> tuple[Tree[Any], TreeNode[Any]]:
    """The Barclamps step's catalog tree and barclamp ``name``'s leaf in it."""
    tree = screen.query_one("#catalog", Tree)
    return tree, next(node for branch in tree.root.children for node in branch.children
                      if node.data == name)
