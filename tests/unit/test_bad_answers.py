"""Bad answers files: each case breaks the valid BASE document in one place.

The line the error must point at carries a ``#<`` marker; the test checks that exactly one
problem is reported, at that line, with that field path and message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.base_answers import BASE
from wizard.answers import AnswersError, load

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDTnhKF4dXG8xSatgZHn28pPMKhbLeZn60JyXL2ZKZke"
EXTRA_NODE = """\
  - name: extra-1
    macs: [52:54:00:00:12:00]
"""

# (id, old text in BASE, new text, expected path, expected message)
CASES = [
    ("unknown-top-key", "site:\n", "sitee: x  #<\nsite:\n", "sitee",
     "unknown key 'sitee' (did you mean 'site'?)"),
    ("unknown-nested-key", "    router_pref: 10\n", "    router_pref: 10\n    gateway: 1.2.3.4  #<\n",
     "networks.admin.gateway", "unknown key 'gateway' (did you mean 'router'?)"),
    ("unknown-key-no-match", "  username: root\n", "  username: root\n  zzz: 1  #<\n", "bmc.zzz",
     "unknown key 'zzz' (expected one of: network, username, password, port)"),
    ("wrong-type-int", "router_pref: 10\n", "router_pref: ten  #<\n", "networks.admin.router_pref",
     "Input should be a valid integer, unable to parse string as an integer"),
    ("wrong-type-bool", "    use_vlan: true\n    ranges:\n      host: 192.168.126.2",
     "    use_vlan: maybe  #<\n    ranges:\n      host: 192.168.126.2",
     "networks.public.use_vlan", "Input should be a valid boolean, unable to interpret input"),
    ("missing-key", "provisioning:\n  os: ubuntu-24.04\n  mirror: http://192.168.124.10:8091/ubuntu\n",
     "provisioning:  #<\n  os: ubuntu-24.04\n", "provisioning.mirror",
     "required key 'mirror' is missing"),
    ("missing-node-macs", "  - name: ctl-1\n    macs: [52:54:00:00:10:00]\n", "  - name: ctl-1  #<\n",
     "nodes[0].macs",
     "required key 'macs' is missing"),
    ("not-a-mapping", "admin:\n  hostname: admin\n  address: 192.168.124.10\n  interface: eth0\n",
     "admin: [admin, 192.168.124.10]  #<\n", "admin", "expected a mapping of keys"),
    ("bad-ipv4", "router: 192.168.124.1\n", "router: 192.168.124.300  #<\n",
     "networks.admin.router", "'192.168.124.300' is not an IPv4 address"),
    ("range-outside-subnet", "dhcp: 192.168.124.21-192.168.124.80\n",
     "dhcp: 192.168.124.21-192.168.125.80  #<\n", "networks.admin.ranges.dhcp",
     "range 192.168.124.21-192.168.125.80 is not inside subnet 192.168.124.0/24"),
    ("range-backwards", "dhcp: 192.168.124.21-192.168.124.80\n",
     "dhcp: 192.168.124.80-192.168.124.21  #<\n", "networks.admin.ranges.dhcp",
     "range 192.168.124.80-192.168.124.21 runs backwards: 192.168.124.80 comes after "
     "192.168.124.21"),
    ("range-not-a-range", "dhcp: 192.168.124.21-192.168.124.80\n", "dhcp: 192.168.124.21  #<\n",
     "networks.admin.ranges.dhcp", "'192.168.124.21' is not an address range: write FIRST-LAST"),
    ("range-has-broadcast", "host: 192.168.126.129-192.168.126.190\n",
     "host: 192.168.126.129-192.168.126.191  #<\n", "networks.nova_floating.ranges.host",
     "range 192.168.126.129-192.168.126.191 includes the broadcast address of subnet "
     "192.168.126.128/26"),
    ("ranges-overlap", "host: 192.168.124.81-192.168.124.160\n",
     "host: 192.168.124.70-192.168.124.160  #<\n", "networks.admin.ranges.host",
     "range host (192.168.124.70-192.168.124.160) overlaps range dhcp at "
     "192.168.124.70-192.168.124.80"),
    ("unknown-range-name", "      admin: 192.168.124.10-192.168.124.11\n",
     "      admin: 192.168.124.10-192.168.124.11\n      pool: 192.168.124.12-192.168.124.13  #<\n",
     "networks.admin.ranges.pool",
     "key: Input should be 'admin', 'dhcp', 'host', 'switch' or 'router'"),
    ("router-in-range", "router: 192.168.124.1\n", "router: 192.168.124.30  #<\n",
     "networks.admin.router",
     "router 192.168.124.30 is inside the dhcp range 192.168.124.21-192.168.124.80"),
    ("router-outside-subnet", "router: 192.168.126.1\n", "router: 192.168.127.1  #<\n",
     "networks.public.router", "router 192.168.127.1 is not inside subnet 192.168.126.0/24"),
    ("vlan-too-big", "vlan: 300\n    use_vlan: true\n    ranges:\n      host: 192.168.126.2",
     "vlan: 4095  #<\n    use_vlan: true\n    ranges:\n      host: 192.168.126.2",
     "networks.public.vlan", "Input should be less than or equal to 4094"),
    ("use-vlan-without-vlan", "    vlan: 300\n    use_vlan: true\n    ranges:\n      host: 192.168.126.129",
     "    use_vlan: true  #<\n    ranges:\n      host: 192.168.126.129",
     "networks.nova_floating.use_vlan", "use_vlan is true but no vlan id is set"),
    ("unknown-conduit", "conduit: intf0\n", "conduit: intf9  #<\n", "networks.admin.conduit",
     "unknown conduit 'intf9' (known: intf0, intf1, bmc)"),
    ("teaming-mode", "teaming_mode: 4\n", "teaming_mode: 7  #<\n", "conduits.intf1.teaming_mode",
     "Input should be less than or equal to 6"),
    ("bad-interface", "interfaces: [1g1]\n", "interfaces: ['not an if']  #<\n",
     "conduits.intf0.interfaces[0]",
     "'not an if' is neither a NIC by speed and order (1g1, 10g2, ?1g1) nor an interface name"),
    ("router-pref-tie", "router_pref: 5\n", "router_pref: 10  #<\n",
     "networks.public.router_pref",
     "router_pref 10 is also the lowest on admin: the lowest router_pref picks the default "
     "route and must be unique"),
    ("same-segment-subnet", "subnet: 192.168.126.128/26\n", "subnet: 192.168.126.0/24  #<\n",
     "networks.nova_floating.subnet",
     "subnet 192.168.126.0/24 is also used by network public on the same conduit intf1 "
     "(VLAN 300): networks on one segment need disjoint subnets"),
    ("shared-subnet-ranges-overlap", "host: 192.168.124.162-192.168.124.240\n    node_addresses",
     "host: 192.168.124.150-192.168.124.240  #<\n    node_addresses", "networks.bmc.ranges.host",
     "range 192.168.124.150-192.168.124.240 overlaps range host of network admin "
     "(192.168.124.81-192.168.124.160) at 192.168.124.150-192.168.124.160; networks that share "
     "addresses need disjoint ranges"),
    ("subnet-host-bits", "subnet: 192.168.124.0/24\n    router: 192.168.124.1",
     "subnet: 192.168.124.5/24  #<\n    router: 192.168.124.1", "networks.admin.subnet",
     "192.168.124.5/24 has host bits set: the block is 192.168.124.0/24"),
    ("subnet-too-small", "subnet: 192.168.126.128/26\n", "subnet: 192.168.126.128/31  #<\n",
     "networks.nova_floating.subnet",
     "subnet 192.168.126.128/31 leaves no room for hosts (use /30 or wider)"),
    ("netmask-mismatch", "    router_pref: 10\n", "    router_pref: 10\n    netmask: 255.255.0.0  #<\n",
     "networks.admin.netmask",
     "netmask 255.255.0.0 does not match subnet 192.168.124.0/24 (255.255.255.0)"),
    ("netmask-is-a-hostmask", "subnet: 192.168.124.0/24\n    router: 192.168.124.1",
     "subnet: 192.168.124.0\n    netmask: 0.0.0.255  #<\n    router: 192.168.124.1",
     "networks.admin.netmask",
     "netmask 0.0.0.255 is not a netmask: its one bits come first (such as 255.255.255.0)"),
    ("admin-subnet-everything", "subnet: 192.168.124.0/24\n    router: 192.168.124.1",
     "subnet: 0.0.0.0/0  #<\n    router: 192.168.124.1", "networks.admin.subnet",
     "subnet 0.0.0.0/0 is wider than /8: no site network spans 4,294,967,296 addresses"),
    ("subnet-loopback", "subnet: 192.168.126.0/24\n", "subnet: 127.0.0.0/24  #<\n",
     "networks.public.subnet", "subnet 127.0.0.0/24 is in 127.0.0.0/8, the loopback block"),
    ("subnet-multicast", "subnet: 192.168.126.0/24\n", "subnet: 239.1.0.0/24  #<\n",
     "networks.public.subnet", "subnet 239.1.0.0/24 is in 224.0.0.0/4, the multicast block"),
    ("broadcast-mismatch", "    router_pref: 10\n",
     "    router_pref: 10\n    broadcast: 192.168.124.254  #<\n", "networks.admin.broadcast",
     "broadcast 192.168.124.254 does not match subnet 192.168.124.0/24 (192.168.124.255)"),
    ("host-range-too-small", "host: 192.168.126.2-192.168.126.49\n    node_addresses: [controller]",
     "host: 192.168.126.2-192.168.126.2  #<\n    node_addresses: all", "networks.public.ranges.host",
     "host range 192.168.126.2-192.168.126.2 holds 1 address but 2 nodes need one on public: "
     "1 short"),
    ("duplicate-node-name", None, EXTRA_NODE.replace("extra-1", "ctl-1  #<"), "nodes[2].name",
     "name ctl-1 is already used by nodes[0].name"),
    ("node-named-like-admin", None, EXTRA_NODE.replace("extra-1", "admin  #<"), "nodes[2].name",
     "name admin is already used by admin.hostname"),
    ("duplicate-mac", None, EXTRA_NODE.replace("12:00]", "11:01]  #<"), "nodes[2].macs[0]",
     "MAC 52:54:00:00:11:01 is already used by nodes[1].macs[1]"),
    ("duplicate-mac-other-case", None, EXTRA_NODE.replace("52:54:00:00:12:00]", "52-54-00-00-10-00]  #<"),
     "nodes[2].macs[0]", "MAC 52:54:00:00:10:00 is already used by nodes[0].macs[0]"),
    ("duplicate-ip", "bmc_address: 192.168.124.163\n", "bmc_address: 192.168.124.162  #<\n",
     "nodes[1].bmc_address", "address 192.168.124.162 is already used by nodes[0].bmc_address"),
    ("bmc-address-outside-range", "bmc_address: 192.168.124.163\n",
     "bmc_address: 192.168.124.161  #<\n", "nodes[1].bmc_address",
     "192.168.124.161 is outside the bmc network's host range 192.168.124.162-192.168.124.240"),
    ("pinned-unknown-network", "      admin: 192.168.124.90\n",
     "      admin: 192.168.124.90\n      storage: 192.168.125.10  #<\n", "nodes[1].addresses.storage",
     "network 'storage' is not in networks"),
    ("bad-mac", None, EXTRA_NODE.replace("52:54:00:00:12:00]", "52:54:00:00:12]  #<"),
     "nodes[2].macs[0]", "'52:54:00:00:12' is not a MAC address such as 52:54:00:12:34:56"),
    ("multicast-mac", None, EXTRA_NODE.replace("52:54:00:00:12:00]", "01:00:5e:00:00:01]  #<"),
     "nodes[2].macs[0]", "01:00:5e:00:00:01 is not a usable NIC address (zero or multicast)"),
    ("bad-node-name", None, EXTRA_NODE.replace("extra-1", "Extra_1  #<"), "nodes[2].name",
     "'Extra_1' is not a valid host name: lowercase letters, digits and '-', at most 63"),
    ("proposal-unknown-node", "ntp-server: [admin]\n", "ntp-server: [admin, ctl-9]  #<\n",
     "barclamps.ntp.roles.ntp-server[1]", "ntp-server: node 'ctl-9' is not in nodes"),
    ("chef-server-without-key", "chef:\n  server_url: http://192.168.124.10:4545\n  client_name: "
     "crowbar\n  key: file:/etc/crowbar/chef/crowbar.pem\n",
     "chef:  #<\n  server_url: http://192.168.124.10:4545\n  client_name: crowbar\n", "chef.key",
     "a Chef server needs key"),
    ("chef-nothing", "chef:\n  server_url: http://192.168.124.10:4545\n  client_name: crowbar\n"
     "  key: file:/etc/crowbar/chef/crowbar.pem\n", "chef: {}  #<\n", "chef",
     "set server_url (with client_name and key) or export_path"),
    ("bad-env-reference", "password: env:CROWBAR_BMC_PASSWORD\n", "password: env:1BAD  #<\n",
     "bmc.password", "'env:1BAD' does not name an environment variable"),
    ("username-too-long", "username: root\n", "username: administrator-of-all  #<\n",
     "bmc.username", "String should have at most 16 characters"),
    ("schema-version-newer", "schema_version: 1\n", "schema_version: 2  #<\n", "schema_version",
     "this crowbar-wizard reads version 1; the file is version 2, written by a newer "
     "crowbar-wizard"),
    ("schema-version-true", "schema_version: 1\n", "schema_version: true  #<\n",
     "schema_version", "write the number 1, not true"),
    ("schema-version-float", "schema_version: 1\n", "schema_version: 1.0  #<\n",
     "schema_version", "write the number 1, not 1.0"),
    ("schema-version-missing", "schema_version: 1\n", "#<\n", "schema_version",
     "required key 'schema_version' is missing"),
    ("unknown-os", "os: ubuntu-24.04\n", "os: windows-11  #<\n", "provisioning.os",
     "Input should be 'ubuntu-24.04', 'ubuntu-22.04', 'debian-12', 'rocky-9' or 'alma-9'"),
    ("mirror-not-url", "mirror: http://192.168.124.10:8091/ubuntu\n", "mirror: /srv/mirror  #<\n",
     "provisioning.mirror", "'/srv/mirror' is not an http(s) or ftp URL"),
    ("kernel-without-initrd", "  mirror: http://192.168.124.10:8091/ubuntu\n",
     "  mirror: http://192.168.124.10:8091/ubuntu\n  kernel_url: http://192.168.124.10/vmlinuz  #<\n",
     "provisioning.kernel_url", "kernel_url needs initrd_url too"),
    ("unknown-timezone", "timezone: UTC\n", "timezone: Mars/Olympus  #<\n", "site.timezone",
     "unknown time zone 'Mars/Olympus' (e.g. UTC, Europe/Berlin)"),
    ("misspelt-timezone", "timezone: UTC\n", "timezone: Europe/Berln  #<\n", "site.timezone",
     "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"),
    ("timezone-region", "timezone: UTC\n", "timezone: America  #<\n", "site.timezone",
     "'America' is a region, not a time zone: name one of its zones, such as 'America/Adak'"),
    ("timezone-too-long", "timezone: UTC\n", f"timezone: {'x' * 300}  #<\n", "site.timezone",
     f"unknown time zone '{'x' * 300}' (e.g. UTC, Europe/Berlin)"),
    ("bad-domain", "domain: lab.crowbar.test\n", "domain: lab..test  #<\n", "site.domain",
     "'lab..test' is not a valid DNS domain: dot-separated labels of lowercase letters, digits "
     "and '-'"),
    ("unknown-discovery-method", "methods: [ipmi, pxe]\n", "methods: [ipmi, snmp]  #<\n",
     "discovery.methods[1]", "Input should be 'ipmi' or 'pxe'"),
    ("bmc-range-outside", "bmc_ranges: [192.168.124.162-192.168.124.240]\n",
     "bmc_ranges: [10.0.0.0/24]  #<\n", "discovery.bmc_ranges[0]",
     "10.0.0.0/24 is not inside the bmc network (192.168.124.0/24)"),
    ("admin-outside-admin-range", "  address: 192.168.124.10\n", "  address: 192.168.124.12  #<\n",
     "admin.address",
     "192.168.124.12 is outside the admin network's admin range 192.168.124.10-192.168.124.11"),
    ("bad-node-selector", "node_addresses: [controller]\n", "node_addresses: some  #<\n",
     "networks.public.node_addresses",
     "write 'all', 'none' or a list of node roles such as [controller, network]"),
    ("bad-ssh-key", "  os: ubuntu-24.04\n",
     "  os: ubuntu-24.04\n  ssh_authorized_keys: [not-a-key]  #<\n",
     "provisioning.ssh_authorized_keys[0]", "'not-a-key' is not an OpenSSH public key line: it "
     "does not start with a key type such as ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256"),
    ("ssh-key-with-options", "  os: ubuntu-24.04\n",
     f"  os: ubuntu-24.04\n  ssh_authorized_keys: ['command=\"sh\" {KEY}']  #<\n",
     "provisioning.ssh_authorized_keys[0]", "'command=\"sh\" ssh-ed25519'... is not an OpenSSH "
     "public key line: options before the key type are not supported"),
    ("ssh-key-of-another-type", "  os: ubuntu-24.04\n",
     f"  os: ubuntu-24.04\n  ssh_authorized_keys: [{KEY.replace('ssh-ed25519', 'ssh-rsa')}]  #<\n",
     "provisioning.ssh_authorized_keys[0]",
     "'ssh-rsa AAAAC3NzaC1lZDI1'...: the key encoded in it is not of type ssh-rsa"),
    ("ssh-key-not-base64", "  os: ubuntu-24.04\n",
     "  os: ubuntu-24.04\n  ssh_authorized_keys: [ssh-ed25519 AAAAkeyOne me]  #<\n",
     "provisioning.ssh_authorized_keys[0]",
     "'ssh-ed25519 AAAAkeyOne m'...: the key is not valid base64 of an SSH key"),
    ("ssh-key-comment-breaks-line", "  os: ubuntu-24.04\n",
     f"  os: ubuntu-24.04\n  ssh_authorized_keys:\n  - {KEY} me\n  - \"{KEY} x\\rrm -rf /\"  #<\n",
     "provisioning.ssh_authorized_keys[1]",
     "holds a carriage return (U+000D) at character 83: a value is one line of printable text"),
    ("mirror-line-break", "mirror: http://192.168.124.10:8091/ubuntu\n",
     "mirror: \"http://192.168.124.10:8091/ubuntu\\nchain http://evil/x\"  #<\n",
     "provisioning.mirror",
     "holds a line break (U+000A) at character 34: a value is one line of printable text"),
    ("mirror-with-space", "mirror: http://192.168.124.10:8091/ubuntu\n",
     "mirror: 'http://192.168.124.10:8091/ubuntu shell'  #<\n", "provisioning.mirror",
     "'http://192.168.124.10:8091/ubuntu shell' is not a usable URL: ' ' is not allowed in a "
     "URL (percent-encode it)"),
    ("mirror-with-ipxe-setting", "mirror: http://192.168.124.10:8091/ubuntu\n",
     "mirror: http://192.168.124.10:8091/${net0/ip}  #<\n", "provisioning.mirror",
     "'http://192.168.124.10:8091/${net0/ip}' is not a usable URL: '$' is not allowed in a URL "
     "(percent-encode it)"),
    ("mirror-with-quote", "mirror: http://192.168.124.10:8091/ubuntu\n",
     "mirror: http://192.168.124.10:8091/u'x  #<\n", "provisioning.mirror",
     "\"http://192.168.124.10:8091/u'x\" is not a usable URL: \"'\" is not allowed in a URL "
     "(percent-encode it)"),
    ("mirror-bad-host", "mirror: http://192.168.124.10:8091/ubuntu\n",
     "mirror: http://ev_il/ubuntu  #<\n", "provisioning.mirror",
     "'http://ev_il/ubuntu' does not name a host: 'ev_il'"),
    ("timezone-line-break", "timezone: UTC\n", "timezone: \"UTC\\nx\"  #<\n", "site.timezone",
     "holds a line break (U+000A) at character 4: a value is one line of printable text"),
    ("username-tab", "username: root\n", "username: \"ro\\tot\"  #<\n", "bmc.username",
     "holds a tab (U+0009) at character 3: a value is one line of printable text"),
    ("vendor-nul", "hardware: {cpu_cores: 8, memory_gb: 32, disks: 2}\n",
     "hardware: {vendor: \"Dell\\0\", cpu_cores: 8, memory_gb: 32, disks: 2}  #<\n",
     "nodes[0].hardware.vendor",
     "holds a control character (U+0000) at character 5: a value is one line of printable text"),
    ("attribute-item-line-break", "      max_poll: 10\n",
     "      max_poll: 10\n      upstream_servers:\n      - pool.ntp.org\n"
     "      - \"10.0.0.1\\ndhcp-script=/tmp/x\"  #<\n", "barclamps.ntp.attributes.upstream_servers[1]",
     "holds a line break (U+000A) at character 9: a value is one line of printable text"),
    ("attribute-key-tab", "    attributes:\n      max_poll: 10\n",
     "    attributes:  #<\n      max_poll: 10\n      \"a\\tb\": 1\n", "barclamps.ntp.attributes",
     "a key holds a tab (U+0009) at character 2: a value is one line of printable text"),
    ("attribute-item-format", "      max_poll: 10\n",
     "      max_poll: 10\n      upstream_servers: [pool.ntp.org, 'pool.ntp.org;reboot']  #<\n",
     "barclamps.ntp.attributes.upstream_servers", "ntp attribute upstream_servers: item 2: "
     "'pool.ntp.org;reboot' is not a valid DNS domain: dot-separated labels of lowercase "
     "letters, digits and '-'"),
    ("attribute-item-not-a-string", "      max_poll: 10\n",
     "      max_poll: 10\n      upstream_servers: [{a: 1}]  #<\n",
     "barclamps.ntp.attributes.upstream_servers",
     "ntp attribute upstream_servers: item 1: expected a string, not dict"),
    ("negative-memory", "memory_gb: 32", "memory_gb: -1}  #<\n#", "nodes[0].hardware.memory_gb",
     "Input should be greater than or equal to 1"),
    ("conduit-beyond-inventory", "hardware: {cpu_cores: 8, memory_gb: 32, disks: 2}",
     "hardware: {cpu_cores: 8, memory_gb: 32, disks: 2,\n"
     "      nics: [{mac: '52:54:00:00:10:00', speed_mbps: 1000}]}  #<",
     "nodes[0].hardware.nics", "node ctl-1: conduit intf1 needs 1g2, and ctl-1 has only 1 NIC "
     "of 1 GbE"),
    ("duplicate-yaml-key", "    router_pref: 10\n", "    router_pref: 10\n    router_pref: 11  #<\n",
     "(file)", "YAML syntax error: duplicate key 'router_pref' (first on line 23)"),
    ("yaml-syntax", "  hostname: admin\n", "  hostname: [admin  #<\n", "(file)",
     "YAML syntax error: did not find expected ',' or ']'"),
]


def _write(tmp_path: Path, old: str | None, new: str) -> tuple[Path, int]:
    if old is None:
        text = BASE + new
    else:
        assert BASE.count(old) == 1, f"case text must occur once in BASE: {old!r}"
        text = BASE.replace(old, new)
    marked = [i for i, line in enumerate(text.splitlines(), 1) if "#<" in line]
    assert len(marked) == 1
    path = tmp_path / "answers.yaml"
    path.write_text(text)
    return path, marked[0]


def test_base_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "answers.yaml"
    path.write_text(BASE)
    assert len(load(path).nodes) == 2


def test_there_are_at_least_thirty_cases() -> None:
    assert len({case[0] for case in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize(("old", "new", "path", "message"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_answers(tmp_path: Path, old: str | None, new: str, path: str, message: str) -> None:
    file, line = _write(tmp_path, old, new)
    with pytest.raises(AnswersError) as caught:
        load(file)
    problems = caught.value.problems
    assert [(p.path, p.message) for p in problems] == [(path, message)]
    problem = problems[0]
    if path != "(file)" or "duplicate" in message:
        assert problem.line == line
    assert problem.file == str(file)
    assert str(caught.value) == f"{file}:{problem.line}:{problem.column}: {path}: {message}"
