"""pytest items for targets, and the `lossguard` fixture's engine handle.

An item probes its target in setup (so a target that cannot be checked is an error, not a
failure), judges in call, and records its row for the summary as a user property, which
crosses xdist with the test report.
"""

from __future__ import annotations

import inspect
import json
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_lossguard.configure import MARKER, enabled, options_for
from pytest_lossguard.errors import LossguardError, LossguardWarning, NotProbed
from pytest_lossguard.text import prefixed

if TYPE_CHECKING:
    from pytest_lossguard.findings import Report

PROPERTY = "lossguard"
_OWN = Path(__file__).parent


class Failed(Exception):
    """A report that did not pass; the item shows the report instead of a traceback."""

    def __init__(self, report: Report) -> None:
        super().__init__(str(report))
        self.report = report


class Block:
    """A failure block as pytest shows it: verdict words coloured by the terminal writer (which
    honours --color and NO_COLOR), plain as text (junitxml, xdist, longreprtext)."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def __str__(self) -> str:
        return str(self.report)

    def toterminal(self, tw: Any) -> None:
        from pytest_lossguard.render import render

        tw.line(render(self.report, lambda text, colour: tw.markup(text, **{colour: True})))


class ScanRoot(pytest.Collector):
    """The parent of --lossguard-scan items: ids read lossguard-scan::module:name[lossguard]."""

    def collect(self) -> list[pytest.Item]:
        return []


def _user_frames(excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
    """The traceback without pytest's, pluggy's and lossguard's own frames (nor hidden ones):
    users see their code and the verdict."""
    return excinfo.traceback.filter(excinfo).filter(
        lambda entry: _OWN not in Path(str(entry.path)).parents
        and "_pytest" not in str(entry.path) and "pluggy" not in str(entry.path)
    )


def _row(nodeid: str, report: Report | None, error: str = "",
         seconds: float = 0.0) -> tuple[str, str]:
    from pytest_lossguard.json_report import entry

    return PROPERTY, json.dumps(entry(nodeid, report, error, seconds))


class LossguardItem(pytest.Item):
    """One marked target: probed in setup, judged in call, recorded for the summary."""

    def __init__(
        self, *, target: Any, options: dict[str, Any], problem: str = "", target_id: str = "",
        skipped: str = "", **kwargs: Any,
    ) -> None:
        parent = kwargs.get("parent")
        if kwargs.get("nodeid") is None and parent is not None:
            # Parsed from the string, as pytest's own ids are when the cache provider reads
            # them back (`name[params]`): --lf and --ff then find the item.
            kwargs["nodeid"] = f"{parent.nodeid}::{kwargs['name']}"
        super().__init__(**kwargs)
        self.target = target
        self.options = options
        self.problem = problem
        self.skipped = skipped  # why a scanned candidate cannot be built: skipped, with its row
        if not target_id and target is not None:
            from pytest_lossguard.discovery import target_id as key

            module = self.getparent(pytest.Module)
            target_id = key(target, module.obj if module is not None else None)
        self.target_id = target_id
        self.report: Report | None = None
        self.add_marker(MARKER)

    def _unchecked(self, why: str) -> None:
        """Skip a scanned candidate that cannot be checked, with its row, as the `lossguard`
        command records it: not checked, with what to set."""
        from pytest_lossguard.json_report import skipped

        self.user_properties.append((PROPERTY, json.dumps(skipped(self.nodeid, why))))
        pytest.skip(prefixed(why))

    def setup(self) -> None:
        __tracebackhide__ = True
        if self.config.getoption("setuponly", False) or self.config.getoption("setupplan", False):
            return  # --setup-only / --setup-plan show the setup: no target is called
        if self.skipped:
            self._unchecked(self.skipped)
        from pytest_lossguard.engine import probe
        from pytest_lossguard.introspect import named

        started = time.perf_counter()
        try:
            if self.problem:
                raise LossguardError(self.problem)
            options = options_for(self.config, self.target_id, self.target, self.options)
            self.report = probe(self.target, options, name=named(self.target, self.target_id))
        except BaseException as exc:  # whatever happened (SystemExit too), the target keeps its row
            if isinstance(exc, NotProbed) and isinstance(self.parent, ScanRoot):
                self._unchecked(exc.for_scan(self.target_id))  # unmarked code
            why = str(exc) if isinstance(exc, LossguardError) else f"{type(exc).__name__}: {exc}"
            self.user_properties.append(
                _row(self.nodeid, None, why, time.perf_counter() - started))
            raise
        self.user_properties.append(_row(self.nodeid, self.report))
        error = self.report.error
        if error is not None:
            raise LossguardError(str(self.report)) from error.exception

    def runtest(self) -> None:
        __tracebackhide__ = True
        if self.report is None:
            return
        if not self.report.ok:
            raise Failed(self.report)
        self.add_report_section("call", "lossguard", str(self.report))
        if self.report.restored:
            # Attributed to the target's own line, not to the plugin.
            filename, _, line = self.report.source.rpartition(":")
            warnings.warn_explicit(LossguardWarning(
                f"{self.report.target} changed {', '.join(self.report.restored)}; lossguard put "
                "it back, but the target would leave it changed in your own runs"),
                LossguardWarning, filename or str(self.path), int(line) if line.isdigit() else 0)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None,
    ) -> Any:
        """A failed report reads as its failure block; a target that cannot be checked as
        lossguard's reason first (the summary line shows it), then the user's own traceback
        when their code raised."""
        error = excinfo.value
        if isinstance(error, Failed):
            return Block(error.report)
        if not isinstance(error, LossguardError):
            return super().repr_failure(excinfo, style=style)
        text = prefixed(str(error))
        if error.__cause__ is None:
            return text
        cause = pytest.ExceptionInfo.from_exception(error.__cause__)
        if not len(_user_frames(cause)):
            return text  # raised by lossguard's own checks: the reason says it all
        tbstyle = style or self.config.getoption("tbstyle", "auto")
        shown = cause.getrepr(style="long" if tbstyle == "auto" else tbstyle,
                              showlocals=self.config.getoption("showlocals", False),
                              tbfilter=_user_frames)
        return f"{text}\n\n{shown}"

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, prefixed(self.name)


class Guard:
    """The `lossguard` fixture: the engine, failing the test with the report when not ok. It
    is an assertion, so it checks whether or not lossguard's switch is on; with it on, each
    check is a row of the summary table and the JSON report, named after the test."""

    def __init__(self, config: pytest.Config, node: pytest.Item) -> None:
        self.config = config
        self.node = node
        self.named: dict[str, int] = {}  # row names given so far: a repeat gets -2, -3, ...

    def check(self, target: Any, **options: Any) -> Report:
        """Probe `target`; fail the calling test with the failure block unless it is ok.

        Options: the call's keywords over the target's own mark, its `[tool.lossguard.targets]`
        entry and the ini defaults, as for a collected item. A target that cannot be checked
        fails the test with the reason too.
        """
        __tracebackhide__ = True
        from pytest_lossguard.discovery import target_id
        from pytest_lossguard.engine import probe
        from pytest_lossguard.introspect import describe

        started = time.perf_counter()
        report: Report | None = None
        try:
            key = target_id(target, inspect.getmodule(target))
            report = probe(target, options_for(self.config, key, target, options))
        except (LossguardError, pytest.UsageError) as exc:  # a malformed ini key: every check
            error = str(exc)
        else:
            error = ""
        if enabled(self.config):
            target_name = report.target if report else describe(target)
            times = self.named[target_name] = self.named.get(target_name, 0) + 1
            suffix = f"-{times}" if times > 1 else ""
            name = f"{self.node.nodeid}[lossguard-{target_name}{suffix}]"
            self.node.user_properties.append(
                _row(name, report, error, time.perf_counter() - started))
        problem = prefixed(error) if error else ""
        if problem or report is None:  # failed outside the except block: not chained, once
            pytest.fail(problem, pytrace=False)
        if not report.ok:
            pytest.fail(str(report), pytrace=False)
        return report
