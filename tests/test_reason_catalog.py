"""Every reason code the code can emit is in the one catalog (libs/runtime/reasons.py)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from libs.runtime.reasons import CATALOG, Klass

ROOT = Path(__file__).resolve().parents[1]
CODE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
EMITTERS = {
    "ServiceError",
    "AuthFailure",
    "ApiError",
    "DownloadFailed",
    "Finding",
    "Unavailable",
    "_denied",
    "_refusal",
}
NOT_REASONS = {"JWT", "RS256", "GET", "POST"}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def emitted_codes() -> Iterator[tuple[str, str]]:
    for path in [*ROOT.glob("services/**/*.py"), *ROOT.glob("gateway/**/*.py")]:
        tree = ast.parse(path.read_text())
        where = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in EMITTERS:
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and CODE.match(arg.value):
                        yield arg.value, where
            if isinstance(node, ast.Call) and _name(node.func) == "set" and len(node.args) >= 2:
                arg = node.args[1]  # readiness.set(State.X, "REASON", ...)
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and CODE.match(arg.value):
                    yield arg.value, where
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value in ("reason", "cause")
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        yield value.value, where
            if isinstance(node, ast.Assign) and any(_name(t) == "reason" for t in node.targets):
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    yield node.value.value, where


def test_every_emitted_code_is_in_the_catalog() -> None:
    found = list(emitted_codes())
    assert len(found) > 60, "the scan should see the codes the services emit"
    missing = sorted({f"{code} ({where})" for code, where in found if code not in CATALOG and code not in NOT_REASONS})
    assert missing == []


def test_enum_reasons_are_in_the_catalog() -> None:
    from libs.model_registry.downloads import DownloadState
    from services.index.readiness import State
    from services.llm.classify import ErrorClass
    from services.llm.routes import RouteState

    for value in [*ErrorClass, *(s for s in RouteState if s not in (RouteState.OK, RouteState.UNKNOWN))]:
        assert value.value in CATALOG, value
    assert {"OFFLINE", "NOT_FOUND", "UNAUTHORIZED", "DISK_FULL", "CORRUPT"} <= set(CATALOG)
    # A FAILED download carries the reason `classify` gives it: each one it can give is catalogued.
    import errno

    from huggingface_hub import errors as hf_errors

    from libs.model_registry.hub import DownloadFailed, classify

    failures = [
        hf_errors.OfflineModeIsEnabled("offline"),
        ConnectionError("refused"),
        TimeoutError("slow"),
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("unexpected"),
        DownloadFailed("CORRUPT", "checksum mismatch"),
    ]
    reasons = {classify(exc).reason for exc in failures}
    assert reasons == {"OFFLINE", "DISK_FULL", "DOWNLOAD_FAILED", "CORRUPT"}
    assert reasons <= set(CATALOG), reasons - set(CATALOG)
    # States are not reasons: no state name may pass for a reason code in replies or logs.
    states = {s.value for s in State} | {s.value for s in DownloadState if s is not DownloadState.CANCELLED}
    assert not states & set(CATALOG), states & set(CATALOG)


def test_catalog_entries_are_complete() -> None:
    for code, reason in CATALOG.items():
        assert reason.code == code and CODE.match(code) and len(code) <= 63
        assert reason.subsystem and reason.remedy and reason.severity in ("info", "warning", "error")
        assert isinstance(reason.klass, Klass)
