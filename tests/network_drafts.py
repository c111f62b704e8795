"""An answers draft that bonds a node's 2nd and 3rd NIC (802.3ad) under the lab example's
tagged storage VLAN: what the network check is tried with, in unit and qemu tests."""

from __future__ import annotations

from pathlib import Path

EXAMPLE = Path(__file__).parents[1] / "answers" / "examples" / "lab-small.yaml"
BONDED = "  intf1:\n    interfaces:\n      - ?1g2\n      - ?1g3\n    teaming_mode: 4\n"


def bonded_draft(macs: list[str], name: str = "new-1", text: str | None = None) -> str:
    """The lab example (or ``text``, made from it) with ``intf1`` a bond of the 2nd and 3rd
    NIC and a compute node ``name`` whose NICs, in bus order, are ``macs``."""
    text = text if text is not None else EXAMPLE.read_text()
    single = "  intf1:\n    interfaces:\n      - ?1g2\n"
    assert single in text
    nics = "".join(f"        - mac: \"{mac}\"\n" for mac in macs)
    return text.replace(single, BONDED) + (
        f"  - name: {name}\n    macs: [{', '.join(f'{chr(34)}{m}{chr(34)}' for m in macs)}]\n"
        "    hardware:\n      cpu_cores: 2\n      memory_gb: 1\n      nics:\n" + nics
        + "    roles: [compute]\n")
