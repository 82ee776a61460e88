"""The JSON report: one entry per target (plain data, so it crosses xdist) and the document."""

from __future__ import annotations

import platform
from typing import Any

from pytest_lossguard.findings import VERDICTS, Report, Verdict

SCHEMA = 1
# Distributions whose versions a JSON report records, read without importing them.
_DISTRIBUTIONS = ("pytest-lossguard", "pytest", "numpy", "keras", "tensorflow", "tf-keras")
# Other names a distribution is installed under; the first one installed gives the version.
_ALIASES = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-macos",
                           "tensorflow-intel", "tf-nightly", "tf-nightly-cpu")}


def entry(name: str, report: Report | None, error: str = "",
          seconds: float = 0.0) -> dict[str, Any]:
    """One target's line in the summary table and the JSON report; `seconds` is the time spent
    when there is no report (a target that timed out or raised)."""
    counts = report.counts() if report else {v: int(v == Verdict.ERROR.value) for v in VERDICTS}
    return {"nodeid": name, "ok": bool(report and report.ok), "message": error,
            "seconds": report.seconds if report else seconds, **counts,
            "report": report.as_dict() if report else None}


def document(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON report: environment, every target's entry, and totals."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _DISTRIBUTIONS:
        versions[name] = None
        for installed in _ALIASES.get(name, (name,)):
            try:
                versions[name] = version(installed)
            except PackageNotFoundError:
                continue
            break
    rows = sorted(entries, key=lambda e: e["nodeid"])
    totals = {key: sum(e[key] for e in rows) for key in (*VERDICTS, "seconds")}
    return {"schema": SCHEMA, "versions": versions, "targets": rows,
            "totals": {"targets": len(rows), "failed": sum(not e["ok"] for e in rows), **totals}}
