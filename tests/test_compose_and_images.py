"""docker-compose.yml and the Dockerfiles say what README "Deploy" promises (no engine needed).

The images themselves cannot be built here; tests/test_deployables.py runs the same install
(lock, then the wheel with --no-deps) and starts each process. These checks keep the files in step.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
IMAGES = {
    "auth": ("services/auth/Dockerfile", "services.auth"),
    "llm": ("services/llm/Dockerfile", "services.llm"),
    "index": ("services/index/Dockerfile", "services.index"),
    "gateway": ("gateway/Dockerfile", "gateway"),
}


@pytest.mark.parametrize("name", list(IMAGES))
def test_image_installs_exactly_its_lock_and_runs_unprivileged(name: str) -> None:
    path, module = IMAGES[name]
    text = (ROOT / path).read_text()
    final = text.split("\nFROM ")[-1]  # the runtime stage
    assert f"COPY requirements/{name}.txt " in final
    assert re.search(r"pip install --no-deps /tmp/wheels/\*\.whl", final)
    assert "requirements/" not in final.replace(f"requirements/{name}.txt", "")
    assert not re.search(r"^COPY (services|gateway|libs|cli|gen)/", final, re.M), "no source tree at runtime"
    assert "\nUSER inkwell\n" in final
    assert f'CMD ["python", "-m", "{module}"]' in final
    assert "INKWELL_ENV=production" in final


def test_compose_is_production_by_default_and_the_gateway_waits_for_its_backends() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in IMAGES:
        assert services[name]["environment"]["INKWELL_ENV"] == "${INKWELL_ENV:-production}", name
        assert "healthcheck" in services[name], name
    gateway = services["gateway"]
    assert {name: dep["condition"] for name, dep in gateway["depends_on"].items()} == {
        "auth": "service_healthy",
        "index": "service_healthy",
        "llm": "service_healthy",
    }
    assert any(volume.endswith(":/data") for volume in gateway["volumes"])
    assert gateway["environment"]["INKWELL_DATA_DIR"] == "/data"
    # Backends report readiness (their service name), not mere liveness.
    for name, service_name in (
        ("auth", "inkwell.auth.v1.AuthService"),
        ("index", "inkwell.index.v1.IndexService"),
        ("llm", "inkwell.llm.v1.LlmService"),
    ):
        assert f"service='{service_name}'" in " ".join(services[name]["healthcheck"]["test"]), name
    assert "/readyz" in " ".join(gateway["healthcheck"]["test"])
