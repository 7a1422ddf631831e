"""The deployment's VAPID key pair for Web Push, created on first use and kept in `site_configs`."""

from __future__ import annotations

import base64
from collections.abc import Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from coderapi.database import Store

PUBLIC_KEY = "webpush_vapid_public_key"
PRIVATE_KEY = "webpush_vapid_private_key"


def public_key(store: Store) -> str:
    """The VAPID public key: the uncompressed P-256 point, base64url without padding (87 characters)."""
    existing = store.get_site_config(PUBLIC_KEY)
    if existing:
        return existing
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    private = key.private_numbers().private_value.to_bytes(32, "big")
    stored = store.ensure_site_configs({PUBLIC_KEY: _b64(point), PRIVATE_KEY: _b64(private)})
    return stored[PUBLIC_KEY]


def announced_key(store: Store, experiments: Iterable[str]) -> str:
    """The public key /buildinfo announces: the deployment's with the `web-push` experiment, else ""."""
    return public_key(store) if "web-push" in experiments else ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
