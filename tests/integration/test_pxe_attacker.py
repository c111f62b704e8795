"""An attacker on the admin network against ``pxe serve`` and the Chef server behind it.

Real parts: ``crowbar-wizard pxe serve`` (dnsmasq + the provisioner's HTTP service) and
goiardi (the Chef server, with the deployment's data bags, keystone's password among them)
in the admin node's namespace; a node that DHCPs its reservation and does what its install
files say (fetch them, send its own public key, say it is installed) with curl and openssl;
and an attacker at another address of the same segment who tries every endpoint and then
everything it got (plus, as if leaked from the node's logs, the node's install token)
against the Chef API. The node's Chef key reads the data bag (the positive control); nothing
the attacker holds does.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import need
from tests.integration.test_pxe_namespaces import LEASE_SCRIPT
from tests.netns import Segment, leftovers, need_root_netns
from wizard.answers import load

pytestmark = pytest.mark.slow

EXAMPLE = Path("answers/examples/lab-small.yaml")
ADMIN = "192.168.124.10"
HTTP = f"http://{ADMIN}:8091"
CHEF_PORT = 4545
ATTACKER = "192.168.124.30"
KEYSTONE_PASSWORD = "keystone-admin-s3cret"
CHEF_PROBE = """\
import asyncio, sys
from wizard.chef.api import ChefError, ChefServer

async def main(url, name, key_path, path):
    try:
        async with ChefServer(url, name, open(key_path).read()) as chef:
            print(await chef.request("GET", path))
    except ChefError as exc:
        print(f"refused {exc.status}")

