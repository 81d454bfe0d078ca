"""Usage alerts, persisted per user: raised once when usage crosses 80 % or 100 % of a limit in a
billing period, and kept (across periods too) until the user marks them read.

Alerts are raised when the gateway computes the user's usage (every subscription route does), so
an alert's `created_at` is when the crossing was first seen, at most one poll after it happened.
`is_sent` is false: there is no delivery channel (e-mail, push); alerts are only shown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.workflow.db import usage_alerts

THRESHOLDS = (80, 100)
LABELS = {"ai_text_generation_calls": "AI text generation calls", "monthly_cost": "monthly cost"}


@dataclass(frozen=True)
class Crossing:
    key: str
    threshold: int
    used: float
    limit: float


def crossings(used: dict[str, float], limits: dict[str, float]) -> list[Crossing]:
    """Every threshold each metered limit (limit > 0) has reached."""
    found = []
    for key, limit in limits.items():
        if limit <= 0:
            continue
        percent = 100 * used.get(key, 0.0) / limit
        found += [Crossing(key, t, used.get(key, 0.0), limit) for t in THRESHOLDS if percent >= t]
    return found


def _label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite returns naive datetimes; they were stored as UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


def alert_json(row: Any) -> dict[str, Any]:
    """The frontend's UsageAlert shape (docs/frontend-contract.md §4.3)."""
    label = _label(row.limit_key)
    used = f"{row.used:.2f} USD" if row.limit_key == "monthly_cost" else f"{row.used:g}"
    limit = f"{row.limit_value:.2f} USD" if row.limit_key == "monthly_cost" else f"{row.limit_value:g}"
    return {
        "id": int(row.id),
        "type": "usage_threshold",
        "threshold_percentage": int(row.threshold),
        "limit_key": row.limit_key,
        "title": f"{row.threshold}% of your {label} used",
        "message": f"You have used {used} of {limit} {label} in {row.billing_period}.",
        "severity": "error" if row.threshold >= 100 else "warning",
        "is_sent": False,
        "is_read": row.read_at is not None,
        "read_at": _iso(row.read_at),
        "billing_period": row.billing_period,
        "created_at": _iso(row.created_at),
    }


class AlertStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def raise_alerts(self, user_id: str, period: str, found: list[Crossing]) -> None:
        """Persist the crossings not yet recorded for this user and period (idempotent, race-safe)."""
        if not found:
            return
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                select(usage_alerts.c.limit_key, usage_alerts.c.threshold).where(
                    usage_alerts.c.user_id == user_id, usage_alerts.c.billing_period == period
                )
            )
            known = {(r.limit_key, r.threshold) for r in rows}
        now = dt.datetime.now(dt.UTC)
        for crossing in found:
            if (crossing.key, crossing.threshold) in known:
                continue
            try:
                async with self.engine.begin() as connection:
                    await connection.execute(
                        usage_alerts.insert().values(
                            user_id=user_id,
                            billing_period=period,
                            limit_key=crossing.key,
                            threshold=crossing.threshold,
                            used=crossing.used,
                            limit_value=crossing.limit,
                            created_at=now,
                        )
                    )
            except IntegrityError:
                pass  # a concurrent request raised it first

    async def list(self, user_id: str, period: str | None = None) -> list[dict[str, Any]]:
        """The user's alerts, newest first; `period` narrows to one billing period."""
        query = select(usage_alerts).where(usage_alerts.c.user_id == user_id)
        if period is not None:
            query = query.where(usage_alerts.c.billing_period == period)
        query = query.order_by(usage_alerts.c.created_at.desc(), usage_alerts.c.id.desc())
        async with self.engine.connect() as connection:
            return [alert_json(row) for row in await connection.execute(query)]

    async def mark_read(self, user_id: str, alert_id: int) -> dict[str, Any] | None:
        """Mark one of the user's alerts read (idempotent); None when it is not theirs or does not exist."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(usage_alerts)
                .where(
                    usage_alerts.c.id == alert_id,
                    usage_alerts.c.user_id == user_id,
                    usage_alerts.c.read_at.is_(None),
                )
                .values(read_at=dt.datetime.now(dt.UTC))
            )
            row = (
                await connection.execute(
                    select(usage_alerts).where(usage_alerts.c.id == alert_id, usage_alerts.c.user_id == user_id)
                )
            ).one_or_none()
        return None if row is None else alert_json(row)
