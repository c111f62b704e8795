"""Drivers: small classes around one real system each (IPMI, dnsmasq, HTTP, Chef)."""
