"""Plan generation: one structured LLM call for the whole day, one more for missing pillars, and
deterministic tasks (labelled as a fallback, with the upstream reason) for whatever is left."""

from __future__ import annotations

import json
import logging
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc

from gateway.workflow.pillars import ACTION_URLS, fallback_for, plan_schema
from gateway.workflow.store import Task
from inkwell.llm.v1 import llm_service_pb2 as llm_pb
from inkwell.llm.v1 import llm_service_pb2_grpc as llm_grpc
from libs.runtime.client import call_metadata
from libs.runtime.errors import from_rpc_error
from libs.runtime.protoenum import from_enum

log = logging.getLogger("inkwell.workflow.planner")

PER_PILLAR_MAX = 3
SYSTEM_PROMPT = (
    "You plan a content creator's day. For each pillar listed, propose 1 to 3 concrete, small tasks "
    "that can be done today. Titles are short imperatives; descriptions say what to do and why."
)


@dataclass
class DraftPlan:
    tasks: list[Task]
    generation_mode: str
    fallback_used: bool
    degraded_reason: str | None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def source_breakdown(self) -> dict[str, int]:
        return dict(Counter(str(t.metadata.get("source")) for t in self.tasks))


@dataclass
class LlmAnswer:
    tasks: list[dict[str, Any]]
    provenance: dict[str, Any]
    failure: str | None  # the upstream reason when nothing valid came back
    detail: str = ""


def _provenance(p: llm_pb.Provenance) -> dict[str, Any]:
    return {
        "provider": p.provider or None,
        "requested_model": p.requested_model or None,
        "served_model": p.served_model or None,
        "served_by": p.served_by or None,
        "route": p.route or None,
        "output_stage": llm_pb.OutputStage.Name(p.output_stage).removeprefix("OUTPUT_STAGE_"),
        "attempts": [
            {
                "provider": a.provider,
                "model": a.model,
                "outcome": from_enum(llm_pb.AttemptOutcome, a.outcome, lower=True),
                "error_class": from_enum(llm_pb.ErrorClass, a.error_class) or None,
                "http_status": a.http_status or None,
                "latency_ms": a.latency.ToNanoseconds() / 1e6,
                "detail": a.detail or None,
            }
            for a in p.attempts
        ],
    }


def first_cause(attempts: list[dict[str, Any]]) -> tuple[str, str]:
    """The earliest failure in the chain: it names the first failing subsystem."""
    for attempt in attempts:
        if attempt.get("error_class"):
            return str(
                attempt["error_class"]
            ), f"{attempt['provider']} {attempt['model']}: {attempt.get('detail') or ''}"
    return "ALL_PROVIDERS_FAILED", ""


class Planner:
    def __init__(self, channel: grpc.aio.Channel, pillars: tuple[str, ...], timeout_s: float = 60.0) -> None:
        self.stub = llm_grpc.LlmServiceStub(channel)
        self.pillars = pillars
        self.timeout_s = timeout_s

    async def _ask(self, identity_token: str, date: str, pillars: tuple[str, ...]) -> LlmAnswer:
        request = llm_pb.GenerateStructuredRequest(
            messages=[
                llm_pb.Message(role=llm_pb.ROLE_SYSTEM, content=SYSTEM_PROMPT),
                llm_pb.Message(role=llm_pb.ROLE_USER, content=f"Date: {date}. Pillars: {', '.join(pillars)}."),
            ],
            json_schema=json.dumps(plan_schema(pillars, PER_PILLAR_MAX)),
            purpose="workflow_plan",
            max_tokens=2048,
            temperature=0.3,
            criticality=llm_pb.CRITICALITY_BEST_EFFORT,
        )
        try:
            reply = await self.stub.GenerateStructured(
                request, timeout=self.timeout_s, metadata=call_metadata(identity_token)
            )
        except grpc.aio.AioRpcError as exc:
            remote = from_rpc_error(exc)
            reason = (
                "LLM_UNAVAILABLE" if remote.reason in ("BACKEND_UNAVAILABLE", "DEADLINE_EXCEEDED") else remote.reason
            )
            return LlmAnswer([], {}, reason, remote.message)
        provenance = _provenance(reply.provenance)
        if reply.degraded or not reply.json:
            reason, detail = first_cause(provenance["attempts"])
            return LlmAnswer([], provenance, reason, detail)
        return LlmAnswer(json.loads(reply.json)["tasks"], provenance, None)

    async def plan(self, identity_token: str, date: str) -> DraftPlan:
        first = await self._ask(identity_token, date, self.pillars)
        chosen = self._pick(first.tasks, "llm_generation")
        provenance: dict[str, Any] = {"calls": [first.provenance] if first.provenance else []}
        missing = tuple(p for p in self.pillars if p not in {t.pillar_id for t in chosen})
        failure, detail = first.failure, first.detail
        if missing and first.failure is None:
            second = await self._ask(identity_token, date, missing)
            if second.provenance:
                provenance["calls"].append(second.provenance)
            chosen += self._pick(second.tasks, "llm_pillar_backfill", allowed=missing)
            failure, detail = second.failure, second.detail
            missing = tuple(p for p in self.pillars if p not in {t.pillar_id for t in chosen})
        if missing:
            reason = failure or "PILLARS_MISSING"
            log.warning(
                f"using fallback tasks for {len(missing)} pillar(s): {reason}",
                extra={"reason": reason, "pillars": list(missing), "detail": detail[:300]},
            )
            chosen += [self._fallback(p, reason) for p in missing]
            provenance["degraded_detail"] = detail[:500]
        order = {p: n for n, p in enumerate(self.pillars)}
        chosen.sort(key=lambda t: order.get(t.pillar_id, len(order)))
        modes = {t.metadata["source"] for t in chosen}
        if missing:
            mode = "controlled_fallback"
        elif "llm_pillar_backfill" in modes:
            mode = "llm_pillar_backfill"
        else:
            mode = "llm_generation"
        return DraftPlan(chosen, mode, bool(missing), (failure or "PILLARS_MISSING") if missing else None, provenance)

    def _pick(self, raw: list[dict[str, Any]], source: str, allowed: tuple[str, ...] | None = None) -> list[Task]:
        per_pillar: Counter[str] = Counter()
        tasks = []
        for item in raw:
            pillar = item["pillarId"]
            if (allowed is not None and pillar not in allowed) or per_pillar[pillar] >= PER_PILLAR_MAX:
                continue
            per_pillar[pillar] += 1
            tasks.append(
                Task(
                    id=secrets.token_hex(6),
                    pillar_id=pillar,
                    title=item["title"],
                    description=item["description"],
                    status="pending",
                    priority=item["priority"],
                    estimated_time=int(item["estimatedTime"]),
                    dependencies=[],
                    action_url=ACTION_URLS.get(pillar, "/content-planning"),
                    action_type=item["actionType"],
                    metadata={"source": source},
                    enabled=True,
                )
            )
        return tasks

    def _fallback(self, pillar: str, reason: str) -> Task:
        template = fallback_for(pillar)
        return Task(
            id=secrets.token_hex(6),
            pillar_id=pillar,
            title=template.title,
            description=template.description,
            status="pending",
            priority=template.priority,
            estimated_time=template.estimated_time,
            dependencies=[],
            action_url=ACTION_URLS.get(pillar, "/content-planning"),
            action_type=template.action_type,
            metadata={"source": "controlled_fallback", "degraded_reason": reason},
            enabled=True,
        )
