"""`make lock` / `make lock-check`: one pinned requirements file per deployable, from pyproject.toml.

Why a hash instead of re-resolving in CI: a full pip-compile of the torch/txtai sets takes minutes
and needs the index; the lock only goes stale when pyproject's dependency tables change. Each lock
records a sha256 of those tables (requires-python, dependencies, optional-dependencies) in its
header, and `--check` compares it with the current pyproject.toml: cheap, offline, and it fails on
any edit of a dependency, extra or pin until `make lock` is run and the new locks are committed.

pip-tools resolves (not uv): the torch pin must resolve to the local `2.13.0+cpu` wheel, which pip
finds through its configured find-links; Dockerfiles get the same pin from PyTorch's CPU index.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK_DIR = ROOT / "requirements"
# Lock name -> the extras it installs. `dev` is everything the tests, lint and `make run` need; it
# is compiled first and constrains the others, so every deployable runs the versions tests ran.
SETS: dict[str, tuple[str, ...]] = {
    "dev": ("auth", "llm", "index", "gateway", "dev"),
    "auth": ("auth",),
    "llm": ("llm",),
    "index": ("index",),
    "gateway": ("gateway",),
}
MARKER = "# inkwell-lock: pyproject-deps-sha256="
PROJECT = "inkwell"


def deps_hash(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """sha256 of the dependency tables only, so edits elsewhere in pyproject do not stale the locks."""
    project = tomllib.loads(pyproject.read_text())["project"]
    tables = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
    }
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()


def recorded_hash(lock: Path) -> str | None:
    if not lock.exists():
        return None
    for line in lock.read_text().splitlines():
        if line.startswith(MARKER):
            return line.removeprefix(MARKER).strip()
    return None


def _drop_self(text: str) -> str:
    """pip-compile pins the project itself (`inkwell @ file:///...`) for self-referencing extras."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith(f"{PROJECT} @ "):
            skipping = True
            continue
        if skipping and line.startswith("    #"):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


def compile_lock(name: str, extras: tuple[str, ...], digest: str, upgrade: bool) -> None:
    lock = LOCK_DIR / f"{name}.txt"
    cmd = [sys.executable, "-m", "piptools", "compile", "--quiet", "pyproject.toml", "-o", str(lock)]
    cmd += ["--strip-extras", "--allow-unsafe", "--no-emit-find-links", "--no-emit-index-url"]
    cmd += ["--upgrade"] if upgrade else []
    cmd += ["--constraint", "requirements/dev.txt"] if name != "dev" else []
    for extra in extras:
        cmd += ["--extra", extra]
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "make lock"}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    body = _drop_self(lock.read_text())
    header = f"{MARKER}{digest}\n# Extras: {', '.join(extras)}. Install: pip install -r {lock.relative_to(ROOT)}\n"
    lock.write_text(header + body)


def pins(lock: Path) -> dict[str, str]:
    """name -> version of every `name==version` line."""
    found = {}
    for line in lock.read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and not line.startswith((" ", "#")):
            found[name.strip().lower()] = version.split()[0]
    return found


def check() -> int:
    digest = deps_hash()
    stale = [name for name in SETS if recorded_hash(LOCK_DIR / f"{name}.txt") != digest]
    if stale:
        print(
            f"requirements/{{{','.join(stale)}}}.txt do not match pyproject.toml's dependencies: "
            "run 'make lock' and commit requirements/",
            file=sys.stderr,
        )
        return 1
    dev = pins(LOCK_DIR / "dev.txt")
    drift = [
        f"requirements/{name}.txt pins {pkg}=={version}, dev.txt {dev.get(pkg)}"
        for name in SETS
        for pkg, version in pins(LOCK_DIR / f"{name}.txt").items()
        if dev.get(pkg) != version
    ]
    if drift:
        print("\n".join([*drift, "run 'make lock': deployables must run the versions the tests ran"]), file=sys.stderr)
        return 1
    print(f"requirements/*.txt match pyproject.toml ({digest[:12]})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a lock is stale; resolves nothing")
    parser.add_argument("--upgrade", action="store_true", help="re-resolve to the newest allowed versions")
    parser.add_argument("names", nargs="*", help=f"locks to regenerate: {', '.join(SETS)} (default: all)")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in SETS]
    if unknown:
        parser.error(f"unknown lock {unknown[0]!r}; choose from {', '.join(SETS)}")
    if args.check:
        return check()
    LOCK_DIR.mkdir(exist_ok=True)
    digest = deps_hash()
    for name in args.names or SETS:
        print(f"lock: requirements/{name}.txt", flush=True)
        compile_lock(name, SETS[name], digest, args.upgrade)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
