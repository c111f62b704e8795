"""Crowbar Wizard's engine: planning and provisioning, with no user interface of its own."""
