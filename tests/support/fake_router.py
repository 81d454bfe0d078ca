"""A fake Hugging Face router on loopback speaking the OpenAI wire format.

Live route: `{url}/v1` (`GET /v1/models`, `POST /v1/chat/completions`). Dead route: `{url}/hf/v1`
(every path 404, like the legacy base URL). Per model, a script of replies: JSON content, fenced
or truncated text, HTTP errors (with headers such as Retry-After), slow answers; models can be
left out of the catalog, refuse `response_format`, or be "not supported by any provider".
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = dict[str, Any]  # {"content": str} | {"status": int, "body": ..., "headers": {...}} | {"sleep": s, ...}


def ok(content: Any) -> Reply:
    return {"content": content if isinstance(content, str) else json.dumps(content)}


def error(status: int, message: str = "error", headers: dict[str, str] | None = None) -> Reply:
    return {"status": status, "body": {"error": {"message": message}}, "headers": headers or {}}


def from_schema(sleep: float = 0.0) -> Reply:
    """A healthy model: the smallest answer that is valid for the JSON schema the request sent."""
    return {"from_schema": True, "sleep": sleep}


def slow(seconds: float, reply: Reply | None = None) -> Reply:
    """A reply that comes only after `seconds` (the client may give up first)."""
    return {**(reply or from_schema()), "sleep": seconds}


def minimal_instance(schema: dict[str, Any]) -> Any:
    """The smallest instance of a (simple) JSON schema: required keys, minItems items, enum[0]."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {key: minimal_instance(props[key]) for key in schema.get("required", [])}
    if kind == "array":
        return [minimal_instance(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 1)))
    return None


@dataclass
class FakeRouter:
    catalog: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {"structured": bool, "live": bool}
    scripts: dict[str, deque[Reply]] = field(default_factory=dict)
    default: dict[str, Reply] = field(default_factory=dict)
    no_schema: set[str] = field(default_factory=set)  # models that refuse response_format json_schema
    served_by: str = "novita"
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[dict[str, Any]] = field(default_factory=list)  # sleeping replies whose caller hung up
    hits: Counter[str] = field(default_factory=Counter)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _hung_up: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, model: str, *replies: Reply) -> None:
        self.scripts[model] = deque(replies)

    def chat_requests(self, model: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests
            if r["path"].endswith("/chat/completions") and (model is None or r["model"] == model)
        ]

    def wait_cancelled(self, count: int, timeout_s: float) -> bool:
        """Block until `count` sleeping replies saw their caller hang up (False on timeout)."""
        with self._hung_up:
            return self._hung_up.wait_for(lambda: len(self.cancelled) >= count, timeout_s)

    def _next(self, model: str) -> Reply:
        with self._lock:
            queue = self.scripts.get(model)
            if queue:
                return queue.popleft()
        return self.default.get(model, ok({"answer": "default"}))

    def start(self) -> FakeRouter:
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                router.hits[self.path] += 1
                if self.path == "/v1/models":
                    data = [
                        {
                            "id": model,
                            "object": "model",
                            "owned_by": model.split("/")[0],
                            "providers": [
                                {
                                    "provider": router.served_by,
                                    "status": "live" if spec.get("live", True) else "error",
                                    "supports_structured_output": spec.get("structured", True),
                                    "context_length": 32768,
                                }
                            ],
                        }
                        for model, spec in router.catalog.items()
                    ]
                    return self._json(200, {"object": "list", "data": data})
                return self._json(404, {"error": "Not Found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                model = payload.get("model", "")
                fmt = (payload.get("response_format") or {}).get("type")
                router.requests.append(
                    {
                        "path": self.path,
                        "model": model,
                        "response_format": fmt,
                        "authorization": self.headers.get("Authorization"),
                        "messages": payload.get("messages", []),
                        "at": time.monotonic(),
                    }
                )
                router.hits[self.path] += 1
                if not self.path.startswith("/v1/"):
                    return self._json(404, {"error": "Not Found"})
                if model not in router.catalog and model.split(":")[0] not in router.catalog:
                    return self._json(
                        400,
                        {
                            "error": {
                                "message": f"The requested model '{model}' is not supported by "
                                "any provider you have enabled."
                            }
                        },
                    )
                if fmt == "json_schema" and model in router.no_schema:
                    return self._json(
                        400,
                        {
                            "error": {
                                "message": "response_format json_schema is not supported by "
                                "this provider for this model"
                            }
                        },
                    )
                reply = router._next(model)
                if reply.get("sleep"):
                    closed_at = self._sleep_unless_closed(reply["sleep"])
                    if closed_at is not None:  # the caller gave up: record when, answer nothing
                        with router._hung_up:
                            started_at = router.requests[-1]["at"]
                            router.cancelled.append({"model": model, "at": started_at, "closed": closed_at})
                            router._hung_up.notify_all()
                        self.close_connection = True
                        return None
                if reply.get("from_schema"):
                    schema = ((payload.get("response_format") or {}).get("json_schema") or {}).get("schema")
                    reply = {**reply, "content": json.dumps(minimal_instance(schema) if schema else {})}
                if "status" in reply:
                    return self._json(reply["status"], reply.get("body", {}), reply.get("headers", {}))
                body = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": reply.get("served_model", model),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply["content"]},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
                }
                return self._json(200, body, {"x-inference-provider": router.served_by})

            def _sleep_unless_closed(self, seconds: float) -> float | None:
                """Wait `seconds`, or until the client closes the connection (then: when)."""
                end = time.monotonic() + seconds
                while (left := end - time.monotonic()) > 0:
                    readable, _, _ = select.select([self.connection], [], [], left)
                    if readable:
                        try:
                            data = self.connection.recv(1, socket.MSG_PEEK)
                        except OSError:
                            data = b""
                        if not data:
                            return time.monotonic()
                        time.sleep(max(0.0, end - time.monotonic()))  # a pipelined request: just wait
                return None

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
