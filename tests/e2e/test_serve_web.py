"""The wizard in a browser: ``crowbar-wizard serve-web`` on loopback, loaded by Debian's
chromium, headless, driven over the DevTools protocol (aiohttp's websocket client).

The page must get the wizard's own output (textual-serve marks the page ``-first-byte``
when the first bytes of the app reach its terminal) and carry the wizard's title. (The
terminal itself is drawn on a canvas: its text is not in the page to read.)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.terminal import wait_listening
from wizard.lab.goiardi import free_port

pytestmark = pytest.mark.slow
EXAMPLE = Path("answers/examples/lab-small.yaml").resolve()
TITLE = "document.querySelector('.intro') ? document.querySelector('.intro').innerText : ''"
"""The title textual-serve shows the page's visitor, from serve-web."""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


async def page_state(debug_port: int, url: str) -> tuple[str, str]:
    """Open ``url`` in the browser; (body class, title) once the app's output arrived."""
    counter = itertools.count(1)
    async with aiohttp.ClientSession() as http:
        async with http.put(f"http://127.0.0.1:{debug_port}/json/new?{url}") as response:
            target = json.loads(await response.text())
        async with http.ws_connect(target["webSocketDebuggerUrl"]) as ws:
            async def evaluate(expression: str) -> str:
                ident = next(counter)
                await ws.send_json({"id": ident, "method": "Runtime.evaluate",
                                    "params": {"expression": expression}})
                async for message in ws:
                    data = json.loads(message.data)
                    if data.get("id") == ident:
                        return str(data["result"]["result"].get("value", ""))
                raise AssertionError("the browser closed the connection")
            for _ in range(300):
                classes = await evaluate("document.body ? document.body.className : ''")
                if "-first-byte" in classes:
                    return classes, await evaluate(TITLE)
                await asyncio.sleep(0.1)
            return classes, await evaluate(TITLE)


def test_the_browser_gets_the_wizard(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (./dev installs it)")
        pytest.skip("chromium is not installed (./dev installs it)")
    (tmp_path / "lab.yaml").write_text(EXAMPLE.read_text())
    port, debug_port = free_port(), free_port()
    env = os.environ | {"CROWBAR_STATE_DIR": str(tmp_path / "state"),
                        "CROWBAR_LAB_DIR": str(tmp_path / "lab")}
    server = subprocess.Popen([sys.executable, "-m", "wizard.cli", "serve-web", "lab.yaml",
                               "--listen", f"127.0.0.1:{port}"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    browser = None
    try:
        wait_listening(port, server)
        browser = subprocess.Popen([chromium, *CHROMIUM_FLAGS,
                                    f"--user-data-dir={tmp_path / 'profile'}",
                                    f"--remote-debugging-port={debug_port}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        wait_listening(debug_port, browser)
        classes, title = asyncio.run(page_state(debug_port, f"http://127.0.0.1:{port}/"))
    finally:
        for process in (browser, server):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
    assert "-first-byte" in classes, "the wizard's output reached the page's terminal"
    assert "Crowbar Wizard" in title
