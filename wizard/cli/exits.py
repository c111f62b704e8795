"""Exit codes every ``crowbar-wizard`` command keeps to."""

EXIT_OK = 0
EXIT_FAILED = 1
"""The command could not do its work (a daemon down, a file that cannot be written)."""
EXIT_INVALID = 2
"""Invalid input: nothing was done."""
EXIT_LOCKED = 3
"""Another process holds the deployment journal."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (128 + SIGINT), after saying what was done."""
EXIT_BROKEN_PIPE = 141
"""The reader of the output went away (128 + SIGPIPE, as a shell reports ``cat | head``)."""
