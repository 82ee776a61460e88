"""The session's lossguard summary: rows gathered from test reports (so xdist workers count),
the terminal table, and the JSON report, registered as a plugin object."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_lossguard.configure import enabled, report_path
from pytest_lossguard.items import PROPERTY
from pytest_lossguard.text import prefixed


class Summary:
    """Collects per-target rows and prints the table / writes the JSON at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: list[dict[str, Any]] = []
        self.unwritten = ""  # why the JSON report could not be written, shown after the table

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and report.failed):
            self.rows.extend(json.loads(str(value)) for key, value in report.user_properties
                             if key == PROPERTY)

    def pytest_sessionfinish(self) -> None:
        """Write the JSON report (the controller only, with every worker's rows)."""
        target = report_path(self.config)
        if target is None or not enabled(self.config) or hasattr(self.config, "workerinput"):
            return
        from pytest_lossguard.json_report import document

        text = json.dumps(document(self.rows), indent=2) + "\n"
        try:  # the path was checked at start-up; whatever changed since, the output goes on
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        except OSError as exc:
            self.unwritten = prefixed(f"the JSON report could not be written to {target}: {exc}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        self._table(terminalreporter)
        if self.unwritten:
            terminalreporter.write_line(self.unwritten, yellow=True)

    def _table(self, terminalreporter: Any) -> None:
        if not self.rows or hasattr(self.config, "workerinput"):
            return
        from pytest_lossguard.render import summary_table

        terminalreporter.write_sep("=", "lossguard")
        verbose = self.config.get_verbosity() > 0 or len(self.rows) <= 20
        tw = self.config.get_terminal_writer()  # colours by --color and NO_COLOR
        for line in summary_table(self.rows, verbose,
                                  lambda text, colour: tw.markup(text, **{colour: True})):
            terminalreporter.write_line(line)
