"""The Textual face of Crowbar Wizard: the wizard app and one module per step."""
