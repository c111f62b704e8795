"""Saving answers: round trips, kept order and comments, atomic writes, secrets."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from tests.unit.base_answers import BASE
from wizard.answers import Node, load, save, to_data
from wizard.base.secrets import Secret, SecretError

EXAMPLES = sorted(Path(__file__).parents[2].joinpath("answers", "examples").glob("*.yaml"))


def _base(tmp_path: Path, text: str = BASE) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_examples_round_trip_byte_for_byte(tmp_path: Path, example: Path) -> None:
    answers = load(example)
    out = tmp_path / example.name
    save(answers, out)
    assert out.read_text() == example.read_text()
    assert to_data(load(out)) == to_data(answers)


def test_unchanged_save_keeps_comments_order_and_flow_style(tmp_path: Path) -> None:
    text = "# top comment\n" + BASE.replace("  hostname: admin\n", "  hostname: admin  # the box\n")
    # keys out of the model's order must stay where the operator put them
    text = text.replace("schema_version: 1\n", "") + "schema_version: 1\n"
    path = _base(tmp_path, text)
    save(load(path), path)
    assert path.read_text() == text


def test_edit_changes_only_what_was_edited(tmp_path: Path) -> None:
    path = _base(tmp_path)
    answers = load(path)
    answers.site.timezone = "Europe/Berlin"
    answers.nodes.append(Node(name="compute-2", macs=["52:54:00:00:11:02"], roles=["compute"]))
    save(answers, path)
    before, after = BASE.splitlines(), path.read_text().splitlines()
    changed = [line for line in after if line not in before]
    assert changed == [
        "  timezone: Europe/Berlin",
        "  - name: compute-2",
        "    macs:",
        "      - 52:54:00:00:11:02",
        "      - compute",
    ]
    again = load(path)
    assert [n.name for n in again.nodes] == ["ctl-1", "compute-1", "compute-2"]


def test_invalid_assignment_is_refused(tmp_path: Path) -> None:
    answers = load(_base(tmp_path))
    with pytest.raises(ValueError, match="is not an IPv4 address"):
        answers.admin.address = "10.0.0.300"
    assert answers.admin.address == "192.168.124.10"


def test_failed_save_leaves_the_old_file_untouched(tmp_path: Path, monkeypatch) -> None:
    """Disk-full is simulated by making fsync fail: no real full disk can be had here."""
    path = _base(tmp_path)
    answers = load(path)
    answers.site.name = "changed"

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save(answers, path)
    monkeypatch.undo()
    assert path.read_text() == BASE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.yaml"]


def test_save_into_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    answers = load(_base(tmp_path))
    with pytest.raises(FileNotFoundError):
        save(answers, tmp_path / "no" / "such" / "dir.yaml")


def test_inline_secret_makes_the_file_private(tmp_path: Path) -> None:
    path = _base(tmp_path)
    answers = load(path)
    assert stat.S_IMODE(path.stat().st_mode) != 0o600
    answers.bmc.password = Secret("hunter2")
    save(answers, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "password: hunter2" in path.read_text()
    answers.bmc.password = Secret("env:BMC_PASS")
    save(answers, path)
    assert "hunter2" not in path.read_text()


def test_secrets_never_show_in_repr_str_or_dumps(tmp_path: Path, caplog) -> None:
    answers = load(_base(tmp_path, BASE.replace("env:CROWBAR_BMC_PASSWORD", "hunter2")))
    caplog.set_level(logging.DEBUG)
    logging.getLogger("test").info("answers: %s %r", answers, answers)
    shown = [repr(answers), str(answers), repr(answers.bmc), str(answers.bmc.password),
             str(answers.model_dump()), answers.model_dump_json(), caplog.text]
    assert all("hunter2" not in text for text in shown)
    assert answers.bmc.password.reveal() == "hunter2"


def test_secret_references_resolve_when_needed(tmp_path: Path, monkeypatch) -> None:
    key = tmp_path / "chef.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nabc\n")
    text = BASE.replace("file:/etc/crowbar/chef/crowbar.pem", f"file:{key}")
    answers = load(_base(tmp_path, text))
    assert answers.chef.key.reveal() == "-----BEGIN RSA PRIVATE KEY-----\nabc"
    assert repr(answers.chef.key) == f"Secret('file:{key}')"
    monkeypatch.delenv("CROWBAR_BMC_PASSWORD", raising=False)
    with pytest.raises(SecretError, match="environment variable CROWBAR_BMC_PASSWORD is not set"):
        answers.bmc.password.reveal()
    monkeypatch.setenv("CROWBAR_BMC_PASSWORD", "from-env")
    assert answers.bmc.password.reveal() == "from-env"
    key.unlink()
    with pytest.raises(SecretError, match=f"cannot read {key}: No such file"):
        answers.chef.key.reveal()


def test_repeated_saves_keep_comments_and_every_edit(tmp_path: Path) -> None:
    path = _base(tmp_path, "# site plan\n" + BASE)
    answers = load(path)
    for zone in ("Europe/Berlin", "Asia/Tokyo"):
        answers.site.timezone = zone
        save(answers, path)
    answers.nodes[1].roles.append("storage")
    save(answers, path)
    text = path.read_text()
    assert text.startswith("# site plan\n")
    assert "timezone: Asia/Tokyo" in text
    assert load(path).nodes[1].roles == ["compute", "storage"]


def test_in_place_edit_of_a_field_left_at_its_default_is_saved(tmp_path: Path) -> None:
    path = _base(tmp_path)
    answers = load(path)
    assert "addresses" not in answers.nodes[0].model_fields_set
    answers.nodes[0].addresses["admin"] = "192.168.124.91"
    answers.discovery.methods.remove("pxe")
    save(answers, path)
    again = load(path)
    assert again.nodes[0].addresses == {"admin": "192.168.124.91"}
    assert again.discovery.methods == ["ipmi"]
