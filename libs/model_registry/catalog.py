"""The one module that reads the model registry file (libs/config/models.toml).

Everything else asks the catalog by role or name; no other code names a model id. Overrides per
role (e.g. INKWELL_AGENT_MODEL) are checked against the file at startup.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from libs.config import config_file
from libs.runtime.settings import ConfigError

DEFAULT_MODELS_FILE = config_file("models.toml")
GIB = 1024**3

Task = Literal["text-generation", "embeddings"]
Dtype = Literal["float32", "bfloat16", "float16"]
ChatTemplate = Literal["chatml", "zephyr", "llama3", "none"]
EncoderEngine = Literal["onnx-int8", "torch-fp32"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalModel(_Strict):
    repo_id: str = Field(pattern=r"^[\w.\-]+/[\w.\-]+$")
    revision: str = Field(pattern=r"^[0-9a-f]{40}$", description="a pinned 40-hex commit")
    files: tuple[str, ...] = Field(min_length=1)
    task: Task
    dtype: Dtype
    ram_gib: float = Field(gt=0, le=1024)
    context_length: int = Field(gt=0)
    chat_template: ChatTemplate
    package: str | None = None
    package_path: str = ""
    # Embeddings models: the engines the index service may encode with, the first by default
    # (INKWELL_EMBEDDINGS_ENGINE picks another one of them). Empty: txtai's default, torch-fp32.
    engines: tuple[EncoderEngine, ...] = ()

    @property
    def ram_bytes(self) -> int:
        return int(self.ram_gib * GIB)

    def wants(self, filename: str) -> bool:
        return any(fnmatch.fnmatch(filename, pattern) for pattern in self.files)


class Provider(_Strict):
    kind: Literal["openai_compatible"]
    base_url: str = Field(pattern=r"^https?://")
    api_key_env: str = ""


class RemoteModel(_Strict):
    provider: str
    model: str = Field(min_length=1)
    context_length: int = Field(gt=0)


class Purpose(_Strict):
    description: str = ""
    chain: tuple[str, ...] = Field(min_length=1)


class Role(_Strict):
    description: str = ""
    env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    chain: tuple[str, ...] = Field(min_length=1)


class _File(_Strict):
    roles: dict[str, Role]
    models: dict[str, LocalModel]
    providers: dict[str, Provider] = {}
    remote_models: dict[str, RemoteModel] = {}
    purposes: dict[str, Purpose] = {}

    @field_validator("roles", "models", "remote_models", "purposes")
    @classmethod
    def _names(cls, value: dict[str, object]) -> dict[str, object]:
        for name in value:
            if not re.match(r"^[a-z0-9][a-z0-9._\-]*$", name):
                raise ValueError(f"name {name!r} must be lowercase letters, digits, '.', '_' or '-'")
        return value


@dataclass(frozen=True)
class ModelEntry:
    """A local model together with its name in the file."""

    name: str
    spec: LocalModel


@dataclass(frozen=True)
class Catalog:
    path: Path
    roles: Mapping[str, Role]
    models: Mapping[str, LocalModel]
    providers: Mapping[str, Provider]
    remote_models: Mapping[str, RemoteModel]
    chains: Mapping[str, tuple[str, ...]]  # after environment overrides
    purposes: Mapping[str, Purpose] = field(default_factory=dict)

    def chain(self, role: str) -> list[ModelEntry]:
        """The role's models in order of preference (the override first)."""
        if role not in self.chains:
            raise KeyError(f"unknown model role {role!r}; the registry file defines {sorted(self.chains)}")
        return [ModelEntry(name, self.models[name]) for name in self.chains[role]]

    def model(self, name: str) -> ModelEntry:
        return ModelEntry(name, self.models[name])

    def roles_of(self, name: str) -> list[str]:
        return [role for role, chain in self.chains.items() if name in chain]

    def find(self, name_or_repo: str) -> str | None:
        """The model name for a name or a repo id, or None."""
        if name_or_repo in self.models:
            return name_or_repo
        for name, spec in self.models.items():
            if spec.repo_id.lower() == name_or_repo.lower():
                return name
        return None


def load_catalog(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Catalog:
    """Read and validate the registry file, then apply role overrides from the environment."""
    environ = os.environ if environ is None else environ
    path = Path(path or environ.get("INKWELL_MODELS_FILE") or DEFAULT_MODELS_FILE)
    where = f"INKWELL_MODELS_FILE ({path})"
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            [f"{where}: file not found. Fix: point INKWELL_MODELS_FILE at libs/config/models.toml"]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{where}: not valid TOML ({exc}). Fix: correct the syntax"]) from None
    try:
        data = _File.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            [
                f"{where}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}. Fix: correct that entry"
                for err in exc.errors()
            ]
        ) from None

    problems: list[str] = []
    for role_name, role in data.roles.items():
        for name in role.chain:
            if name not in data.models:
                problems.append(f"{where}: roles.{role_name}.chain names {name!r}, which is not under [models]")
    for name, remote in data.remote_models.items():
        if remote.provider not in data.providers:
            problems.append(f"{where}: remote_models.{name}.provider {remote.provider!r} is not under [providers]")

    for purpose_name, purpose in data.purposes.items():
        for candidate in purpose.chain:
            kind, _, name = candidate.partition(":")
            if kind == "remote" and name in data.remote_models:
                continue
            if kind == "role" and name in data.roles:
                if data.models[data.roles[name].chain[0]].task != "text-generation":
                    problems.append(f"{where}: purposes.{purpose_name}: role {name!r} is not a text-generation role")
                continue
            problems.append(
                f"{where}: purposes.{purpose_name}.chain entry {candidate!r} must be remote:<remote model> "
                "or role:<role> defined in the file"
            )

    chains = {role_name: role.chain for role_name, role in data.roles.items()}
    by_repo = {spec.repo_id.lower(): name for name, spec in data.models.items()}
    for role_name, role in data.roles.items():
        override = environ.get(role.env, "").strip()
        if not override:
            continue
        found = override if override in data.models else by_repo.get(override.lower())
        if found is None:
            known = ", ".join(f"{n} ({s.repo_id})" for n, s in data.models.items())
            problems.append(
                f"{role.env}: {override!r} is not in the model registry. Fix: use one of {known}, or add it to {path}"
            )
            continue
        name = found
        wanted = data.models[name].task
        current = data.models[role.chain[0]].task
        if wanted != current:
            problems.append(f"{role.env}: {name!r} is a {wanted} model; role {role_name} needs {current}")
            continue
        chains[role_name] = (name, *(n for n in role.chain if n != name))
    if problems:
        raise ConfigError(problems)
    return Catalog(path, data.roles, data.models, data.providers, data.remote_models, chains, data.purposes)
