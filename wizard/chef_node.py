"""What a freshly installed node does on the Chef server, as chef-client's first run does it.

1. As the validator client, register an API client named after the node (its new key).
2. As that client, read its node object, creating it in the deployment's environment if the
   admin node has not pushed it yet.
3. Read the node's run list (what ``chef push`` gave it).

The lab's node agents call :func:`register_node`, so the lab exercises the same API path a
real node takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from wizard.drivers.chef import ChefError, ChefServer, Retry
from wizard.drivers.chef_signing import SignVersion, load_key


def public_pem(private_pem: str) -> str:
    """The public half of a private key, as the Chef API takes it."""
    key = load_key(private_pem, "the node's own key").public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class Registration:
    """A node's standing on the Chef server after its first contact."""

    client_key: str
    """The node's own private key (PEM): keep it, 0600, as chef-client keeps client.pem."""
    run_list: list[str]
    environment: str
    created_node: bool


async def register_node(server_url: str, node_name: str, *, validator_name: str,
                        validator_key: str | None, client_key: str | None = None,
                        own_key: str | None = None,
                        environment: str = "_default", organization: str | None = None,
                        sign_version: SignVersion = "1.3",
                        retry: Retry | None = None) -> Registration:
    """Register ``node_name`` (unless ``client_key`` says it already is) and read its run list.

    The server makes the new client's key, unless ``own_key`` (a private key, PEM) is given:
    then the client is registered with its public half, as ``chef-client`` does when it
    brings its own ``client.pem``. Raises :class:`ChefError` (or :class:`ChefAuthError`)
    naming what failed.
    """
    options = {"organization": organization, "sign_version": sign_version, "retry": retry}
    if client_key is None:
        if validator_key is None:
            raise ChefError(f"{node_name} has no client key and no validator key to register")
        public = public_pem(own_key) if own_key is not None else None
        made, taken = None, False
        try:
            async with ChefServer(server_url, validator_name, validator_key,
                                  **options) as validator:
                made = await validator.create_client(node_name, public_key=public)
        except ChefError as exc:
            if exc.status != 409:
                raise
            taken = True
        client_key = own_key if own_key is not None else made
        if taken or client_key is None:
            raise ChefError(f"a Chef client named {node_name!r} exists already; delete it or "
                            "give the node its key", 409)
    async with ChefServer(server_url, node_name, client_key, **options) as me:
        node = await me.get("nodes", node_name)
        created = node is None
        if node is None:
            node = {"name": node_name, "chef_environment": environment, "run_list": [],
                    "json_class": "Chef::Node", "chef_type": "node", "normal": {}}
            await me.request("POST", "/nodes", node)
        return Registration(client_key, list(node.get("run_list", [])),
                            node.get("chef_environment", environment), created)
