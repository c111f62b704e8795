"""Chef request signing (``wizard.chef.signing``) against Chef's own published vectors.

The vectors in ``chef_signing_vectors.json`` are Apache-2.0 test data copied (values only) from
``spec/mixlib/authentication/mixlib_authentication_spec.rb`` of
github.com/chef/mixlib-authentication (the commit is named in the file's ``source``): the spec's
fixed RSA test key, its request inputs and, for signing versions 1.0 and 1.3, the expected
canonical request and signed headers.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from wizard.chef.signing import (
    ChefKeyError,
    SignVersion,
    canonical_request,
    load_key,
    sign_headers,
)

VECTORS: dict[str, Any] = json.loads(
    Path(__file__).with_name("chef_signing_vectors.json").read_text()
)
INPUTS: dict[str, str] = VECTORS["inputs"]
VERSIONS: list[SignVersion] = ["1.0", "1.3"]


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return load_key("\n".join(VECTORS["private_key_pem_lines"]) + "\n", "spec-user")


def _api(version: SignVersion) -> str:
    return VECTORS["versions"][version]["server_api_version"] or "0"


def _canonical(version: SignVersion) -> str:
    return "\n".join(VECTORS["versions"][version]["canonical_request_lines"])


def _signature(version: SignVersion) -> bytes:
    return base64.b64decode("".join(VECTORS["versions"][version]["authorization_lines"]))


def _sign(key: rsa.RSAPrivateKey, version: SignVersion, path: str | None = None) -> dict[str, str]:
    return sign_headers(key, version, INPUTS["method"].lower(), path or INPUTS["path"],
                        INPUTS["body"].encode(), INPUTS["user_id"], stamp=INPUTS["timestamp"],
                        api_version=_api(version))


def _sign_fields(value: str) -> dict[str, str]:
    """``X-Ops-Sign`` as servers read it: ``;``-separated ``name=value`` pairs."""
    return dict(part.strip().split("=", 1) for part in value.split(";") if part.strip())


@pytest.mark.parametrize("version", VERSIONS)
def test_canonical_request_matches_chef(version: SignVersion) -> None:
    text = canonical_request(version, INPUTS["method"].lower(), INPUTS["path"],
                             INPUTS["body"].encode(), INPUTS["timestamp"], INPUTS["user_id"],
                             _api(version))
    assert text == _canonical(version)


@pytest.mark.parametrize("version", VERSIONS)
def test_sign_headers_match_chef(key: rsa.RSAPrivateKey, version: SignVersion) -> None:
    expected = VECTORS["versions"][version]
    got = {name.lower(): value for name, value in _sign(key, version).items()}  # case-insensitive
    for name in ("X-Ops-Content-Hash", "X-Ops-Userid", "X-Ops-Timestamp"):
        assert got[name.lower()] == expected["headers"][name], name
    assert _sign_fields(got["x-ops-sign"]) == _sign_fields(expected["headers"]["X-Ops-Sign"])
    lines = sorted((n for n in got if n.startswith("x-ops-authorization-")),
                   key=lambda n: int(n.rsplit("-", 1)[1]))
    assert [got[n] for n in lines] == expected["authorization_lines"]
    assert lines == [f"x-ops-authorization-{i}" for i in range(1, len(lines) + 1)]


@pytest.mark.parametrize("version", ["1.0", "1.3"])
def test_x_ops_sign_exact_string(key: rsa.RSAPrivateKey, version: SignVersion) -> None:
    expected = VECTORS["versions"][version]["headers"]["X-Ops-Sign"]
    assert _sign(key, version)["X-Ops-Sign"] == expected


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", ["//organizations///clownco/", "/organizations/clownco//"])
def test_path_is_canonicalised_like_mixlib(key: rsa.RSAPrivateKey, version: SignVersion,
                                           path: str) -> None:
    # mixlib squeezes repeated slashes and drops a trailing one before signing
    assert _sign(key, version, path) == _sign(key, version)
    assert _sign(key, version, path)["X-Ops-Authorization-1"] == (
        VECTORS["versions"][version]["authorization_lines"][0])


def test_v10_signature_decrypts_to_padded_canonical_request(key: rsa.RSAPrivateKey) -> None:
    public = key.public_key().public_numbers()
    size = (key.key_size + 7) // 8
    text = _canonical("1.0").encode()
    padded = b"\x00\x01" + b"\xff" * (size - 3 - len(text)) + b"\x00" + text
    ours = base64.b64decode("".join(
        value for name, value in _sign(key, "1.0").items() if name.startswith("X-Ops-Auth")))
    for signature in (_signature("1.0"), ours):
        plain = pow(int.from_bytes(signature, "big"), public.e, public.n).to_bytes(size, "big")
        assert plain == padded


def test_v13_signature_verifies_and_detects_tampering(key: rsa.RSAPrivateKey) -> None:
    public = key.public_key()
    text = bytearray(_canonical("1.3").encode())
    public.verify(_signature("1.3"), bytes(text), padding.PKCS1v15(), hashes.SHA256())
    text[text.index(b"clownco")] ^= 0x01  # one byte of the path
    with pytest.raises(InvalidSignature):
        public.verify(_signature("1.3"), bytes(text), padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize("garbage", [
    "hunter2-not-a-key-at-all",
    b"\x00\x01binary-junk\xff",
    "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWJ1dC1icm9rZW4=\n-----END RSA PRIVATE KEY-----\n",
])
def test_load_key_rejects_garbage_without_echoing_it(garbage: str | bytes) -> None:
    with pytest.raises(ChefKeyError) as caught:
        load_key(garbage, "node-admin")
    message = str(caught.value)
    assert "node-admin" in message
    text = garbage.decode(errors="replace") if isinstance(garbage, bytes) else garbage
    for piece in re.findall(r"[\w+/=-]{6,}", text):  # no recognisable fragment of the input
        assert piece not in message


@pytest.mark.parametrize("version", VERSIONS)
def test_authorization_lines_are_short_and_join_to_the_signature(
        key: rsa.RSAPrivateKey, version: SignVersion) -> None:
    headers = _sign(key, version, "/nodes/" + "n" * 80)
    count = sum(name.startswith("X-Ops-Authorization-") for name in headers)
    lines = [headers[f"X-Ops-Authorization-{i}"] for i in range(1, count + 1)]
    assert all(0 < len(line) <= 60 for line in lines)
    assert all(len(line) == 60 for line in lines[:-1])
    joined = base64.b64decode("".join(lines), validate=True)
    assert len(joined) == (key.key_size + 7) // 8
