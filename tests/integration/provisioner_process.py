"""The provisioner's HTTP service as ``pxe serve`` runs it, in a process of its own.

``python -m tests.integration.provisioner_process PORT DIR REQUEST_TIMEOUT SEND_TIMEOUT
MAX_CONNECTIONS NOFILE [HOST]`` serves ``answers/examples/lab-small.yaml`` on HOST:PORT
(default 127.0.0.1) with DIR/media, its store in DIR/journal.db, through
:func:`wizard.provisioning.serving.provisioner_server`, after lowering the descriptor limit,
soft and hard, to NOFILE (0: unchanged; MAX_CONNECTIONS 0: the default for that limit).
Logs go to stderr as ``pxe serve`` logs them.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sys
from pathlib import Path

from wizard.answers import load
from wizard.catalog import default_catalog
from wizard.engine.journal import Journal
from wizard.engine.journal_states import JournalStates
from wizard.provisioning.http import create_app
from wizard.provisioning.serving import provisioner_server
from wizard.provisioning.site import ProvisionerSite


def main(port: str, directory: str, request_timeout: str, send_timeout: str,
         max_connections: str, nofile: str, host: str = "127.0.0.1") -> None:
    if int(nofile):
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(nofile), int(nofile)))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    site = ProvisionerSite(load(Path("answers/examples/lab-small.yaml")), default_catalog(),
                           b"k" * 32)
    with Journal.open(Path(directory) / "journal.db", command="pxe serve") as journal:
        app = create_app(site, JournalStates(journal), media=Path(directory) / "media")
        server = provisioner_server(app, host, int(port),
                                    request_timeout=float(request_timeout),
                                    send_timeout=float(send_timeout),
                                    max_connections=int(max_connections) or None)
        asyncio.run(server.serve())


if __name__ == "__main__":
    main(*sys.argv[1:])
