"""Plans, limits, usage, cost, trends and threshold alerts, in the shapes the frontend reads.

Usage comes from the LLM service's per-user records; plans and prices from libs/config/plans.toml.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libs.config import config_file
from libs.runtime.settings import ConfigError

DEFAULT_PLANS_FILE = config_file("plans.toml")
LIMIT_KEYS = (
    "ai_text_generation_calls",
    "gemini_calls",
    "openai_calls",
    "anthropic_calls",
    "mistral_calls",
    "tavily_calls",
    "serper_calls",
    "metaphor_calls",
    "exa_calls",
    "firecrawl_calls",
    "stability_calls",
    "video_calls",
    "image_edit_calls",
    "audio_calls",
    "wavespeed_calls",
    "gemini_tokens",
    "openai_tokens",
    "anthropic_tokens",
    "mistral_tokens",
    "monthly_cost",
)
TIERS = ("free", "basic", "pro", "enterprise")
THRESHOLDS = (80, 100)


@dataclass(frozen=True)
class PlanSpec:
    key: str
    name: str
    tier: str
    features: list[str]
    limits: dict[str, float]


@dataclass(frozen=True)
class Plans:
    default_plan: str
    plans: dict[str, PlanSpec]
    assignments: dict[str, str]
    pricing: dict[str, tuple[float, float]]

    def for_user(self, user_id: str) -> PlanSpec:
        return self.plans[self.assignments.get(user_id, self.default_plan)]

    def cost(self, provider: str, prompt_tokens: int, completion_tokens: int) -> float:
        rate_in, rate_out = self.pricing.get(provider, (0.0, 0.0))
        return (prompt_tokens * rate_in + completion_tokens * rate_out) / 1_000_000


def load_plans(path: Path | None = None) -> Plans:
    path = path or DEFAULT_PLANS_FILE
    where = f"INKWELL_PLANS_FILE ({path})"
    try:
        raw = tomllib.loads(path.read_text())
        plans = {}
        for key, spec in raw["plans"].items():
            if spec["tier"] not in TIERS:
                raise ValueError(f"plans.{key}.tier must be one of {TIERS}")
            limits = {name: float(spec.get("limits", {}).get(name, 0)) for name in LIMIT_KEYS}
            unknown = set(spec.get("limits", {})) - set(LIMIT_KEYS)
            if unknown:
                raise ValueError(f"plans.{key}.limits has unknown keys {sorted(unknown)}")
            plans[key] = PlanSpec(key, str(spec["name"]), spec["tier"], list(spec.get("features", [])), limits)
        default = raw["default_plan"]
        assignments = {str(u): str(p) for u, p in raw.get("assignments", {}).items()}
        for plan in (default, *assignments.values()):
            if plan not in plans:
                raise ValueError(f"plan {plan!r} is not defined under [plans]")
        pricing = {
            name: (float(p.get("input", 0)), float(p.get("output", 0))) for name, p in raw.get("pricing", {}).items()
        }
    except FileNotFoundError:
        raise ConfigError(
            [f"{where}: file not found. Fix: point INKWELL_PLANS_FILE at libs/config/plans.toml"]
        ) from None
    except (tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as exc:
        raise ConfigError([f"{where}: {exc}. Fix: correct the file"]) from None
    return Plans(default, plans, assignments, pricing)


def period_bounds(period: str) -> tuple[float, float]:
    year, month = (int(x) for x in period.split("-"))
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=dt.UTC)
    return start.timestamp(), end.timestamp()


def current_period(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m")


def last_periods(count: int, now: dt.datetime | None = None) -> list[str]:
    now = now or dt.datetime.now(dt.UTC)
    year, month = now.year, now.month
    periods = []
    for _ in range(count):
        periods.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(periods))


def limits_payload(plan: PlanSpec) -> dict[str, Any]:
    return {"plan_name": plan.name, "tier": plan.tier, "limits": dict(plan.limits), "features": plan.features}


def _usage_status(percentages: dict[str, float]) -> str:
    worst = max(percentages.values(), default=0.0)
    return "limit_reached" if worst >= 100 else "warning" if worst >= 80 else "active"


def usage_stats(rows: list[dict[str, Any]], plans: Plans, plan: PlanSpec, period: str) -> dict[str, Any]:
    """UsageStats for the rows given (already filtered to the period)."""
    breakdown: dict[str, dict[str, float]] = defaultdict(lambda: {"calls": 0, "tokens": 0, "cost": 0.0})
    failed = 0
    for row in rows:
        if row["outcome"] != "ok":
            failed += row["calls"]
            continue
        entry = breakdown[row["provider"]]
        entry["calls"] += row["calls"]
        entry["tokens"] += row["prompt_tokens"] + row["completion_tokens"]
        entry["cost"] += plans.cost(row["provider"], row["prompt_tokens"], row["completion_tokens"])
    calls = int(sum(e["calls"] for e in breakdown.values()))
    tokens = int(sum(e["tokens"] for e in breakdown.values()))
    cost = round(sum(e["cost"] for e in breakdown.values()), 6)
    percentages = _percentages(plan, calls, tokens, cost)
    return {
        "billing_period": period,
        "usage_status": _usage_status(percentages),
        "total_calls": calls,
        "total_tokens": tokens,
        "total_cost": cost,
        "avg_response_time": 0.0,
        "error_rate": round(100 * failed / (calls + failed), 2) if calls + failed else 0.0,
        "limits": limits_payload(plan),
        "provider_breakdown": {
            p: {"calls": int(e["calls"]), "tokens": int(e["tokens"]), "cost": round(e["cost"], 6)}
            for p, e in breakdown.items()
        },
        "usage_percentages": percentages,
        "alerts": [],
        "last_updated": dt.datetime.now(dt.UTC).isoformat(),
    }


def _percentages(plan: PlanSpec, calls: int, tokens: int, cost: float) -> dict[str, float]:
    out = {}
    for key, used in (("ai_text_generation_calls", calls), ("mistral_tokens", tokens), ("monthly_cost", cost)):
        limit = plan.limits.get(key, 0)
        if limit > 0:
            out["cost" if key == "monthly_cost" else key] = round(100 * used / limit, 2)
    return out


def alerts(stats: dict[str, Any], period: str, user_id: str, read: set[int]) -> list[dict[str, Any]]:
    """An alert per limit crossing 80 % and 100 % this period; ids are stable numbers."""
    labels = {"ai_text_generation_calls": "AI calls", "mistral_tokens": "AI tokens", "cost": "monthly cost"}
    found = []
    for key, percent in stats["usage_percentages"].items():
        for threshold in THRESHOLDS:
            if percent < threshold:
                continue
            digest = hashlib.sha256(f"{user_id}|{period}|{key}|{threshold}".encode()).hexdigest()
            alert_id = int(digest[:12], 16)
            found.append(
                {
                    "id": alert_id,
                    "type": "usage_threshold",
                    "threshold_percentage": threshold,
                    "title": f"{threshold}% of your {labels.get(key, key)} used",
                    "message": f"You have used {percent:.0f}% of your plan's {labels.get(key, key)} for {period}.",
                    "severity": "error" if threshold >= 100 else "warning",
                    "is_sent": True,
                    "is_read": alert_id in read,
                    "billing_period": period,
                    "created_at": stats["last_updated"],
                }
            )
    return sorted(found, key=lambda a: -a["threshold_percentage"])


def dashboard(
    rows: list[dict[str, Any]],
    plans: Plans,
    user_id: str,
    period: str | None,
    read: set[int],
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    plan = plans.for_user(user_id)
    this_period = current_period(now)
    selected = period or this_period
    by_period: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_period[row["day"][:7]].append(row)
    total = usage_stats(
        rows if period is None else by_period[selected], plans, plan, "all" if period is None else selected
    )
    current = usage_stats(by_period[selected], plans, plan, selected)
    periods = last_periods(6, now)
    trend_stats = {p: usage_stats(by_period[p], plans, plan, p) for p in periods}
    providers = sorted({prov for s in trend_stats.values() for prov in s["provider_breakdown"]})
    current_alerts = alerts(current, selected, user_id, read)
    days = calendar.monthrange(now.year, now.month)[1]
    month_stats = trend_stats[this_period] if this_period in trend_stats else current
    projected = round(month_stats["total_cost"] / max(1, now.day) * days, 6)
    cost_limit = plan.limits.get("monthly_cost", 0)
    return {
        "total_usage": total,
        "current_period_usage": current,
        "current_usage": current,
        "trends": {
            "periods": periods,
            "total_calls": [trend_stats[p]["total_calls"] for p in periods],
            "total_cost": [trend_stats[p]["total_cost"] for p in periods],
            "total_tokens": [trend_stats[p]["total_tokens"] for p in periods],
            "provider_trends": {
                prov: {
                    k: [trend_stats[p]["provider_breakdown"].get(prov, {}).get(k, 0) for p in periods]
                    for k in ("calls", "cost", "tokens")
                }
                for prov in providers
            },
        },
        "limits": limits_payload(plan),
        "alerts": [a for a in current_alerts if not a["is_read"]][:5],
        "projections": {
            "projected_monthly_cost": projected,
            "cost_limit": cost_limit,
            "projected_usage_percentage": round(100 * projected / cost_limit, 2) if cost_limit else 0.0,
        },
        "summary": {
            "total_api_calls_this_month": month_stats["total_calls"],
            "total_cost_this_month": month_stats["total_cost"],
            "usage_status": current["usage_status"],
            "unread_alerts": sum(1 for a in current_alerts if not a["is_read"]),
        },
    }
