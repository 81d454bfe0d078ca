"""Real text for index tests: first paragraphs of Python standard-library docstrings."""

from __future__ import annotations

import importlib
import inspect

MODULES = [
    "json",
    "os.path",
    "shutil",
    "math",
    "statistics",
    "itertools",
    "functools",
    "collections",
    "re",
    "string",
    "textwrap",
    "datetime",
    "random",
    "heapq",
    "bisect",
    "zlib",
    "base64",
    "hashlib",
    "csv",
    "urllib.parse",
    "html",
    "glob",
    "fnmatch",
    "tempfile",
    "difflib",
    "calendar",
    "gzip",
    "uuid",
    "secrets",
    "operator",
]


def stdlib_docstrings(limit: int | None = None) -> list[dict[str, str]]:
    docs: dict[str, dict[str, str]] = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, obj in sorted(vars(module).items()):
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.isclass(obj)):
                continue
            doc = inspect.getdoc(obj) or ""
            first = " ".join(doc.split("\n\n")[0].split())
            if len(first) < 25 or first.startswith(name + "("):
                continue
            doc_id = f"{module_name}.{name}"
            docs.setdefault(doc_id, {"id": doc_id, "text": first, "metadata": {"module": module_name}})
    result = list(docs.values())
    return result[:limit] if limit else result


# Queries with the documents that answer them (any one in the top 3 counts).
QUERIES = {
    "convert an angle from degrees into radians": {"math.radians"},
    "deserialize a JSON document into a Python object": {"json.loads", "json.load"},
    "arithmetic average of the data": {"statistics.mean", "statistics.fmean"},
    "remove common leading whitespace from every line of text": {"textwrap.dedent"},
    "compress data with the zlib library": {"zlib.compress", "zlib.compressobj"},
    "euclidean distance between two points": {"math.dist"},
    "insert an item into a sorted list keeping it sorted": {
        "bisect.insort",
        "bisect.insort_right",
        "bisect.insort_left",
    },
    "pop the smallest item off the heap": {"heapq.heappop"},
    "recursively delete a directory tree": {"shutil.rmtree"},
    "square root of x": {"math.sqrt", "math.isqrt"},
}
