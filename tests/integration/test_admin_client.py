"""The admin node's own Chef client (:func:`admin_client_config`) against a real Chef server
(goiardi, authentication on): the public key it hands back, once registered, is the one its
client.pem signs with, so the admin node's chef-client can read and create its node object.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from wizard.chef.api import ChefServer
from wizard.chef.node import first_run, register_client
from wizard.chef.starters import admin_client_config
from wizard.lab.goiardi import Goiardi

pytestmark = pytest.mark.slow
NAME = "admin.lab.crowbar.test"


def test_the_admin_nodes_client_registers_and_signs_with_its_key(
        goiardi: Goiardi, tmp_path: Path) -> None:
    config, public = admin_client_config(tmp_path / "state", goiardi.url, NAME)
    assert public is not None
    text = config.read_text()
    [url] = re.findall(r'^chef_server_url "(.*)"$', text, re.MULTILINE)
    [key_path] = re.findall(r'^client_key "(.*)"$', text, re.MULTILINE)
    assert url == goiardi.url.rstrip("/")

    async def go() -> bool:
        async with ChefServer(goiardi.url, "admin", goiardi.admin_key.read_text()) as chef:
            await register_client(chef, NAME, public)
        registration = await first_run(url, NAME, Path(key_path).read_text())
        return registration.created_node

    assert asyncio.run(go()), "its node object made as its own client"
    assert admin_client_config(tmp_path / "state", goiardi.url, NAME) == (config, None)
