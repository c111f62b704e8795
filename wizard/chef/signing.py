"""Chef's request signing (Mixlib::Authentication), versions 1.3 and 1.0.

Version 1.3 signs, with RSA PKCS#1 v1.5 over SHA-256, the canonical request::

    Method:GET
    Path:/nodes
    X-Ops-Content-Hash:<base64 SHA-256 of the body>
    X-Ops-Sign:version=1.3
    X-Ops-Timestamp:2026-11-25T10:00:00Z
    X-Ops-UserId:crowbar
    X-Ops-Server-API-Version:0

Version 1.0 (older servers) hashes path and body with SHA-1 and does not sign a digest: it
encrypts the canonical request itself with the private key (PKCS#1 v1.5 type 1 padding, the
raw RSA private-key operation ``RSA_private_encrypt`` of OpenSSL). ``cryptography`` has no
call for that, so :func:`_private_encrypt` pads and exponentiates by hand with the key's
CRT numbers. The base64 signature goes out in 60-character ``X-Ops-Authorization-N`` headers.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from datetime import UTC, datetime
from typing import Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SignVersion = Literal["1.3", "1.0"]
SIGN_VERSIONS: tuple[SignVersion, ...] = ("1.3", "1.0")


class ChefKeyError(ValueError):
    """A private key that cannot be used (the message never holds the key)."""


def load_key(pem: str | bytes, owner: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM text; ``owner`` names it in errors."""
    key = _parse(pem.encode() if isinstance(pem, str) else pem)
    if key is None:
        raise ChefKeyError(f"the key of {owner} is not an unencrypted PEM private key")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ChefKeyError(f"the key of {owner} is not an RSA key")
    return key


@functools.lru_cache(maxsize=64)
def _parse(data: bytes) -> object | None:
    """Parsing checks an RSA key's consistency, ~30 ms: each key is parsed once."""
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        return None


def timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_path(path: str) -> str:
    """The path as signed: no query, repeated slashes squeezed, no trailing slash."""
    path = re.sub(r"/+", "/", path.split("?", 1)[0])
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def canonical_request(version: SignVersion, method: str, path: str, body: bytes, stamp: str,
                      user: str, api_version: str = "0") -> str:
    """The text a request's signature covers."""
    path = canonical_path(path)
    if version == "1.3":
        return "\n".join([
            f"Method:{method.upper()}", f"Path:{path}",
            f"X-Ops-Content-Hash:{_b64(hashlib.sha256(body).digest())}",
            "X-Ops-Sign:version=1.3", f"X-Ops-Timestamp:{stamp}", f"X-Ops-UserId:{user}",
            f"X-Ops-Server-API-Version:{api_version}",
        ])
    return "\n".join([
        f"Method:{method.upper()}", f"Hashed Path:{_b64(hashlib.sha1(path.encode()).digest())}",
        f"X-Ops-Content-Hash:{_b64(hashlib.sha1(body).digest())}",
        f"X-Ops-Timestamp:{stamp}", f"X-Ops-UserId:{user}",
    ])


def sign_headers(key: rsa.RSAPrivateKey, version: SignVersion, method: str, path: str,
                 body: bytes, user: str, stamp: str | None = None,
                 api_version: str = "0") -> dict[str, str]:
    """The authentication headers of one request."""
    stamp = stamp or timestamp()
    text = canonical_request(version, method, path, body, stamp, user, api_version).encode()
    if version == "1.3":
        signature = key.sign(text, padding.PKCS1v15(), hashes.SHA256())
        content_hash = _b64(hashlib.sha256(body).digest())
        sign = "algorithm=sha256;version=1.3;"
    else:
        signature = _private_encrypt(key, text)
        content_hash = _b64(hashlib.sha1(body).digest())
        sign = "algorithm=sha1;version=1.0;"
    encoded = _b64(signature)
    headers = {
        "X-Ops-Sign": sign, "X-Ops-UserId": user, "X-Ops-Timestamp": stamp,
        "X-Ops-Content-Hash": content_hash, "X-Ops-Server-API-Version": api_version,
    }
    for index in range(0, len(encoded), 60):
        headers[f"X-Ops-Authorization-{index // 60 + 1}"] = encoded[index:index + 60]
    return headers


def _private_encrypt(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    """OpenSSL's ``RSA_private_encrypt`` with PKCS#1 v1.5 padding: 00 01 FF.. 00 message."""
    size = (key.key_size + 7) // 8
    if len(message) > size - 11:
        raise ValueError("message too long for the key")
    block = b"\x00\x01" + b"\xff" * (size - 3 - len(message)) + b"\x00" + message
    numbers = key.private_numbers()
    value = int.from_bytes(block, "big")
    # CRT: two half-size exponentiations instead of one full one
    m1 = pow(value, numbers.dmp1, numbers.p)
    m2 = pow(value, numbers.dmq1, numbers.q)
    h = (numbers.iqmp * (m1 - m2)) % numbers.p
    return (m2 + h * numbers.q).to_bytes(size, "big")
