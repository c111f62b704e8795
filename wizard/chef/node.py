"""A node's Chef client: registered by the admin node, then used by the node itself.

Crowbar (and Chef's own bootstrap) gave every node the organization's *validator* key, with
which anyone holding it can make clients and so read every data bag. Here the validator key
never leaves the admin node:

1. The node makes its own key pair while it installs and sends the public half to the admin
   node (``POST /nodes/<node>/client-key``, once per install, from its address, with its
   install token), which registers the API client named after the node with it
   (:func:`register_client`, as the admin's Chef client).
2. As that client, chef-client's first run reads its node object, creating it in the
   deployment's environment if the admin node has not pushed it yet, and reads its run list
   (:func:`first_run`).

The lab's node agents do both over the real API, so the lab takes the path a real node takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from wizard.answers import Chef
from wizard.chef.api import ChefError, ChefServer, Retry
from wizard.chef.signing import SignVersion, load_key


def public_pem(private_pem: str) -> str:
    """The public half of a private key, as the Chef API takes it."""
    key = load_key(private_pem, "the node's own key").public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def admin_client(chef: Chef) -> ChefServer | None:
    """The Chef server the answers' ``chef`` section names, as its client (``chef.key``
    revealed: :class:`wizard.base.secrets.SecretError` when it cannot be); None when it names
    none (a chef-repo export)."""
    if not (chef.server_url and chef.client_name and chef.key is not None):
        return None
    return ChefServer(chef.server_url, chef.client_name, chef.key.reveal(),
                      organization=chef.organization)


async def register_client(admin: ChefServer, name: str, public_key: str) -> None:
    """Make the API client ``name`` with ``public_key`` (PEM), replacing one of that name
    (a reinstalled node brings a new key)."""
    try:
        await admin.create_client(name, public_key=public_key)
    except ChefError as exc:
        if exc.status != 409:
            raise
        await admin.delete("clients", name)
        await admin.create_client(name, public_key=public_key)


@dataclass(frozen=True)
class Registration:
    """A node's standing on the Chef server after its first run."""

    run_list: list[str]
    environment: str
    created_node: bool


async def first_run(server_url: str, node_name: str, client_key: str, *,
                    environment: str = "_default", organization: str | None = None,
                    sign_version: SignVersion = "1.3",
                    retry: Retry | None = None) -> Registration:
    """As the node's own client: read (or create) its node object and its run list.

    Raises :class:`ChefError` (or :class:`ChefAuthError`) naming what failed.
    """
    async with ChefServer(server_url, node_name, client_key, organization=organization,
                          sign_version=sign_version, retry=retry) as me:
        node = await me.get("nodes", node_name)
        created = node is None
        if node is None:
            node = {"name": node_name, "chef_environment": environment, "run_list": [],
                    "json_class": "Chef::Node", "chef_type": "node", "normal": {}}
            await me.request("POST", "/nodes", node)
        return Registration(list(node.get("run_list", [])),
                            node.get("chef_environment", environment), created)
