"""What the index stores for a task: searchable text plus filterable metadata."""

from __future__ import annotations

from typing import Any, Protocol


class TaskLike(Protocol):
    id: str
    pillar_id: str
    title: str
    description: str
    status: str


def task_document(date: str, task: TaskLike) -> dict[str, Any]:
    return {
        "id": f"task:{date}:{task.id}",
        "text": f"[{task.pillar_id}] {task.title}\n{task.description}\nstatus={task.status}",
        "metadata": {
            "type": "daily_task",
            "date": date,
            "pillar_id": task.pillar_id,
            "status": task.status,
            "task_id": task.id,
        },
    }
