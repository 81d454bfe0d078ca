"""Facts derived from Clerk's key strings, without any network call.

A publishable key is `pk_test_` or `pk_live_` plus unpadded base64 of `<Frontend API host>$`; the
issuer of that instance's session tokens is `https://<host>`. A secret key tells only its
environment (`sk_test_` / `sk_live_`), never its instance.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import urlsplit

DEVELOPMENT_HOST_SUFFIXES = (".clerk.accounts.dev", ".lcl.dev", ".lclstage.dev", ".accountsstage.dev")


@dataclass(frozen=True)
class PublishableKey:
    environment: str  # "test" or "live"
    frontend_api_host: str

    @property
    def issuer(self) -> str:
        return f"https://{self.frontend_api_host}"

    @property
    def frontend_api_url(self) -> str:
        return f"https://{self.frontend_api_host}"


def parse_publishable_key(value: str) -> PublishableKey:
    """Decode a publishable key; ValueError says what is wrong with it."""
    for environment in ("test", "live"):
        prefix = f"pk_{environment}_"
        if value.startswith(prefix):
            encoded = value[len(prefix) :]
            break
    else:
        raise ValueError("a publishable key starts with pk_test_ or pk_live_")
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("the part after pk_test_/pk_live_ is not base64") from None
    if not decoded.endswith("$") or decoded.count("$") != 1:
        raise ValueError("the decoded publishable key must end with exactly one '$'")
    host = decoded[:-1]
    if "." not in host or "/" in host or not host.strip():
        raise ValueError(f"the decoded Frontend API host {host!r} is not a host name")
    return PublishableKey(environment=environment, frontend_api_host=host)


def encode_publishable_key(host: str, environment: str = "test") -> str:
    """The publishable key Clerk would issue for a Frontend API host (tests and dev tools)."""
    return f"pk_{environment}_" + base64.b64encode(f"{host}$".encode()).decode().rstrip("=")


def secret_key_environment(value: str) -> str:
    for environment in ("test", "live"):
        if value.startswith(f"sk_{environment}_") and len(value) > len("sk_test_"):
            return environment
    raise ValueError("a secret key starts with sk_test_ or sk_live_")


def looks_like_development_issuer(issuer: str) -> bool:
    """Clerk development instances live on *.clerk.accounts.dev (and staging twins)."""
    host = urlsplit(issuer).hostname or ""
    return host.endswith(DEVELOPMENT_HOST_SUFFIXES) or host.endswith(".localhost")
