"""Doctor findings for the local models a service uses (its roles), from its own registry."""

from __future__ import annotations

import asyncio

from inkwell.diagnostics.v1 import diagnostics_service_pb2 as pb
from libs.model_registry.cli import probe_absent
from libs.model_registry.registry import ModelRegistry
from libs.runtime.diagnostics import finding

AREA = "models"


async def model_findings(registry: ModelRegistry, roles: frozenset[str], required: frozenset[str]) -> list[pb.Finding]:
    """One row per local model in `roles`. A model that cannot be had is FAIL when its role is
    `required` (the service cannot work without it), WARN otherwise (a fallback exists)."""
    rows = [r for r in registry.rows() if r.kind == "local" and roles.intersection(r.roles)]
    if any(r.download_state == "ABSENT" for r in rows):
        probes = await asyncio.to_thread(probe_absent, registry)
    else:
        probes = {}
    out = []
    for row in rows:
        label = f"{row.name} ({','.join(row.roles) or '-'})"
        fits = "" if row.fits_in_memory else f"; needs {row.ram_estimate_bytes / 1024**3:.1f} GiB (does not fit)"
        probe = probes.get(row.name)
        if row.download_state == "READY":
            out.append(
                finding(
                    AREA,
                    label,
                    "PASS" if row.fits_in_memory else "WARN",
                    f"ready ({row.source}), {row.load_state.lower().replace('_', ' ')}{fits}",
                    "" if row.fits_in_memory else "INSUFFICIENT_MEMORY",
                )
            )
        elif row.download_state in ("QUEUED", "DOWNLOADING", "VERIFYING"):
            done = f" {row.bytes_done}/{row.bytes_total} bytes" if row.bytes_total else ""
            out.append(finding(AREA, label, "WARN", f"{row.download_state.lower()}{done}", "MODEL_DOWNLOADING"))
        elif isinstance(probe, int):
            out.append(
                finding(
                    AREA,
                    label,
                    "WARN",
                    f"not downloaded ({probe / 1e9:.2f} GB); `inkwell models pull {row.name}`{fits}",
                    "NOT_DOWNLOADED",
                )
            )
        else:
            reason = probe.reason if probe is not None else row.reason or "NOT_DOWNLOADED"
            message = probe.message if probe is not None else row.message
            status = "FAIL" if required.intersection(row.roles) else "WARN"
            out.append(finding(AREA, label, status, f"{reason}: {message}", reason))
    return out
