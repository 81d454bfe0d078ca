"""Subscription plans and usage against their limits, shared by the gateway (which shows them) and
the LLM service (which enforces them before a model is called), so both read the same numbers."""

from libs.plans.config import LIMIT_KEYS, TIERS, Plans, PlanSpec, load_plans
from libs.plans.usage import PROVIDER_KEYS, Exceeded, limit_keys_for, over_limits, percentages, usage_by_key

__all__ = [
    "LIMIT_KEYS",
    "PROVIDER_KEYS",
    "TIERS",
    "Exceeded",
    "PlanSpec",
    "Plans",
    "limit_keys_for",
    "load_plans",
    "over_limits",
    "percentages",
    "usage_by_key",
]
