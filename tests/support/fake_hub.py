"""A fake Hugging Face Hub on loopback speaking the Hub's real HTTP protocol.

huggingface_hub honors HF_ENDPOINT (and an explicit endpoint), so the real download code runs
against it: `GET /api/models/{repo}/revision/{rev}?blobs=True` for file metadata, and
`HEAD`/`GET /{repo}/resolve/{rev}/{file}` with X-Repo-Commit, ETag and Range support. It can be
slow, drop a connection once mid-file, or refuse a repo as missing or gated.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class FakeRepo:
    revision: str
    files: dict[str, bytes]
    gated: bool = False

    @classmethod
    def from_dir(cls, revision: str, directory: Path) -> FakeRepo:
        files = {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}
        return cls(revision, files)


def _is_lfs(name: str) -> bool:
    return name.endswith((".safetensors", ".bin", ".gguf", ".model"))


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    chunk_delay_s: float = 0.0  # per 16 KB chunk: makes downloads slow
    chunk_size: int = 16 * 1024
    drop_once: set[str] = field(default_factory=set)  # file names whose first GET is cut halfway
    hang: bool = False  # accept connections but never answer
    hold: threading.Event = field(default_factory=threading.Event)  # file bodies wait while it is clear
    gets: Counter[str] = field(default_factory=Counter)
    range_requests: list[tuple[str, str]] = field(default_factory=list)
    requests: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self
        self.hold.set()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def _serve(self, head: bool) -> None:
                hub.requests += 1
                if hub.hang:
                    time.sleep(30)
                    return
                path = unquote(urlsplit(self.path).path)
                if path.startswith("/api/models/"):
                    return self._model_info(path[len("/api/models/") :])
                if "/resolve/" in path:
                    repo_id, _, rest = path.lstrip("/").partition("/resolve/")
                    revision, _, filename = rest.partition("/")
                    return self._file(repo_id, revision, filename, head)
                self._error(404, "EntryNotFound", "not found")

            def _repo(self, repo_id: str, revision: str) -> FakeRepo | None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                    return None
                if repo.gated:
                    self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted")
                    return None
                if revision not in (repo.revision, "main"):
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                    return None
                return repo

            def _model_info(self, rest: str) -> None:
                repo_id, _, revision = rest.partition("/revision/")
                repo = self._repo(repo_id, revision or "main")
                if repo is None:
                    return
                siblings = []
                for name, data in repo.files.items():
                    sibling: dict[str, Any] = {"rfilename": name, "size": len(data), "blobId": _git_sha(data)}
                    if _is_lfs(name):
                        sibling["lfs"] = {
                            "size": len(data),
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "pointerSize": 134,
                        }
                    siblings.append(sibling)
                self._json(
                    200,
                    {
                        "_id": "x",
                        "id": repo_id,
                        "modelId": repo_id,
                        "sha": repo.revision,
                        "private": False,
                        "siblings": siblings,
                        "tags": [],
                        "downloads": 0,
                        "likes": 0,
                    },
                )

            def _file(self, repo_id: str, revision: str, filename: str, head: bool) -> None:
                repo = self._repo(repo_id, revision)
                if repo is None:
                    return
                data = repo.files.get(filename)
                if data is None:
                    return self._error(404, "EntryNotFound", f"{filename} does not exist")
                etag = hashlib.sha256(data).hexdigest() if _is_lfs(filename) else _git_sha(data)
                start = 0
                range_header = self.headers.get("Range")
                if range_header and not head:
                    hub.range_requests.append((filename, range_header))
                    start = int(range_header.removeprefix("bytes=").split("-")[0])
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", repo.revision)
                self.send_header("ETag", f'"{etag}"')
                if _is_lfs(filename):
                    self.send_header("X-Linked-Etag", f'"{etag}"')
                    self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if head:
                    return
                hub.gets[filename] += 1
                hub.hold.wait()
                cut = len(body) // 2 if filename in hub.drop_once and not start else None
                if cut is not None:
                    hub.drop_once.discard(filename)
                sent = 0
                try:
                    while sent < len(body):
                        if cut is not None and sent >= cut:
                            self.connection.shutdown(2)  # the network drops mid-file
                            self.close_connection = True
                            return
                        chunk = body[sent : sent + hub.chunk_size]
                        self.wfile.write(chunk)
                        sent += len(chunk)
                        if hub.chunk_delay_s:
                            time.sleep(hub.chunk_delay_s)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: str, message: str) -> None:
                data = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self.hang = False
            self.hold.set()
            self._server.shutdown()
            self._server.server_close()


def _git_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
