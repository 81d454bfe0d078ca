"""The workflow's one data layer: SQLAlchemy (async) over SQLite by default, PostgreSQL when
DATABASE_URL says so. Tables are created at startup."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = MetaData()

plans = Table(
    "daily_plans",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("date", String(10), nullable=False),
    Column("source", String(16), nullable=False),
    Column("generation_mode", String(32), nullable=False),
    Column("fallback_used", Boolean, nullable=False),
    Column("degraded_reason", String(255), nullable=True),
    Column("provenance", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_id", "date", name="one_plan_per_user_and_day"),
)

tasks = Table(
    "daily_tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("plan_id", String(64), ForeignKey("daily_plans.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("user_id", String(255), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("pillar_id", String(32), nullable=False),
    Column("title", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", String(8), nullable=False),
    Column("estimated_time", Integer, nullable=False),
    Column("dependencies", JSON, nullable=False),
    Column("action_url", String(512), nullable=False),
    Column("action_type", String(32), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("completion_notes", Text, nullable=True),
)

# Index writes for plans and tasks, written in the same transaction as them and delivered by the
# gateway's background drain (gateway/workflow/outbox.py). A delivered row is deleted; a row the
# index refused for good stays with state "failed" and its reason.
index_outbox = Table(
    "index_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("org_id", String(255), nullable=False, default=""),
    Column("documents", JSON, nullable=False),
    Column("state", String(16), nullable=False, index=True),  # pending | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("last_reason", String(64), nullable=True),
    Column("last_message", Text, nullable=True),
)


alert_reads = Table(
    "alert_reads",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("alert_id", BigInteger, primary_key=True),
    Column("read_at", DateTime(timezone=True), nullable=False),
)


def database_url(value: str, data_dir: Path) -> str:
    """An async SQLAlchemy URL from DATABASE_URL (or the embedded SQLite default)."""
    if not value:
        path = data_dir / "workflow" / "workflow.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{path}"
    if value.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + value.split("://", 1)[1]
    if value.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + value[len("sqlite:///") :]
    return value


async def open_engine(url: str) -> AsyncEngine:
    # A pre-ping protects against dropped server connections; a SQLite file has none (and it costs ~0.3 ms).
    engine = create_async_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    return engine
