"""The day's pillars, the task vocabulary the frontend understands, and the deterministic
fallback tasks used (and labelled as such) when the LLM cannot plan."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PILLARS = ("plan", "generate", "publish", "analyze", "engage", "remarket")
PRIORITIES = ("high", "medium", "low")
# The frontend's ActionType: what clicking the task does. The destination is always `actionUrl`
# (an in-app route for "navigate"), never encoded in the type.
ACTION_TYPES = ("navigate", "modal", "external")


def frontend_action_type(value: str) -> str:
    """Plans stored before the vocabulary was fixed carry tool names (social_draft, ...): they navigate."""
    return value if value in ACTION_TYPES else "navigate"


TASK_STATUSES = ("pending", "in_progress", "completed", "skipped")
GENERATION_MODES = (
    "agent_committee",
    "llm_generation",
    "llm_pillar_backfill",
    "controlled_fallback",
    "calendar_driven",
)

ACTION_URLS = {
    "plan": "/content-planning",
    "generate": "/blog-writer",
    "publish": "/content-planning",
    "analyze": "/seo-dashboard",
    "engage": "/linkedin-writer",
    "remarket": "/facebook-writer",
}


@dataclass(frozen=True)
class FallbackTask:
    title: str
    description: str
    priority: str
    estimated_time: int
    action_type: str


FALLBACK_TASKS: dict[str, FallbackTask] = {
    "plan": FallbackTask(
        "Review this week's content calendar",
        "Check what is scheduled this week and fill one open slot with a topic.",
        "high",
        15,
        "navigate",
    ),
    "generate": FallbackTask(
        "Draft one piece from your backlog",
        "Pick the most promising idea in your backlog and write a first draft.",
        "high",
        45,
        "navigate",
    ),
    "publish": FallbackTask(
        "Schedule what is ready",
        "Move finished drafts to the calendar and schedule their publication.",
        "medium",
        15,
        "navigate",
    ),
    "analyze": FallbackTask(
        "Check yesterday's performance",
        "Look at yesterday's traffic and engagement and note one thing to repeat.",
        "medium",
        15,
        "navigate",
    ),
    "engage": FallbackTask(
        "Reply to your audience", "Answer new comments and messages on your main channel.", "medium", 20, "navigate"
    ),
    "remarket": FallbackTask(
        "Repurpose a top performer",
        "Turn one of last month's best posts into a short social update.",
        "low",
        20,
        "navigate",
    ),
}


def fallback_for(pillar: str) -> FallbackTask:
    return FALLBACK_TASKS.get(pillar) or FallbackTask(
        f"Review your {pillar} work",
        f"Spend a few minutes moving your {pillar} work forward.",
        "medium",
        15,
        "navigate",
    )


def plan_schema(pillars: tuple[str, ...], per_pillar_max: int = 3) -> dict[str, object]:
    """JSON Schema of a day's plan: an object keyed by pillar id, every pillar asked for required,
    each with 1 to `per_pillar_max` tasks. A schema-valid answer is therefore a complete day: the
    smallest valid answer already has a task for every pillar."""
    task = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3, "maxLength": 120},
            "description": {"type": "string", "minLength": 1, "maxLength": 600},
            "priority": {"type": "string", "enum": list(PRIORITIES)},
            "estimatedTime": {"type": "integer", "minimum": 5, "maximum": 240},
        },
        "required": ["title", "description", "priority", "estimatedTime"],
        "additionalProperties": False,
    }
    day = {
        "type": "object",
        "properties": {
            pillar: {"type": "array", "minItems": 1, "maxItems": per_pillar_max, "items": task} for pillar in pillars
        },
        "required": list(pillars),
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"pillars": day},
        "required": ["pillars"],
        "additionalProperties": False,
    }
