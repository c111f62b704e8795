"""The deployment engine: plan, run and journal the steps that take nodes to ready."""
