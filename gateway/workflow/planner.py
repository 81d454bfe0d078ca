"""Plan generation: one structured LLM call for the whole day, one more for missing pillars, and
deterministic tasks (labelled as a fallback, with the upstream reason) for whatever is left."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from gateway.workflow.pillars import ACTION_URLS, fallback_for, plan_schema
from gateway.workflow.store import Task
from inkwell.llm.v1 import llm_service_pb2 as llm_pb
from inkwell.llm.v1 import llm_service_pb2_grpc as llm_grpc
from libs.runtime.client import call_metadata, call_timeout
from libs.runtime.errors import from_rpc_error
from libs.runtime.protoenum import from_enum

log = logging.getLogger("inkwell.workflow.planner")

PER_PILLAR_MAX = 3
MIN_CALL_S = 0.5  # below this, an LLM call cannot finish: answer with the labelled fallback
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


def _flatten(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """{"pillars": {pillar: [task, ...]}} -> [task with pillarId, ...]."""
    return [{**task, "pillarId": pillar} for pillar, tasks in answer["pillars"].items() for task in tasks]


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


def _reason(attempt: dict[str, Any]) -> tuple[str, str]:
    """A failed attempt as (reason code, detail naming the model)."""
    error_class = str(attempt["error_class"])
    who = f"{attempt.get('provider')} {attempt.get('model')}"
    if error_class == "DEADLINE":
        waited = float(attempt.get("latency_ms") or 0.0) / 1000
        return "LLM_DEADLINE", f"{who} did not answer within {waited:.1f} s"
    return error_class, f"{who}: {attempt.get('detail') or ''}".strip()


def first_cause(attempts: list[dict[str, Any]]) -> tuple[str, str]:
    """The earliest failure in the chain: it names the first failing subsystem."""
    for attempt in attempts:
        if attempt.get("error_class"):
            return _reason(attempt)
    return "ALL_PROVIDERS_FAILED", ""


def served_despite(provenance: dict[str, Any]) -> tuple[str, str] | None:
    """A call that a later candidate served: the first earlier candidate's failure, else None."""
    served = (provenance.get("provider"), provenance.get("requested_model"))
    for attempt in provenance.get("attempts", []):
        if attempt.get("error_class") and (attempt.get("provider"), attempt.get("model")) != served:
            return _reason(attempt)
    return None


class Planner:
    """Plans a day inside one budget: every LLM call gets only what is left of it."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        pillars: tuple[str, ...],
        budget_s: float = 45.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stub = llm_grpc.LlmServiceStub(channel)
        self.pillars = pillars
        self.budget_s = budget_s
        self.clock = clock

    async def _ask(self, identity_token: str, date: str, pillars: tuple[str, ...], deadline: float) -> LlmAnswer:
        timeout = call_timeout(deadline - self.clock())
        if timeout < MIN_CALL_S:
            return LlmAnswer([], {}, "LLM_DEADLINE", f"the plan budget of {self.budget_s:g} s ran out")
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
            reply = await self.stub.GenerateStructured(request, timeout=timeout, metadata=call_metadata(identity_token))
        except grpc.aio.AioRpcError as exc:
            remote = from_rpc_error(exc)
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return LlmAnswer([], {}, "LLM_DEADLINE", f"the LLM service did not answer within {timeout:.1f} s")
            reason = "LLM_UNAVAILABLE" if remote.reason in ("BACKEND_UNAVAILABLE", "UNKNOWN") else remote.reason
            return LlmAnswer([], {}, reason, remote.message)
        provenance = _provenance(reply.provenance)
        if reply.degraded or not reply.json:
            reason, detail = first_cause(provenance["attempts"])
            return LlmAnswer([], provenance, reason, detail)
        return LlmAnswer(_flatten(json.loads(reply.json)), provenance, None)

    async def plan(self, identity_token: str, date: str) -> DraftPlan:
        deadline = self.clock() + self.budget_s
        first = await self._ask(identity_token, date, self.pillars, deadline)
        answers = [first]
        chosen = self._pick(first.tasks, "llm_generation")
        missing = tuple(p for p in self.pillars if p not in {t.pillar_id for t in chosen})
        if missing and first.failure is None:
            second = await self._ask(identity_token, date, missing, deadline)
            answers.append(second)
            chosen += self._pick(second.tasks, "llm_pillar_backfill", allowed=missing)
            missing = tuple(p for p in self.pillars if p not in {t.pillar_id for t in chosen})
        provenance: dict[str, Any] = {
            "calls": [a.provenance for a in answers if a.provenance],
            "budget_s": self.budget_s,
            "elapsed_s": round(self.budget_s - (deadline - self.clock()), 3),
        }
        # The first failing subsystem, even when a later candidate (or call) made up for it.
        cause: tuple[str, str] | None = None
        for answer in answers:
            cause = (answer.failure, answer.detail) if answer.failure else served_despite(answer.provenance)
            if cause is not None:
                break
        if missing:
            reason, detail = cause or ("PILLARS_MISSING", f"no task for {', '.join(missing)}")
            log.warning(
                f"using fallback tasks for {len(missing)} pillar(s): {reason}",
                extra={"reason": reason, "pillars": list(missing), "detail": detail[:300]},
            )
            chosen += [self._fallback(p, reason) for p in missing]
        elif cause is not None:
            log.warning(
                f"plan served after an upstream failure: {cause[0]}",
                extra={"reason": cause[0], "detail": cause[1][:300]},
            )
        if cause is not None or missing:
            provenance["degraded_detail"] = (cause[1] if cause else f"no task for {', '.join(missing)}")[:500]
        order = {p: n for n, p in enumerate(self.pillars)}
        chosen.sort(key=lambda t: order.get(t.pillar_id, len(order)))
        modes = {t.metadata["source"] for t in chosen}
        if missing:
            mode = "controlled_fallback"
        elif "llm_pillar_backfill" in modes:
            mode = "llm_pillar_backfill"
        else:
            mode = "llm_generation"
        degraded = cause[0] if cause else ("PILLARS_MISSING" if missing else None)
        return DraftPlan(chosen, mode, bool(missing), degraded, provenance)

    def _pick(self, raw: list[dict[str, Any]], source: str, allowed: tuple[str, ...] | None = None) -> list[Task]:
        per_pillar: Counter[str] = Counter()
        tasks = []
        for item in raw:
            pillar = item["pillarId"]
            wanted = allowed if allowed is not None else self.pillars
            if pillar not in wanted or per_pillar[pillar] >= PER_PILLAR_MAX:
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
                    action_type="navigate",  # the task opens its pillar's tool at action_url
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
