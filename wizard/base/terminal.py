"""Output for people: a rich console sized for a terminal or for a pipe."""

import sys

from rich.console import Console


def console() -> Console:
    """Stdout, at the terminal's width, or 140 columns when piped (tables stay whole)."""
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 140)
