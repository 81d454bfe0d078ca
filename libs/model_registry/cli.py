"""`inkwell models` (a table of every model and its state) and `inkwell models pull NAME`."""

from __future__ import annotations

import sys
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO

from libs.model_registry.downloads import ACTIVE, DownloadState
from libs.model_registry.hub import DownloadFailed
from libs.model_registry.registry import ModelRegistry, ModelRow

BAR_WIDTH = 24


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    if total <= 0:
        return "[" + "." * width + "]"
    filled = min(width, int(width * done / total))
    return "[" + "#" * filled + "." * (width - filled) + f"] {100 * done / total:5.1f}%"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def probe_absent(registry: ModelRegistry) -> dict[str, DownloadFailed | int]:
    """For each model not on disk: its download size, or why it cannot be downloaded (in parallel)."""
    absent = [r.name for r in registry.rows() if r.kind == "local" and r.download_state == "ABSENT"]

    def probe(name: str) -> DownloadFailed | int:
        try:
            return sum(f.size for f in registry.hub.list_files(registry.catalog.models[name]))
        except DownloadFailed as failure:
            return failure

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(absent, pool.map(probe, absent), strict=True))


def render_table(rows: list[ModelRow], probes: dict[str, DownloadFailed | int], available: int) -> str:
    header = ("MODEL", "ROLES", "STATE", "PROGRESS", "RAM", "FITS", "SOURCE / REASON")
    lines = []
    for row in rows:
        state = row.download_state if row.kind == "local" else "REMOTE"
        progress = ""
        detail = row.source
        if row.download_state in {s.value for s in ACTIVE}:
            progress = (
                f"{progress_bar(row.bytes_done, row.bytes_total)} {_size(row.bytes_done)}/{_size(row.bytes_total)}"
            )
        probe = probes.get(row.name)
        if isinstance(probe, DownloadFailed):
            state, detail = "FAILED", f"{probe.reason}: {probe.message}"
        elif isinstance(probe, int):
            detail = f"not downloaded ({_size(probe)}); run: inkwell models pull {row.name}"
        elif row.reason:
            detail = f"{row.reason}: {row.message}"
        if row.kind == "remote":
            detail = f"provider {row.provider}: {row.model_id}"
        ram = f"{row.ram_estimate_bytes / 1024**3:.1f} GiB" if row.ram_estimate_bytes else "-"
        fits = ("yes" if row.fits_in_memory else "NO") if row.kind == "local" else "-"
        lines.append((row.name, ",".join(row.roles) or "-", state, progress or "-", ram, fits, detail))
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines, strict=True)]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [header, *lines]]
    out.append(f"\navailable memory: {available / 1024**3:.1f} GiB")
    return "\n".join(out)


def list_models(registry: ModelRegistry, out: TextIO = sys.stdout) -> int:
    probes = probe_absent(registry)
    print(render_table(registry.rows(), probes, registry.memory()), file=out)
    return 0


def pull(registry: ModelRegistry, name_or_repo: str, out: TextIO = sys.stderr) -> int:
    name = registry.resolve(name_or_repo)
    if name is None:
        print(f"inkwell models pull: {name_or_repo!r} is not in the model registry ({registry.catalog.path})", file=out)
        return 2
    future = registry.downloads.ensure(name)
    interactive = out.isatty()
    last = ""
    while not future.done():
        status = registry.downloads.status(name)
        line = f"{name}: {status.state.value.lower():<11} {progress_bar(status.bytes_done, status.bytes_total)} "
        line += f"{_size(status.bytes_done)}/{_size(status.bytes_total)}"
        if interactive:
            print("\r" + line, end="", file=out, flush=True)
        elif line != last and status.state is not DownloadState.DOWNLOADING:
            print(line, file=out)
        last = line
        futures.wait([future], timeout=0.2)  # redraw the bar five times a second until it finishes
    status = future.result()
    if interactive:
        print(file=out)
    if status.state is DownloadState.READY:
        print(f"{name}: ready ({status.source}) at {status.path}", file=out)
        return 0
    print(f"{name}: {status.state.value} {status.reason}: {status.message}", file=out)
    return 1
