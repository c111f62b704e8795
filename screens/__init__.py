"""The Textual face of Crowbar Wizard (the wizard screens land with the TUI issue)."""
