"""The session's lossguard summary: rows gathered from test reports (so xdist workers count),
the terminal table, and the JSON report, registered as a plugin object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_lossguard.configure import enabled
from pytest_lossguard.items import PROPERTY


class Summary:
    """Collects per-target rows and prints the table / writes the JSON at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and report.failed):
            self.rows.extend(json.loads(str(value)) for key, value in report.user_properties
                             if key == PROPERTY)

    def pytest_sessionfinish(self) -> None:
        """Write the JSON report (the controller only, with every worker's rows)."""
        path = self.config.getoption("lossguard_report") or self.config.getini("lossguard_report")
        if not path or not enabled(self.config) or hasattr(self.config, "workerinput"):
            return
        from pytest_lossguard.json_report import document

        target = Path(self.config.rootpath, path) if not Path(path).is_absolute() else Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document(self.rows), indent=2) + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows or hasattr(self.config, "workerinput"):
            return
        from pytest_lossguard.render import summary_table

        terminalreporter.write_sep("=", "lossguard")
        verbose = self.config.get_verbosity() > 0 or len(self.rows) <= 20
        tw = self.config.get_terminal_writer()  # colours by --color and NO_COLOR
        for line in summary_table(self.rows, verbose,
                                  lambda text, colour: tw.markup(text, **{colour: True})):
            terminalreporter.write_line(line)
