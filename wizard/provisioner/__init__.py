"""PXE provisioning: what the admin node serves over DHCP, TFTP and HTTP to install nodes."""
