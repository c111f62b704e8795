"""Hardware: IPMI control and sweep, FRU data, and the inventory a node reports."""
