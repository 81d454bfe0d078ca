"""Render doctor results for a person (grouped, PASS/WARN/FAIL, cause and fix) or a machine."""

from __future__ import annotations

import json

from libs.doctor.gather import Check

MARK = {"PASS": "PASS", "WARN": "WARN", "FAIL": "FAIL"}


def render_text(checks: list[Check]) -> str:
    lines = []
    for area in dict.fromkeys(c.area for c in checks):
        lines.append(f"\n{area}")
        for c in (c for c in checks if c.area == area):
            code = f" [{c.reason}]" if c.reason and c.status != "PASS" else ""
            lines.append(f"  {MARK[c.status]}  {c.name}: {c.cause}{code}")
            if c.status != "PASS" and c.fix:
                lines.append(f"        fix: {c.fix}")
    problems = [c for c in checks if c.status != "PASS"]
    for klass, title in (
        ("CONFIG", "Configuration problems"),
        ("UPSTREAM", "Failing dependencies"),
        ("DEFECT", "Code defects"),
    ):
        found = [c for c in problems if c.klass == klass]
        if found:
            lines.append(f"\n{title}:")
            lines += [f"  - {c.area}/{c.name}: {c.reason or c.status}" for c in found]
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("PASS", "WARN", "FAIL")}
    lines.append(f"\n{counts['PASS']} passed, {counts['WARN']} warnings, {counts['FAIL']} failed")
    return "\n".join(lines).lstrip("\n")


def render_json(checks: list[Check]) -> str:
    return json.dumps(
        {"checks": [c.as_dict() for c in checks], "failed": sum(1 for c in checks if c.status == "FAIL")}, indent=2
    )
