"""The discovery image: built on the admin node from Debian's own packages (see :mod:`.build`)."""
