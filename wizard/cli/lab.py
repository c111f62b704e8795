"""``--lab`` on the commands that talk to the lab: the answers as cabled to it.

``apply``, ``chef push`` and ``power`` take the answers file's nodes onto the running lab's
servers through the one overlay (:mod:`wizard.lab.overlay`): node *i* on lab server *i*,
with its BMC address, port and credentials, and the lab's Chef server and admin key.
Nothing of the lab has to be copied into the answers file.
"""

from __future__ import annotations

import argparse
import sys

from wizard.answers import Answers
from wizard.lab.control import Lab, LabError, lab_directory, no_chef_reason
from wizard.lab.overlay import check_deployable, lab_answers


def add_lab_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--lab", action="store_true",
                        help=f"{what} (crowbar-wizard lab up): each node is a lab server "
                        "(node i of the first answers file is server i; a node keeps its "
                        "server), with the lab's BMC addresses, port, credentials and Chef "
                        "server")


def cabled(answers: Answers, *, deploy: bool = False, chef: bool = False,
           notes: bool = True) -> Answers:
    """``answers`` as cabled to the running lab; with ``notes``, the secrets the lab makes up
    are said on stderr. Raises :class:`wizard.lab.control.LabError` (no lab, too small, no
    Chef server when ``chef`` needs one), and with ``deploy``
    :class:`wizard.base.problems.AnswersError` when the answers have nothing to deploy on it
    (checked first: input before environment)."""
    if deploy:
        check_deployable(answers)
    said: list[str] = []
    lab = Lab(lab_directory())
    result = lab_answers(answers, lab, said)
    if chef and result.chef.server_url is None:
        raise LabError(f"the lab has no Chef server ({no_chef_reason()})")
    if notes:
        for note in said:
            print(f"lab: {note}", file=sys.stderr)
    return result
