"""What every layer stands on: problems and fields, secrets, YAML files, safe file writes."""
