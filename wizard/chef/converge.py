"""A converge: one chef-client run a node makes when the engine asks, and what it records.

The engine asks for a converge in two moves. It writes into the node's object the run list
to converge (the roles whose dependencies have converged everywhere, see
:mod:`wizard.engine.convergence`) and a fresh request id at ``normal.crowbar.converge.request``;
then a :class:`Starter` makes the node run chef-client once (over SSH on real servers, as
Crowbar's deployer did; the lab's stand-in plays the client). What happened is read back
from the Chef server only: the node's client saves its node object with its automatic
attributes (``ohai_time``, platform, addresses) and, from the report and exception handler
the deployer cookbook installs, ``normal.crowbar.converge.last``::

    {"request": "<the id it ran for>", "status": "success" | "failed",
     "started": "<ISO 8601, UTC>", "elapsed": <seconds>, "error": "<message>" | null,
     "run_list": ["role[...]", ...]}

:func:`read_run` turns that into a :class:`RunRecord`, or says why it is none: a node that
saved nothing for this request did not converge, whatever the starter's exit status said.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import Any, Protocol

REQUEST_PATH = ("crowbar", "converge", "request")
"""Where in a node's ``normal`` attributes the engine puts the request id."""
LAST_PATH = ("crowbar", "converge", "last")
"""Where the node's handler records its last run."""
STATUSES = ("success", "failed")


class Starter(Protocol):
    """Makes a node run chef-client once."""

    async def start(self, node: str) -> str:
        """Run chef-client on ``node`` (its FQDN, as its Chef node is named) and return when
        the run is over, with the last lines it printed (the engine says them when the node
        recorded no run); raise :class:`OSError` when the node cannot be reached. A run
        that never ends is the caller's timeout to catch."""


def new_request() -> str:
    """A request id no earlier run can have recorded."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class RunRecord:
    """One chef-client run, as the node recorded it."""

    request: str
    status: str
    started: str
    elapsed: float
    error: str | None
    run_list: tuple[str, ...]
    ohai_time: float
    """When the node's ohai last ran (its own clock), from its automatic attributes."""

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def summary(self) -> dict[str, Any]:
        """What the journal keeps of the run."""
        return {**asdict(self), "run_list": list(self.run_list)}


def dig(attributes: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested attributes, or None."""
    value: Any = attributes
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def with_request(node: dict[str, Any], run_list: list[str], request: str) -> dict[str, Any]:
    """``node`` (a node object) with ``run_list`` to converge and ``request`` to record."""
    normal = dict(node.get("normal", {}))
    crowbar = dict(normal.get("crowbar", {}))
    crowbar["converge"] = {**crowbar.get("converge", {}), "request": request}
    normal["crowbar"] = crowbar
    return {**node, "run_list": list(run_list), "normal": normal}


def read_run(node: dict[str, Any] | None, request: str) -> RunRecord | str:
    """The run ``node`` (its object as the server holds it) recorded for ``request``, or why
    there is none, in words."""
    if node is None:
        return "its node object is gone from the Chef server"
    last = dig(node.get("normal", {}), LAST_PATH)
    if not isinstance(last, dict):
        return "chef-client recorded no run (no crowbar.converge.last in its node object)"
    if last.get("request") != request:
        return (f"chef-client recorded no run for this converge (its last run was for "
                f"request {str(last.get('request'))[:16]!r})")
    ohai_time = dig(node.get("automatic", {}), ("ohai_time",))
    status, elapsed, error = last.get("status"), last.get("elapsed"), last.get("error")
    run_list = last.get("run_list")
    if (status not in STATUSES or not isinstance(elapsed, int | float)
            or not isinstance(last.get("started"), str)
            or not (error is None or isinstance(error, str))
            or not isinstance(run_list, list)
            or not all(isinstance(item, str) for item in run_list)
            or not isinstance(ohai_time, int | float)):
        return "chef-client recorded its run in a form the engine does not know"
    if status == "failed" and not error:
        error = "chef-client failed and recorded no error message"
    return RunRecord(request=request, status=status, started=last["started"],
                     elapsed=float(elapsed), error=error, run_list=tuple(run_list),
                     ohai_time=float(ohai_time))