asyncio.run(main(*sys.argv[1:]))
"""


@dataclass
class Site:
    segment: Segment
    server: str
    node: str
    attacker: str
    work: Path

    def curl(self, ns: str, *args: str) -> tuple[int, str]:
        """(HTTP status, body) of one curl from ``ns``."""
        result = self.segment.run(ns, "curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}",
                                  *args)
        body, _, status = result.stdout.rpartition("\n")
        return int(status), body

    def chef_read(self, ns: str, client: str, key: Path, path: str) -> str:
        """What the Chef API answers ``client`` (signing with ``key``) for GET ``path``."""
        result = self.segment.run(ns, sys.executable, str(self.work / "probe.py"),
                                  f"http://{ADMIN}:{CHEF_PORT}", client, str(key), path,
                                  cwd=Path.cwd())
        return result.stdout.strip()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    need_root_netns()
    for tool in ("busybox", "curl", "openssl", "goiardi"):
        need(tool)
    if shutil.which("dnsmasq", path="/usr/sbin:/usr/bin:/sbin") is None:
        need("dnsmasq")
    answers = load(EXAMPLE)
    work = Path(tempfile.mkdtemp(prefix="cw-attack-"))
    work.chmod(0o755)  # dnsmasq's unprivileged user reads the TFTP root
    segment = Segment("at")
    try:
        server = segment.host("srv", f"{ADMIN}/24")
        node = segment.host("node", mac=answers.nodes[0].macs[0])
        attacker = segment.host("evil", f"{ATTACKER}/24", mac="52:54:00:66:66:66")
        chef_dir = work / "chef"
        chef_dir.mkdir()
        segment.start(server, "goiardi", "-A", "-I", ADMIN, "-H", ADMIN, "-P",
                      str(CHEF_PORT), f"--conf-root={chef_dir}", log=work / "goiardi.log")
        _wait(lambda: (chef_dir / "admin.pem").exists() and segment.run(
            server, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
            f"http://{ADMIN}:{CHEF_PORT}/nodes", check=False).stdout == "401", "goiardi")
        text = EXAMPLE.read_text()  # the example, with goiardi's admin as its Chef client
        for old, new in (("client_name: crowbar", "client_name: admin"),
                         ("key: file:/etc/crowbar/chef/crowbar.pem",
                          f"key: file:{chef_dir / 'admin.pem'}")):
            assert old in text
            text = text.replace(old, new)
        answers_file = work / "answers.yaml"
        answers_file.write_text(text)
        env = {"CROWBAR_KEYSTONE_PASSWORD": KEYSTONE_PASSWORD, "CROWBAR_BMC_PASSWORD": "x",
               "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        segment.run(server, sys.executable, "-m", "wizard.cli", "chef", "push",
                    str(answers_file), env=env, cwd=Path.cwd())
        (work / "probe.py").write_text(CHEF_PROBE)
        (work / "lease.sh").write_text(LEASE_SCRIPT)
        (work / "lease.sh").chmod(0o755)
        log = work / "serve.log"
        serve = segment.start(server, "env", *(f"{k}={v}" for k, v in env.items()),
                              sys.executable, "-m", "wizard.cli", "pxe", "serve",
                              str(answers_file), str(work / "pxe"), "--state",
                              str(work / "state"), "--probe-timeout", "1", log=log)
        _wait(lambda: serve.poll() is not None or "serving http://" in log.read_text(),
              "pxe serve")
        assert serve.poll() is None, log.read_text()
        yield Site(segment, server, node, attacker, work)
    finally:
        segment.close()  # kills goiardi, dnsmasq and pxe serve with their namespace
        shutil.rmtree(work, ignore_errors=True)
        assert leftovers(segment.prefix) == []


def _wait(ready, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not come up within {timeout} s")
        time.sleep(0.1)


def test_nothing_an_attacker_on_the_admin_network_gets_reads_a_data_bag(site: Site) -> None:
    answers = load(EXAMPLE)
    node = answers.nodes[0]
    fqdn = f"{node.name}.{answers.site.domain}"
    mac = node.macs[0]
    evil_key = site.work / "evil.pem"
    site.segment.run(site.attacker, "openssl", "genrsa", "-out", str(evil_key), "2048")
    site.segment.run(site.attacker, "openssl", "rsa", "-in", str(evil_key), "-pubout",
                     "-out", str(site.work / "evil.pub"))
    got: list[str] = []

    def attack(token: str) -> None:
        """Every endpoint, from the attacker's address."""
        header = ["-H", f"X-Crowbar-Token: {token}"]
        for args, allowed in [
            ([f"{HTTP}/install/{node.name}/user-data"], {403}),
            ([f"{HTTP}/install/{node.name}/meta-data"], {403}),
            ([*header, f"{HTTP}/nodes/{node.name}/validation.pem"], {404, 405}),
            ([*header, "-X", "POST", "--data-binary", f"@{site.work / 'evil.pub'}",
              f"{HTTP}/nodes/{node.name}/client-key"], {403}),
            ([*header, "-X", "POST", f"{HTTP}/nodes/{node.name}/installed"], {403}),
            ([*header, "-X", "POST", "--data-binary", "chef-client could not be installed",
              f"{HTTP}/nodes/{node.name}/problem"], {403}),
            ([f"{HTTP}/boot/52-54-00-aa-bb-01"], {403}),  # someone else's MAC: no token
            ([f"{HTTP}/boot/52-54-00-66-66-66"], {403}),  # its own, but it holds no lease
        ]:
            status, body = site.curl(site.attacker, *args)
            assert status in allowed, (args, status, body)
            got.append(body)
        status, script = site.curl(site.attacker, f"{HTTP}/boot/{mac}")
        assert status == 200 and not re.search(r"[0-9a-f]{32}", script), script
        got.append(script)

    attack("0" * 32)
    # the node: its reservation, its install files, its own key sent with its token
    site.segment.run(site.node, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t",
                     "6", "-T", "1", "-s", str(site.work / "lease.sh"))
    status, user_data = site.curl(site.node, f"{HTTP}/install/{node.name}/user-data")
    assert status == 200, user_data
    token = re.search(r"X-Crowbar-Token: ([0-9a-f]{32})", user_data)
    assert token
    attack(token[1])  # a token seen in flight is no good from another address
    node_key = site.work / "node.pem"
    site.segment.run(site.node, "openssl", "genrsa", "-out", str(node_key), "2048")
    site.segment.run(site.node, "openssl", "rsa", "-in", str(node_key), "-pubout", "-out",
                     str(site.work / "node.pub"))
    auth = ["-H", f"X-Crowbar-Token: {token[1]}", "-X", "POST"]
    assert site.curl(site.node, *auth, "--data-binary", f"@{site.work / 'node.pub'}",
                     f"{HTTP}/nodes/{node.name}/client-key")[0] == 201
    # positive control: the node's own key reads the data bag
    assert KEYSTONE_PASSWORD in site.chef_read(site.node, fqdn, node_key,
                                               "/data/crowbar/bc-keystone-default")
    assert site.curl(site.node, *auth, f"{HTTP}/nodes/{node.name}/installed")[0] == 200
    attack(token[1])  # leaked after the install, from the node's logs: dead
    status, _ = site.curl(site.node, f"{HTTP}/install/{node.name}/user-data")
    assert status == 403  # not even the node gets its install files again

    assert not any("PRIVATE KEY" in body for body in got)
    for client in (fqdn, "chef-validator", "admin", "crowbar"):
        answer = site.chef_read(site.attacker, client, evil_key, "/data/crowbar")
        assert answer.startswith("refused 40"), (client, answer)
