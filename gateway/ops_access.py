"""Who may use operator routes (/ops): an explicit allowlist from configuration, nothing implied.

A principal is admitted when its issuer-scoped user id is in INKWELL_OPS_USERS (`user_2abc` for a
Clerk user, `dev:alice` for a development user), or when its active organization and role are
exactly one of the INKWELL_OPS_ORG_ROLES pairs (`org_123:org:admin`). Roles are compared exactly,
never by substring: `org:not_admin` and `org:billing_admin_viewer` are not `org:admin`, and being
the admin of some other organization (anyone can create one in Clerk) admits nobody.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ORG_ROLE_PREFIX = "org:"


def normalize_role(role: str) -> str:
    """Clerk v2 tokens carry `o.rol` without the `org:` prefix (`admin`), v1 with it (`org:admin`);
    Clerk's SDKs compare the prefixed form, and so do we."""
    role = role.strip()
    while role.startswith(ORG_ROLE_PREFIX):
        role = role[len(ORG_ROLE_PREFIX) :]
    return ORG_ROLE_PREFIX + role if role else ""


def parse_users(value: str) -> frozenset[str]:
    """Comma-separated issuer-scoped user ids; ValueError names a bad one."""
    users = set()
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if any(c.isspace() for c in item) or item.count(":") > 1 or item.endswith(":") or item.startswith(":"):
            raise ValueError(f"{item!r} is not a user id like user_2abc (Clerk) or dev:alice (development)")
        users.add(item)
    return frozenset(users)


def parse_org_roles(value: str) -> frozenset[tuple[str, str]]:
    """Comma-separated `org_id:role` pairs (`org_123:org:admin`, or `org_123:admin`); ValueError names a bad one."""
    pairs = set()
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        org_id, _, role = item.partition(":")
        role = normalize_role(role)
        if not org_id or not role or any(c.isspace() for c in item):
            raise ValueError(f"{item!r} is not an org_id:role pair like org_123:org:admin")
        pairs.add((org_id, role))
    return frozenset(pairs)


@dataclass(frozen=True)
class OpsAccess:
    users: frozenset[str] = frozenset()
    org_roles: frozenset[tuple[str, str]] = frozenset()

    @property
    def configured(self) -> bool:
        return bool(self.users or self.org_roles)

    def admits(self, principal: Mapping[str, Any]) -> bool:
        """True only for a listed user id, or the exact (active org, role) of a listed pair."""
        if str(principal.get("user_id") or "") in self.users:
            return True
        org_id = str(principal.get("org_id") or "")
        role = normalize_role(str(principal.get("org_role") or ""))
        return bool(org_id and role) and (org_id, role) in self.org_roles
