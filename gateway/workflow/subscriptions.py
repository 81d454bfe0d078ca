"""Plans, limits, usage, cost, trends and projections, in the shapes the frontend reads.

Usage comes from the LLM service's per-user records; plans and prices from libs/config/plans.toml
(libs.plans, the same code the LLM service enforces limits with). Every number is computed from
those records; a value that cannot be computed is left out (see README "Subscriptions").
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from typing import Any

from libs.plans import Plans, PlanSpec, over_limits, percentages, usage_by_key

PLAN_WIDE_KEYS = ("ai_text_generation_calls", "monthly_cost")


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


def _usage_status(percent: dict[str, float]) -> str:
    worst = max(percent.values(), default=0.0)
    return "limit_reached" if worst >= 100 else "warning" if worst >= 80 else "active"


def usage_stats(
    rows: list[dict[str, Any]],
    plans: Plans,
    plan: PlanSpec,
    period: str,
    alerts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """UsageStats for the rows given (already filtered to the period).

    `avg_response_time` (seconds, successful calls) and `error_rate` (percent of all calls) are
    absent when there were no calls: there is nothing to average, and the frontend reads a
    missing value as 0.
    """
    breakdown: dict[str, dict[str, float]] = defaultdict(lambda: {"calls": 0, "tokens": 0, "cost": 0.0})
    failed = 0
    latency_ms = 0.0
    for row in rows:
        if row["outcome"] != "ok":
            failed += row["calls"]
            continue
        entry = breakdown[row["provider"]]
        entry["calls"] += row["calls"]
        entry["tokens"] += row["prompt_tokens"] + row["completion_tokens"]
        entry["cost"] += plans.cost(row["provider"], row["prompt_tokens"], row["completion_tokens"])
        latency_ms += row.get("total_latency_ms", 0.0)
    used = usage_by_key(rows, plans)
    calls = int(sum(e["calls"] for e in breakdown.values()))
    percent = percentages(plan, used)
    stats: dict[str, Any] = {
        "billing_period": period,
        "usage_status": _usage_status(percent),
        "total_calls": calls,
        "total_tokens": int(sum(e["tokens"] for e in breakdown.values())),
        "total_cost": used["monthly_cost"],
        "limits": limits_payload(plan),
        "provider_breakdown": {
            p: {"calls": int(e["calls"]), "tokens": int(e["tokens"]), "cost": round(e["cost"], 6)}
            for p, e in breakdown.items()
        },
        "usage": {key: (round(value, 6) if key == "monthly_cost" else int(value)) for key, value in used.items()},
        "usage_percentages": percent,
        "alerts": alerts or [],
        "last_updated": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
    }
    if calls:
        stats["avg_response_time"] = round(latency_ms / calls / 1000, 3)
    if calls + failed:
        stats["error_rate"] = round(100 * failed / (calls + failed), 2)
    return stats


def plan_wide_limit_reached(plan: PlanSpec, rows: list[dict[str, Any]], plans: Plans) -> str | None:
    """Why no model call can be made this period (a plan-wide limit is reached), or None."""
    reached = over_limits(plan, usage_by_key(rows, plans), PLAN_WIDE_KEYS)
    if not reached:
        return None
    return f"Monthly {reached[0].key} limit reached: {reached[0].used:g} of {reached[0].limit:g}"


def dashboard(
    rows: list[dict[str, Any]],
    plans: Plans,
    user_id: str,
    period: str | None,
    alerts: list[dict[str, Any]],
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The seven sections (plus the compat `current_usage`) of docs/frontend-contract.md §4.2."""
    now = now or dt.datetime.now(dt.UTC)
    plan = plans.for_user(user_id)
    this_period = current_period(now)
    selected = period or this_period
    by_period: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_period[row["day"][:7]].append(row)
    total = usage_stats(
        rows if period is None else by_period[selected],
        plans,
        plan,
        "all" if period is None else selected,
        alerts if period is None else [a for a in alerts if a["billing_period"] == selected],
    )
    current = usage_stats(
        by_period[selected], plans, plan, selected, [a for a in alerts if a["billing_period"] == selected]
    )
    periods = last_periods(6, now)
    trend_stats = {p: usage_stats(by_period[p], plans, plan, p) for p in periods}
    providers = sorted({prov for s in trend_stats.values() for prov in s["provider_breakdown"]})
    days = calendar.monthrange(now.year, now.month)[1]
    month_cost = trend_stats[this_period]["total_cost"]
    projected = round(month_cost / max(1, now.day) * days, 6)
    cost_limit = plan.limits.get("monthly_cost", 0)
    unread = [a for a in alerts if not a["is_read"]]
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
        "alerts": unread[:5],
        "projections": {
            "projected_monthly_cost": projected,
            "cost_limit": cost_limit,
            # 0 when the plan meters no cost (cost_limit 0): the frontend's schema needs a number.
            "projected_usage_percentage": round(100 * projected / cost_limit, 2) if cost_limit else 0.0,
        },
        "summary": {
            "total_api_calls_this_month": trend_stats[this_period]["total_calls"],
            "total_cost_this_month": month_cost,
            "usage_status": trend_stats[this_period]["usage_status"],
            "unread_alerts": len(unread),
        },
    }
