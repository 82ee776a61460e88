"""The JSON report: one entry per target (plain data, so it crosses xdist) and the document."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_lossguard.findings import VERDICTS, Report, Verdict
from pytest_lossguard.text import prefixed

SCHEMA = 1
NOT_RUN = "not run"
SKIPPED = "skipped"
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


def not_run(name: str, why: str = NOT_RUN) -> dict[str, Any]:
    """The row of a target that never ran: collected, but the session stopped first, or found
    by the `lossguard` command but skipped (`why` says so, and what to set)."""
    return {"nodeid": name, "ok": False, "message": why, "seconds": 0.0,
            **{v: 0 for v in VERDICTS}, "report": None}


def skipped(name: str, why: str) -> dict[str, Any]:
    """The row of a candidate that could not be checked: `why` says what to set."""
    return not_run(name, f"{SKIPPED}: {why}")


def unchecked(row: dict[str, Any]) -> bool:
    """A row of a target that ran no probe (not run, or skipped): no report and no counts."""
    return row["report"] is None and not any(row[v] for v in VERDICTS)


def totals(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Each verdict's count and the seconds, summed over rows: the table's last line and the
    report's totals."""
    rows = list(entries)
    return {key: sum(e[key] for e in rows) for key in (*VERDICTS, "seconds")}


def document(entries: list[dict[str, Any]], collected: Iterable[str] = (),
             interrupted: bool = False) -> dict[str, Any]:
    """The JSON report: environment, the session (complete unless interrupted or a collected
    target did not run), every target's entry, and totals."""
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
    ran = {e["nodeid"] for e in entries}
    missing = sorted(set(collected) - ran)
    rows = sorted([*entries, *(not_run(nodeid) for nodeid in missing)], key=lambda e: e["nodeid"])
    return {"schema": SCHEMA, "versions": versions,
            "session": {"complete": not interrupted and not missing,
                        "interrupted": interrupted, "not_run": len(missing)},
            "targets": rows,
            "totals": {"targets": len(rows), "failed": sum(not e["ok"] for e in entries),
                       **totals(rows)}}


def write(doc: dict[str, Any], path: Path) -> str:
    """Write the JSON report to `path`, making its folder; '' when written, else the one line
    that says why not (shown after the summary table, which is printed whatever happens)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n")
    except OSError as exc:
        return prefixed(f"the JSON report could not be written to {path}: {exc}")
    return ""
