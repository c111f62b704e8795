"""Where the wizard keeps its state, named in one place.

The state root holds every site's state and the control lock the sessions share. A site's
state directory holds its apply's journal, the journal's lock, the apply's output log and
the pause file. Other modules ask here rather than spell a name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wizard.answers import Answers
from wizard.lab.control import lab_directory


def state_root() -> Path:
    """The directory that holds every site's state (journal, PXE tree): $CROWBAR_STATE_DIR,
    else /var/lib/crowbar-wizard for root, ~/.local/state/crowbar-wizard for others."""
    if "CROWBAR_STATE_DIR" in os.environ:
        return Path(os.environ["CROWBAR_STATE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/crowbar-wizard")
    return Path.home() / ".local" / "state" / "crowbar-wizard"


def control_lock() -> Path:
    """The lock of the session that controls the wizard, beside every site's state."""
    return state_root() / "control.lock"


def journal_lock(journal: Path) -> Path:
    """The lock an apply takes on ``journal`` (it says who holds it)."""
    return journal.with_name(journal.name + ".lock")


def pause_file(journal: Path) -> Path:
    """The file that, while it exists, pauses the apply writing ``journal``."""
    return journal.with_name("paused")


def site_state(answers: Answers, *, lab: bool, state: Path | None = None) -> Path:
    """Where an apply of ``answers`` keeps its journal and PXE tree: ``state`` when given,
    else the lab's directory (``--lab``) or the state root, under the site's name."""
    if state is not None:
        return state
    site = answers.site.name
    if lab:
        return lab_directory() / "apply" / site
    return state_root() / site


@dataclass(frozen=True)
class SitePaths:
    """The files of one site's state directory."""

    directory: Path

    @classmethod
    def of(cls, answers: Answers, *, lab: bool, state: Path | None = None) -> SitePaths:
        return cls(site_state(answers, lab=lab, state=state))

    @property
    def journal(self) -> Path:
        return self.directory / "journal.db"

    @property
    def journal_lock(self) -> Path:
        return journal_lock(self.journal)

    @property
    def pause_file(self) -> Path:
        return pause_file(self.journal)

    @property
    def orders(self) -> Path:
        """Orders for machines waiting in the discovery image, a file each, until carried
        out (a network check: until answered)."""
        return self.directory / "orders"

    @property
    def apply_log(self) -> Path:
        """What a detached apply (started by the wizard) printed."""
        return self.directory / "apply.log"

    @property
    def admin_client_key(self) -> Path:
        """The admin node's own Chef client key (0600): the admin node converges its roles
        (the DNS, NTP and logging servers) as a node."""
        return self.directory / "chef-client" / "client.pem"
