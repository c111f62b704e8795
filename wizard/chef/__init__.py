"""Chef: the objects a deployment renders, the signed Chef Server API, node registration."""
