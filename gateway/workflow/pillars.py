"""The day's pillars, the task vocabulary the frontend understands, and the deterministic
fallback tasks used (and labelled as such) when the LLM cannot plan."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PILLARS = ("plan", "generate", "publish", "analyze", "engage", "remarket")
PRIORITIES = ("high", "medium", "low")
ACTION_TYPES = (
    "navigate",
    "modal",
    "external",
    "create_content",
    "seo_analyze",
    "social_draft",
    "linkedin_draft",
    "calendar_insert",
    "create_seo_task",
)
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
        "create_content",
    ),
    "publish": FallbackTask(
        "Schedule what is ready",
        "Move finished drafts to the calendar and schedule their publication.",
        "medium",
        15,
        "calendar_insert",
    ),
    "analyze": FallbackTask(
        "Check yesterday's performance",
        "Look at yesterday's traffic and engagement and note one thing to repeat.",
        "medium",
        15,
        "seo_analyze",
    ),
    "engage": FallbackTask(
        "Reply to your audience", "Answer new comments and messages on your main channel.", "medium", 20, "social_draft"
    ),
    "remarket": FallbackTask(
        "Repurpose a top performer",
        "Turn one of last month's best posts into a short social update.",
        "low",
        20,
        "social_draft",
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
    """JSON Schema of a day's plan: 1-3 tasks for each pillar asked for."""
    task = {
        "type": "object",
        "properties": {
            "pillarId": {"type": "string", "enum": list(pillars)},
            "title": {"type": "string", "minLength": 3, "maxLength": 120},
            "description": {"type": "string", "minLength": 1, "maxLength": 600},
            "priority": {"type": "string", "enum": list(PRIORITIES)},
            "estimatedTime": {"type": "integer", "minimum": 5, "maximum": 240},
            "actionType": {"type": "string", "enum": list(ACTION_TYPES)},
        },
        "required": ["pillarId", "title", "description", "priority", "estimatedTime", "actionType"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "tasks": {
                "type": "array",
                "minItems": 1,
                "maxItems": len(pillars) * per_pillar_max,
                "items": task,
            }
        },
        "required": ["tasks"],
        "additionalProperties": False,
    }
