"""Upload a cookbook version through the Chef Server API, as knife does.

The flow is the server's own: ``POST /sandboxes`` with every file's MD5; PUT each file the
server says it lacks to the URL it gives; ``PUT /sandboxes/ID`` to commit; then
``PUT /cookbooks/NAME/VERSION`` with the manifest. A version the server holds with the same
files is left alone (no sandbox at all). One it holds with other files is refused, naming
them, unless forced: a cookbook version is what nodes pinned to it already run, and
replacing it under them behind a version number that did not move is the mistake the
refusal is for.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from wizard.chef.api import ChefError, ChefServer, Outcome
from wizard.chef.cookbooks import SEGMENTS, Cookbook


class CookbookConflict(ChefError):
    """The server holds this cookbook version with other files: not retried, not replaced
    unless forced."""


async def upload_cookbook(server: ChefServer, cookbook: Cookbook, *,
                          force: bool = False) -> Outcome:
    """Put ``cookbook`` on the server: created, updated (``force``) or unchanged."""
    path = f"/cookbooks/{quote(cookbook.name, safe='')}/{quote(cookbook.version, safe='')}"
    current = await server.request("GET", path, missing_ok=True)
    if current is not None:
        changed = _differences(_held(current), cookbook.checksums)
        if not changed:
            return "unchanged"
        if not force:
            shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more"
                                              if len(changed) > 8 else "")
            raise CookbookConflict(
                f"cookbook {cookbook.name} {cookbook.version} is on the server with other "
                f"files ({shown}): bump the version in metadata.rb, or push with --force",
                409)
    await _upload_files(server, cookbook)
    await server.request("PUT", path + ("?force=true" if force else ""), cookbook.manifest())
    return "created" if current is None else "updated"


def _held(version: dict[str, Any]) -> dict[str, str]:
    """``{path: MD5}`` of a cookbook version the server gave."""
    return {entry["path"]: entry["checksum"]
            for segment in SEGMENTS for entry in version.get(segment) or ()}


def _differences(held: dict[str, str], wanted: dict[str, str]) -> list[str]:
    """Each path that differs, saying how: ``recipes/default.rb (changed)``."""
    out = []
    for path in sorted(held.keys() | wanted.keys()):
        if path not in held:
            out.append(f"{path} (new)")
        elif path not in wanted:
            out.append(f"{path} (gone)")
        elif held[path] != wanted[path]:
            out.append(f"{path} (changed)")
    return out


async def _upload_files(server: ChefServer, cookbook: Cookbook) -> None:
    """The sandbox round: upload what the server lacks, then commit it."""
    by_checksum = {file.checksum: file for file in cookbook.files}
    sandbox = await server.request("POST", "/sandboxes",
                                   {"checksums": dict.fromkeys(sorted(by_checksum))})
    wanted = sorted((checksum, state["url"]) for checksum, state in sandbox["checksums"].items()
                    if state.get("needs_upload"))

    async def put(checksum: str, url: str) -> None:
        await server.put_file(url, by_checksum[checksum].read())
    await asyncio.gather(*(put(checksum, url) for checksum, url in wanted))
    await server.request("PUT", f"/sandboxes/{quote(sandbox['sandbox_id'], safe='')}",
                         {"is_completed": True})
