"""The lab: a simulated fleet on loopback that speaks real IPMI, HTTP and the Chef API."""
