"""The session's lossguard summary: rows gathered from test reports (so xdist workers count),
the terminal table, and the JSON report, registered as a plugin object."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pytest_lossguard.configure import enabled, report_path
from pytest_lossguard.items import PROPERTY, LossguardItem

# A lossguard item's node id: `name[lossguard]`, `test_fn[lossguard-name]`, `...[lossguard-2]`.
_ITEM = re.compile(r"\[lossguard(-[^\]]*)?\]$")


class Summary:
    """Collects per-target rows and prints the table / writes the JSON at the end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: list[dict[str, Any]] = []
        self.collected: set[str] = set()  # every lossguard item's node id, run or not
        self.skipped: set[str] = set()
        self.taken: dict[str, int] = {}  # rows taken from each test's reports so far
        self.interrupted = False
        self.started = False  # a lossguard item began to run
        self.unwritten = ""  # why the JSON report could not be written, shown after the table

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected.update(item.nodeid for item in session.items
                              if isinstance(item, LossguardItem))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Under xdist the controller collects nothing itself: the workers' ids say."""
        self.collected.update(nodeid for nodeid in ids if _ITEM.search(nodeid))

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        setup_only = self.config.getoption("setuponly", False) \
            or self.config.getoption("setupplan", False)  # items call no target then
        self.started = self.started or (nodeid in self.collected and not setup_only)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Take the rows a report carries that no earlier phase of its test did: an item's from
        setup, a fixture's from whichever phase checked (teardown too)."""
        rows = [json.loads(str(value)) for key, value in report.user_properties
                if key == PROPERTY]
        self.rows.extend(rows[self.taken.get(report.nodeid, 0):])
        self.taken[report.nodeid] = len(rows)
        if rows:
            return
        if report.skipped:  # a scanned candidate that needs an option has a row; others not
            self.skipped.add(report.nodeid)
        elif report.when not in ("setup", "teardown", "call") and report.failed \
                and report.nodeid in self.collected:  # an xdist worker crashed running it
            from pytest_lossguard.json_report import entry

            self.rows.append(entry(report.nodeid, None, str(report.longrepr)))

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        """Write the JSON report (the controller only, with every worker's rows); a session
        that ran no lossguard item (--collect-only, a -k that selects none) writes nothing."""
        target = report_path(self.config)
        if target is None or not enabled(self.config) or hasattr(self.config, "workerinput") \
                or not (self.rows or self.started):
            return
        from pytest_lossguard.json_report import document, write

        interrupted = self.interrupted or exitstatus == pytest.ExitCode.INTERRUPTED
        # The path was checked at start-up; whatever changed since, the output goes on.
        self.unwritten = write(document(self.rows, self.collected - self.skipped, interrupted),
                               target)

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
