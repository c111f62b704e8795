"""``python -m wizard.cli``: the crowbar-wizard command (subprocesses start it this way)."""

import sys

from wizard.cli.main import main

sys.exit(main())
