"""Where an apply of a site keeps its state, named in one place: the journal, its lock, the
apply's output log and the pause file, all in the site's state directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wizard.answers import Answers
from wizard.engine.journal import state_root
from wizard.lab.control import lab_directory


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
    def apply_log(self) -> Path:
        """What a detached apply (started by the wizard) printed."""
        return self.directory / "apply.log"
