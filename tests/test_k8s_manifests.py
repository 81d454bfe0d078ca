"""deploy/k8s renders with kustomize and every object validates offline against the Kubernetes schemas.

Rendering uses `kubectl kustomize` (the kubectl Debian package ships kustomize; .ci/run installs
it); validation uses kubernetes-validate's bundled JSON schemas in strict mode (unknown fields
fail). On top of the schemas, the policies the README promises are checked object by object.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.32.0"
COMPONENTS = {
    "auth": ("inkwell.auth.v1.AuthService", 50051),
    "llm": ("inkwell.llm.v1.LlmService", 50052),
    "index": ("inkwell.index.v1.IndexService", 50053),
    "gateway": (None, 8000),
}


def render_dir(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed: apt-get install kubectl"
    done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(render_dir(K8S / "overlays" / overlay))


def find(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"].startswith(name):
            return doc
    raise AssertionError(f"no {kind} {name}")


def schema_errors(docs: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> list[str]:
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    return errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates(overlay: str) -> None:
    docs = render(overlay)
    assert len(docs) > 20
    assert schema_errors(docs) == []


def test_a_schema_error_is_caught(tmp_path: Path) -> None:
    """The validator is not a rubber stamp: a misspelt field in a copy of the base fails."""
    shutil.copytree(K8S / "base", tmp_path / "base")
    auth = tmp_path / "base" / "auth.yaml"
    auth.write_text(auth.read_text().replace("readinessProbe:", "readinesProbe:", 1))
    errors = schema_errors(render_dir(tmp_path / "base"))
    assert any("readinesProbe" in error for error in errors), errors


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("component", list(COMPONENTS))
def test_each_process_is_locked_down_and_probed(overlay: str, component: str) -> None:
    docs = render(overlay)
    service_name, port = COMPONENTS[component]
    deployment = find(docs, "Deployment", component)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["serviceAccountName"] == component
    assert find(docs, "ServiceAccount", component)["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"requests", "limits"} <= set(container["resources"])
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/tmp", "/data"} <= mounts, "a read-only root needs writable /tmp and data dirs"
    if service_name:
        assert container["readinessProbe"]["grpc"] == {"port": port, "service": service_name}
        assert container["livenessProbe"]["grpc"] == {"port": port, "service": ""}
        headless = find(docs, "Service", f"{component}-headless")
        assert headless["spec"]["clusterIP"] == "None"
    else:
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    hpa = find(docs, "HorizontalPodAutoscaler", component)
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    pdb = find(docs, "PodDisruptionBudget", component)
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    # A PDB that can never be satisfied blocks node drains forever.
    assert pdb["spec"].get("minAvailable", 0) < hpa["spec"]["minReplicas"] or "maxUnavailable" in pdb["spec"]


def _allowed_callers(policy: dict[str, Any]) -> set[str] | None:
    """Components allowed in by an ingress policy; None means any source."""
    callers: set[str] = set()
    for rule in policy["spec"].get("ingress", []):
        if "from" not in rule:
            return None
        callers |= {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for peer in rule["from"]}
    return callers


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_admit_only_callers(overlay: str) -> None:
    docs = render(overlay)
    deny = find(docs, "NetworkPolicy", "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    expected = {"gateway": None, "auth": {"gateway", "llm", "index"}, "llm": {"gateway"}, "index": {"gateway"}}
    for component, callers in expected.items():
        assert _allowed_callers(find(docs, "NetworkPolicy", component)) == callers, component
    # External HTTPS only where an upstream lives: Clerk (auth) and the Hugging Face router (llm).
    for component in COMPONENTS:
        egress = find(docs, "NetworkPolicy", component)["spec"]["egress"]
        external = any("ipBlock" in peer for rule in egress for peer in rule.get("to", []))
        assert external == (component in ("auth", "llm")), component


def test_production_by_default_and_no_secret_values_committed() -> None:
    prod, dev = render("prod"), render("dev")
    assert find(prod, "ConfigMap", "inkwell-config")["data"]["INKWELL_ENV"] == "production"
    assert find(dev, "ConfigMap", "inkwell-config")["data"]["INKWELL_ENV"] == "development"
    assert not [doc for doc in prod if doc["kind"] == "Secret"], "prod secrets are created out of band"
    for secret in (doc for doc in dev if doc["kind"] == "Secret"):
        for key, value in secret.get("data", {}).items():
            assert key == "CLERK_AUTHORIZED_PARTIES" or value == "", f"{secret['metadata']['name']}.{key}"
    for component in ("auth", "gateway"):  # one service key, shared, never per pod
        (container,) = find(prod, "Deployment", component)["spec"]["template"]["spec"]["containers"]
        refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") for e in container["env"]}
        assert refs["INKWELL_SERVICE_KEY"] == "inkwell-service-key", component
    config = find(prod, "ConfigMap", "inkwell-config")["data"]
    assert config["INKWELL_AUTH_ADDR"] == "dns:///auth-headless:50051"
    assert int(config["INKWELL_GRPC_MAX_CONNECTION_AGE_S"]) > 0
