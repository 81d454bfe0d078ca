"""Each deployable installs from its own lock alone and starts from the wheel, like its image.

One wheel is built per source hash; one throwaway virtualenv per lock (requirements/<name>.txt)
gets exactly that lock plus the wheel (--no-deps, non-editable). Every process then starts with
`python -I` from a temporary cwd, so neither the repo's source tree nor PYTHONPATH can help it,
and must reach readiness: a missing dependency, a stray import of another deployable's package or
package data read from the source tree fails here instead of in production.

Both are cached under .cache/deploy-venvs/ (gitignored; INKWELL_DEPLOY_CACHE moves it): cold, the
torch sets take a few minutes to install; warm, the whole module takes seconds plus model loading.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.model_registry.catalog import load_catalog
from tests.conftest import FRONTEND_ORIGIN, PUBLISHABLE_KEY
from tests.support.fake_clerk import FakeClerk, SigningKey
from tests.support.fake_router import FakeRouter
from tests.support.processes import free_port

pytestmark = pytest.mark.timeout(1200)

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("INKWELL_DEPLOY_CACHE", ROOT / ".cache" / "deploy-venvs"))
SOURCES = ("services", "gateway", "libs", "cli", "gen")
SERVING = health_pb2.HealthCheckResponse.SERVING
# Deployable -> the package it runs and owns (its modules are all imported from the venv).
PACKAGES = {"auth": "services.auth", "llm": "services.llm", "index": "services.index", "gateway": "gateway"}
HEALTH_NAMES = {
    "auth": "inkwell.auth.v1.AuthService",
    "llm": "inkwell.llm.v1.LlmService",
    "index": "inkwell.index.v1.IndexService",
}


def _source_hash() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".pyi", ".toml", ".typed"):
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]


def _pip(*args: str, python: Path | None = None) -> None:
    """The test runner's pip (with its configured find-links for the torch CPU wheel) into `python`."""
    target = ["--python", str(python)] if python else []
    cmd = [sys.executable, "-m", "pip", *target, "--disable-pip-version-check", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once per source hash from a copy of the tree (nothing written in the repo)."""
    out = CACHE / "wheels" / _source_hash()
    built = sorted(out.glob("inkwell-*.whl")) if out.exists() else []
    if built:
        return built[0]
    src = tmp_path_factory.mktemp("wheel-src")
    shutil.copy2(ROOT / "pyproject.toml", src / "pyproject.toml")
    for top in SOURCES:
        shutil.copytree(ROOT / top, src / top, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for old in (CACHE / "wheels").glob("*") if (CACHE / "wheels").exists() else []:
        shutil.rmtree(old, ignore_errors=True)  # one wheel is enough: the cache must not grow per edit
    staging = tmp_path_factory.mktemp("wheel-out")
    _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(staging), str(src))
    out.mkdir(parents=True, exist_ok=True)
    (whl,) = staging.glob("inkwell-*.whl")
    shutil.move(str(whl), out / whl.name)
    return out / whl.name


def venv_for(name: str, wheel: Path) -> Path:
    """A virtualenv holding exactly requirements/<name>.txt plus the wheel; reused while the lock is unchanged."""
    lock = ROOT / "requirements" / f"{name}.txt"
    # Keyed on the pins alone: regenerated comments in the lock do not cost a cold reinstall.
    pinned = sorted(line for line in lock.read_text().splitlines() if "==" in line and not line.startswith((" ", "#")))
    key = hashlib.sha256("\n".join([*pinned, sys.version]).encode()).hexdigest()[:16]
    venv = CACHE / f"{name}-{key}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        # A venv left half-installed by an interrupted run has no `.complete`: start it over; venvs
        # of older locks of this set are dropped (each holds hundreds of MB for the torch sets).
        for old in CACHE.glob(f"{name}-*"):
            shutil.rmtree(old, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        _pip("install", "--quiet", "-r", str(lock), python=python)
        (venv / ".complete").write_text(lock.read_text())
    stamp = venv / ".wheel"
    if not stamp.exists() or stamp.read_text() != wheel.name + wheel.parent.name:
        _pip("install", "--quiet", "--no-deps", "--force-reinstall", "--no-index", str(wheel), python=python)
        _pip("check", python=python)
        stamp.write_text(wheel.name + wheel.parent.name)
    return python


def isolated(python: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `code` in the deployable's venv, isolated from the repo (-I: no PYTHONPATH, no cwd, no user site)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(python), "-I", "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@dataclass
class Deployed:
    name: str
    python: Path
    proc: subprocess.Popen[bytes] | None
    log: Path
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def failure(self, what: str) -> str:
        return f"{self.name}: {what}\n{self.log.read_text(errors='replace')[-4000:]}"


# The registry's remote models (libs/config/models.toml), as the fake router lists them.
ROUTER_MODELS = tuple(remote.model for remote in load_catalog(environ={}).remote_models.values())


class Fleet:
    """The four processes, each from its own venv, started on demand and stopped at module end."""

    def __init__(self, root: Path, wheel: Path) -> None:
        self.root = root
        self.wheel = wheel
        self.started: dict[str, Deployed] = {}
        self.clerk = FakeClerk([SigningKey.generate("ins_deploy")]).start()
        # A healthy Hugging Face router: the llm is ready only while a candidate can answer.
        self.router = FakeRouter(catalog={model: {"structured": True} for model in ROUTER_MODELS}).start()
        self.ports = {name: free_port() for name in PACKAGES}
        self.common = {
            "INKWELL_ENV": "production",
            "INKWELL_LOG_LEVEL": "INFO",
            "HF_HUB_OFFLINE": "1",
            "INKWELL_TORCH_THREADS": "1",
            "INKWELL_AUTH_ADDR": f"127.0.0.1:{self.ports['auth']}",
            # Read by auth and the gateway only (each deployable's settings ignore unknown variables).
            "INKWELL_SERVICE_KEY": "deployables-test-service-key-0123456789abcdef",
        }

    def settings(self, name: str, data: Path) -> dict[str, str]:
        port = str(self.ports[name])
        if name == "auth":
            return {
                "INKWELL_AUTH_PORT": port,
                "CLERK_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
                "CLERK_SECRET_KEY": self.clerk.secret_key,
                "CLERK_FRONTEND_API_URL": self.clerk.url,
                "CLERK_API_URL": self.clerk.url,
                "CLERK_AUTHORIZED_PARTIES": FRONTEND_ORIGIN,
            }
        if name == "llm":
            return {
                "INKWELL_LLM_PORT": port,
                "HF_TOKEN": "hf_test_token",
                "INKWELL_HF_BASE_URL": f"{self.router.url}/v1",
                "INKWELL_MODEL_CACHE": str(data / "hf-empty"),
            }
        if name == "index":
            return {"INKWELL_INDEX_PORT": port}
        return {
            "INKWELL_GATEWAY_PORT": port,
            "INKWELL_INDEX_ADDR": f"127.0.0.1:{self.ports['index']}",
            "INKWELL_LLM_ADDR": f"127.0.0.1:{self.ports['llm']}",
            "CLERK_AUTHORIZED_PARTIES": FRONTEND_ORIGIN,
        }

    def python(self, name: str) -> Path:
        return venv_for(name, self.wheel)

    def start(self, name: str) -> Deployed:
        if name in self.started:
            return self.started[name]
        python = self.python(name)
        home = self.root / name
        cwd, data = home / "cwd", home / "data"
        cwd.mkdir(parents=True)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "TMPDIR": str(home),
            "INKWELL_DATA_DIR": str(data),
            **self.common,
            **self.settings(name, data),
        }
        log = home / "process.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(python), "-I", "-m", PACKAGES[name]], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deployed = Deployed(name, python, proc, log, self.ports[name])
        self.started[name] = deployed
        return deployed

    def stop(self) -> None:
        for deployed in reversed(list(self.started.values())):
            if deployed.proc is not None and deployed.proc.poll() is None:
                deployed.proc.terminate()
        for deployed in self.started.values():
            if deployed.proc is not None:
                try:
                    deployed.proc.wait(20)
                except subprocess.TimeoutExpired:
                    deployed.proc.kill()
                    deployed.proc.wait(5)
        self.clerk.stop()
        self.router.stop()


@pytest.fixture(scope="module")
def fleet(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    running = Fleet(tmp_path_factory.mktemp("deployables"), wheel)
    try:
        yield running
    finally:
        running.stop()


def wait_serving(deployed: Deployed, service: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(deployed.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert deployed.proc is not None
            if deployed.proc.poll() is not None:
                raise AssertionError(deployed.failure(f"exited with {deployed.proc.returncode}"))
            try:
                if stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1).status == SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise AssertionError(deployed.failure(f"health {service!r} not SERVING after {timeout_s}s"))


def test_wheel_ships_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"libs/config/models.toml", "libs/config/plans.toml"} <= names
    assert not any(name.startswith(("tests/", "bench/", "scripts/")) for name in names)


@pytest.mark.parametrize("name", list(PACKAGES))
def test_every_module_imports_from_its_own_lock(name: str, fleet: Fleet, tmp_path: Path) -> None:
    """Importing each module of the deployable's package (lazy imports excepted) needs nothing outside its lock."""
    package = PACKAGES[name]
    code = (
        "import importlib, json, pkgutil, sys\n"
        f"root = importlib.import_module({package!r})\n"
        "assert '/site-packages/' in root.__file__, root.__file__\n"
        "walk = pkgutil.walk_packages(root.__path__, root.__name__ + '.')\n"
        "names = [m.name for m in walk if not m.name.endswith('.__main__')]  # __main__ would start it\n"
        "failed = {}\n"
        "for n in names:\n"
        "    try:\n"
        "        importlib.import_module(n)\n"
        "    except Exception as exc:\n"
        "        failed[n] = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps({'count': len(names), 'failed': failed}))\n"
    )
    done = isolated(fleet.python(name), code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["count"] > 0
    assert result["failed"] == {}, f"{name}: modules that need packages outside requirements/{name}.txt"


INTERNAL = ("services", "gateway", "libs", "cli", "inkwell")


def external_imports(package: str) -> set[str]:
    """Third-party top-level modules `package` can reach through its imports, lazy ones included."""
    import grimp

    graph = grimp.build_graph(*INTERNAL, include_external_packages=True)
    reached = graph.find_upstream_modules(package, as_package=True) | {
        module for module in graph.modules if module == package or module.startswith(package + ".")
    }
    tops = {module.split(".")[0] for module in reached}
    return {top for top in tops if top not in INTERNAL and top not in sys.stdlib_module_names}


@pytest.mark.parametrize("name", list(PACKAGES))
def test_lazy_imports_stay_inside_the_lock(name: str, fleet: Fleet, tmp_path: Path) -> None:
    """Function-level imports too (the import walk cannot see them): each must be installed in the venv."""
    modules = sorted(external_imports(PACKAGES[name]))
    assert modules
    code = f"import importlib.util as u, json; print(json.dumps([m for m in {modules!r} if u.find_spec(m) is None]))"
    done = isolated(fleet.python(name), code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    missing = json.loads(done.stdout.strip().splitlines()[-1])
    assert missing == [], f"{name} reaches {missing}, which requirements/{name}.txt does not install"


def test_auth_ready_from_its_venv(fleet: Fleet) -> None:
    auth = fleet.start("auth")
    wait_serving(auth, "", 60)
    wait_serving(auth, HEALTH_NAMES["auth"], 60)


def test_index_ready_from_its_venv(fleet: Fleet) -> None:
    """READY means the packaged all-MiniLM-L6-v2 loaded from the venv, offline."""
    fleet.start("auth")
    index = fleet.start("index")
    wait_serving(index, "", 120)
    wait_serving(index, HEALTH_NAMES["index"], 300)


def test_llm_ready_from_its_venv(fleet: Fleet) -> None:
    fleet.start("auth")
    llm = fleet.start("llm")
    wait_serving(llm, "", 120)
    wait_serving(llm, HEALTH_NAMES["llm"], 120)


def test_gateway_ready_from_its_venv(fleet: Fleet) -> None:
    """/readyz is 200 only when the gateway (from its venv) sees every backend (from theirs) SERVING."""
    for name in ("auth", "index", "llm"):
        wait_serving(fleet.start(name), HEALTH_NAMES[name], 300)
    gateway = fleet.start("gateway")
    deadline = time.monotonic() + 60
    last = ""
    while time.monotonic() < deadline:
        assert gateway.proc is not None
        if gateway.proc.poll() is not None:
            raise AssertionError(gateway.failure(f"exited with {gateway.proc.returncode}"))
        try:
            response = httpx.get(f"http://{gateway.address}/readyz", timeout=2)
            last = response.text
            if response.status_code == 200:
                assert response.json()["status"] == "ready"
                return
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(gateway.failure(f"/readyz never 200; last answer: {last}"))
