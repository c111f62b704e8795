"""The wizard in a browser: ``crowbar-wizard serve-web`` on loopback, loaded by Debian's
chromium, headless, driven over the DevTools protocol (aiohttp's websocket client).

The URL serve-web prints (its token in it) must get the wizard's own output (textual-serve
marks the page ``-first-byte`` when the first bytes of the app reach its terminal) and
carry the wizard's title. (The terminal itself is drawn on a canvas: its text is not in
the page to read.) A page served from another origin (another local HTTP server, on
another port) must not get the screen: not through textual-serve's own websocket, not
through ours even knowing the token, not by fetching the page. Nor may a name that merely
resolves to 127.0.0.1 (DNS rebinding, played with chromium's host resolver rules).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
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
                  "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP rebound.test 127.0.0.1"]
URL_LINE = re.compile(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]+")
ATTACK = """<!DOCTYPE html>
<html><body><script>
// Another site's page: it tries to read the wizard's screen, as any page could before.
function socket(url) {
  return new Promise(resolve => {
    let ws;
    try { ws = new WebSocket(url); } catch (e) { resolve("refused: " + e); return; }
    ws.binaryType = "arraybuffer";
    ws.onmessage = () => { resolve("read the screen"); ws.close(); };
    ws.onclose = () => resolve("refused");
  });
}
function page(url) {
  return fetch(url).then(r => r.text()).then(t => "read the page", e => "refused");
}
Promise.all([
  socket("ws://127.0.0.1:PORT/ws?width=80&height=24"),
  socket("ws://127.0.0.1:PORT/ws/TOKEN?width=80&height=24"),
  page("http://127.0.0.1:PORT/?token=TOKEN"),
]).then(results => { window.report = results; });
</script></body></html>
"""
"""The other origin's page; PORT and TOKEN are serve-web's (the worst case: a leaked URL)."""


async def watch(debug_port: int, url: str, expression: str,
                done: Callable[[str], bool]) -> str:
    """Open ``url`` in a new tab; ``expression``'s value once ``done`` says so (or after
    30 s, the last value)."""
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
            value = ""
            for _ in range(300):
                value = await evaluate(expression)
                if done(value):
                    break
                await asyncio.sleep(0.1)
            return value


def test_the_printed_url_gets_the_wizard_other_origins_get_nothing(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (./dev installs it)")
        pytest.skip("chromium is not installed (./dev installs it)")
    (tmp_path / "lab.yaml").write_text(EXAMPLE.read_text())
    port, debug_port, other_port = free_port(), free_port(), free_port()
    env = os.environ | {"CROWBAR_STATE_DIR": str(tmp_path / "state"),
                        "CROWBAR_LAB_DIR": str(tmp_path / "lab")}
    server = subprocess.Popen([sys.executable, "-m", "wizard.cli", "serve-web", "lab.yaml",
                               "--listen", f"127.0.0.1:{port}"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    assert server.stdout is not None
    browser = other = None
    try:
        printed = URL_LINE.search(server.stdout.readline())
        assert printed, "serve-web prints the URL to open, with its token"
        url = printed[0]
        token = url.partition("token=")[2]
        site = tmp_path / "other-site"
        site.mkdir()
        (site / "attack.html").write_text(
            ATTACK.replace("PORT", str(port)).replace("TOKEN", token))
        other = subprocess.Popen([sys.executable, "-m", "http.server", str(other_port),
                                  "--bind", "127.0.0.1", "--directory", str(site)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        wait_listening(port, server)
        wait_listening(other_port, other)
        browser = subprocess.Popen([chromium, *CHROMIUM_FLAGS,
                                    f"--user-data-dir={tmp_path / 'profile'}",
                                    f"--remote-debugging-port={debug_port}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        wait_listening(debug_port, browser)

        state = "document.body ? document.body.className + '|' + (TITLE) : ''".replace(
            "TITLE", TITLE)
        classes, _, title = asyncio.run(watch(debug_port, url, state,
                                              lambda v: "-first-byte" in v)).partition("|")
        report = asyncio.run(watch(debug_port, f"http://127.0.0.1:{other_port}/attack.html",
                                   "JSON.stringify(window.report || null)",
                                   lambda v: v != "null"))
        rebound = asyncio.run(watch(
            debug_port, url.replace("127.0.0.1", "rebound.test"),
            "document.body ? document.body.innerText : ''", bool))
        bare = asyncio.run(watch(debug_port, url.partition("?")[0],
                                 "document.body ? document.body.innerText : ''", bool))
    finally:
        for process in (browser, other, server):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)
    assert "-first-byte" in classes, "the wizard's output reached the page's terminal"
    assert "Crowbar Wizard" in title
    assert json.loads(report) == ["refused", "refused", "refused"], report
    assert "is not this server's address" in rebound and "Crowbar" not in rebound
    assert "open the URL serve-web printed" in bare
