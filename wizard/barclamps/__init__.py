"""Barclamps as data: each ``<name>/barclamp.yaml`` (with ``templates/*.j2``) is package data."""
