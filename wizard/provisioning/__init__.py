"""Provisioning the OS: the site the PXE tree renders, dnsmasq, the install HTTP server
and the state of each node's install."""
