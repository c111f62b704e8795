"""What a plan says of changed barclamp attributes: values old and new, a secret only that it
changed (the journal holds a keyed digest of it, never the value)."""

from __future__ import annotations

import json

import pytest

from wizard.answers import load
from wizard.catalog import default_catalog
from wizard.chef.objects import render
from wizard.engine.changes import attribute_changes, attribute_record

KEY = b"k" * 32


def record(monkeypatch: pytest.MonkeyPatch, password: str) -> dict[str, object]:
    monkeypatch.setenv("CROWBAR_KEYSTONE_PASSWORD", password)
    catalog = default_catalog()
    return attribute_record(render(load("answers/examples/lab-small.yaml"), catalog),
                            catalog, KEY)


def test_a_secret_is_kept_as_a_keyed_digest_and_said_to_change(
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = record(monkeypatch, "first-secret")
    after = record(monkeypatch, "second-secret")
    assert "first-secret" not in json.dumps(before)
    assert attribute_changes(before, after) == ["keystone: admin_password changed (secret)"]
    assert attribute_changes(before, record(monkeypatch, "first-secret")) == []


def test_values_are_shown_old_and_new(monkeypatch: pytest.MonkeyPatch) -> None:
    before = record(monkeypatch, "s")
    after = json.loads(json.dumps(before))
    after["swift"]["replicas"] = 3
    del after["glance"]
    assert attribute_changes(before, after) == ["glance: no longer selected",
                                                "swift: replicas 2 → 3"]
