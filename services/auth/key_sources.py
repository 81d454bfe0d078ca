"""Where verification keys come from: a configured PEM, or the pinned instance's JWKS.

Every source is fixed at startup from configuration. Nothing here reads a URL or a key from a
token (`iss`, `jku`, `x5u`, `jwk` are never followed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from libs.runtime.jwks import Fetcher, KeySetCache, KidUnknown


class KeySource(Protocol):
    name: str

    async def get_key(self, kid: str) -> Any:
        """The public key for `kid`; raises KidUnknown or JwksUnavailable."""

    @property
    def loaded(self) -> bool: ...


class StaticKeySource:
    """One PEM public key (networkless). `kid=None` accepts any kid: Clerk's PEM carries none."""

    def __init__(self, name: str, pem: str | bytes, kid: str | None = None) -> None:
        self.name = name
        self.kid = kid
        self.key = load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)

    @property
    def loaded(self) -> bool:
        return True

    async def get_key(self, kid: str) -> Any:
        if self.kid is not None and kid != self.kid:
            raise KidUnknown(f"key id {kid[:64]!r} is not the {self.name} key")
        return self.key


class JwksKeySource:
    """A pinned JWKS URL behind the shared KeySetCache."""

    def __init__(self, name: str, cache: KeySetCache) -> None:
        self.name = name
        self.cache = cache

    @property
    def loaded(self) -> bool:
        return self.cache.loaded

    async def get_key(self, kid: str) -> Any:
        return (await self.cache.get_key(kid)).key


def http_jwks_fetcher(client: httpx.AsyncClient, url: str, headers: Mapping[str, str] | None = None) -> Fetcher:
    """Fetch a JWKS document from one fixed URL (redirects are not followed)."""

    async def fetch() -> Mapping[str, Any]:
        response = await client.get(url, headers=dict(headers or {}), follow_redirects=False)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("JWKS response is not a JSON object")
        return document

    return fetch


def frontend_api_jwks_url(frontend_api_url: str) -> str:
    return frontend_api_url.rstrip("/") + "/.well-known/jwks.json"


def backend_api_jwks_url(backend_api_url: str) -> str:
    return backend_api_url.rstrip("/") + "/v1/jwks"
