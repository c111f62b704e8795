"""The crowbar-wizard command (the top layer): argument parsing and printing over the
engine and the TUI."""
