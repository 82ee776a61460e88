"""pytest hooks only: options, marker, collection, items, fixture and the summary table.

Nothing here imports NumPy or a framework at load time; the engine loads when the first
lossguard item runs, or when the `lossguard` fixture is used.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_lossguard.errors import LossguardError, LossguardWarning, OptionNeeded
from pytest_lossguard.options import Options
from pytest_lossguard.settings import marks_of, own_marks

if TYPE_CHECKING:
    from pytest_lossguard.report import Report
    from pytest_lossguard.settings import Settings

MARKER = "lossguard"
PROPERTY = "lossguard"
# Marker kwargs that may also be given as ini defaults: lossguard_<key>.
INI_DEFAULTS = {
    "output_shape": "per-sample output shape of losses, e.g. (1,)",
    "domain": "label domain: real, probability, binary, one-hot or sparse",
    "batch_size": "probe batch size (> 1, differing from every per-sample axis)",
    "probes": "probes to run: default, label-dtype, coincident-batch, ... (space separated)",
    "rtol": "relative tolerance of the value comparison (default: by dtype)",
    "atol": "absolute tolerance of the value comparison (default: by dtype)",
    "seed": "seed of the probe values",
    "backend": "tensor library to feed targets: auto, numpy, tensorflow or keras",
    "timeout": "seconds one target may take before it is an error (0: no limit)",
}
_SEEN = pytest.StashKey[set[str]]()
_MARKED = pytest.StashKey[set[int]]()
_BASE = pytest.StashKey[Options]()
_SETTINGS = pytest.StashKey["Settings"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lossguard", "lossguard: loss broadcasting checks")
    group.addoption("--lossguard", action="store_true", default=None,
                    help="probe targets marked with @pytest.mark.lossguard (ini: lossguard)")
    group.addoption("--lossguard-strict", action="store_true", default=None,
                    help="also fail probes that raise on shapes Keras aligns "
                         "(ini: lossguard_strict)")
    group.addoption("--lossguard-scan", metavar="PKG", action="append", default=None,
                    help="also probe every unmarked candidate in package or module PKG "
                         "(repeatable; ini: lossguard_scan)")
    group.addoption("--lossguard-report", metavar="PATH", default=None,
                    help="write a JSON report of every target and probe to PATH "
                         "(ini: lossguard_report)")
    parser.addini("lossguard", "always probe lossguard targets, as --lossguard does",
                  type="bool", default=False)
    parser.addini("lossguard_strict", "as --lossguard-strict", type="bool", default=False)
    parser.addini("lossguard_report", "as --lossguard-report", type="string", default=None)
    parser.addini("lossguard_scan", "as --lossguard-scan: packages to scan", type="args",
                  default=None)
    for key, text in INI_DEFAULTS.items():
        if key == "probes":
            parser.addini(f"lossguard_{key}", f"default {text}", type="args", default=None)
        else:
            parser.addini(f"lossguard_{key}", f"default {text}", type="string", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(targets=None, **options): probe a loss, metric, Loss or Model for silent "
        "label/prediction broadcasting (run with --lossguard); see pytest-lossguard's README",
    )
    config.stash[_SEEN] = set()
    config.stash[_MARKED] = set()
    config.pluginmanager.register(Summary(config), "lossguard-summary")
    if enabled(config):
        config.stash[_BASE] = base_options(config)


def _flag(config: pytest.Config, name: str) -> bool:
    """A command-line switch, else its ini twin of the same name."""
    value = config.getoption(name)
    return bool(value) if value is not None else bool(config.getini(name))


def enabled(config: pytest.Config) -> bool:
    """--lossguard, or the `lossguard` ini switch."""
    return _flag(config, "lossguard")


def base_options(config: pytest.Config) -> Options:
    """Options from ini keys and --lossguard-strict, under every marker's own kwargs."""
    if _BASE in config.stash:
        return config.stash[_BASE]
    values: dict[str, Any] = dict(project_settings(config).defaults)
    if _flag(config, "lossguard_strict"):
        values["strict"] = True
    for key in INI_DEFAULTS:
        raw = config.getini(f"lossguard_{key}")
        if not raw:
            continue
        if key in ("domain", "backend", "probes"):
            values[key] = raw
            continue
        try:
            values[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise pytest.UsageError(
                f"ini lossguard_{key} = {raw!r} is not a Python literal, e.g. (1,) or 1e-5"
            ) from None
    try:
        return Options.build(**values)
    except LossguardError as exc:
        raise pytest.UsageError(f"lossguard ini options: {exc}") from None


def project_settings(config: pytest.Config) -> Settings:
    """`[tool.lossguard]` of the nearest pyproject.toml, read once per session."""
    if _SETTINGS not in config.stash:
        from pytest_lossguard.settings import load

        try:
            config.stash[_SETTINGS] = load(config.rootpath)
        except LossguardError as exc:
            raise pytest.UsageError(f"lossguard: {exc}") from None
    return config.stash[_SETTINGS]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item],
) -> None:
    """--lossguard-scan: one item per unmarked candidate, after the marked ones."""
    if not enabled(config):
        return
    given = config.getoption("lossguard_scan") or config.getini("lossguard_scan") or []
    packages = [*given, *project_settings(config).scan]
    if not packages:
        return
    from pytest_lossguard.discovery import discover

    try:
        candidates = discover(list(dict.fromkeys(packages)))
    except ImportError as exc:
        raise pytest.UsageError(f"--lossguard-scan: cannot import {exc.name}: {exc}") from None
    marked = config.stash[_MARKED]
    root = ScanRoot.from_parent(session, name="lossguard-scan", path=config.rootpath,
                                nodeid="lossguard-scan")
    for candidate in candidates:
        if id(candidate.obj) in marked:
            continue
        item = LossguardItem.from_parent(root, name=f"{candidate.id}[lossguard]",
                                         path=_source_file(candidate.obj, config.rootpath),
                                         target=candidate.obj, options={},
                                         target_id=candidate.id)
        if candidate.skipped:
            item.add_marker(pytest.mark.skip(reason=f"lossguard: {candidate.skipped}"))
        items.append(item)


def _source_file(obj: Any, default: Path) -> Path:
    try:
        found = inspect.getsourcefile(obj if inspect.isclass(obj) or inspect.isfunction(obj)
                                     else type(obj))
    except TypeError:
        found = None
    return Path(found) if found else default


class ScanRoot(pytest.Collector):
    """The parent of --lossguard-scan items: ids read lossguard-scan::module:name[lossguard]."""

    def collect(self) -> list[pytest.Item]:
        return []


def _own_marks(name: str, obj: Any) -> list[pytest.Mark]:
    """Lossguard marks set on `obj` itself, or a module's `pytestmark` when name says so."""
    marks = own_marks(obj) if name == "pytestmark" else marks_of(obj)
    return [mark for mark in marks if isinstance(mark, pytest.Mark)]


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, Any, Any]:
    result = yield
    if not enabled(collector.config) or not isinstance(collector, (pytest.Module, pytest.Class)):
        return result
    marks = _own_marks(name, obj)
    if not marks:
        return result
    nodes = [] if result is None else list(result) if isinstance(result, list) else [result]
    for mark in marks:
        options = {k: v for k, v in mark.kwargs.items() if k != "targets"}
        if mark.args:
            nodes.append(LossguardItem.from_parent(
                collector, name=f"{name}[lossguard]", target=None, options={}, problem=(
                    f"@pytest.mark.lossguard on {name} got positional arguments; pass targets "
                    "by keyword, targets=[...], since pytest takes a lone positional callable "
                    "as the object being marked")))
        elif "targets" in mark.kwargs:
            owner = "" if name == "pytestmark" else name
            nodes.extend(_items(collector, list(mark.kwargs["targets"] or []), options, owner))
        elif result is None and name != "pytestmark":
            nodes.extend(_items(collector, [obj], options))
    return nodes or result


def _items(
    collector: pytest.Collector, targets: list[Any], options: dict[str, Any], owner: str = "",
) -> Iterator[pytest.Item]:
    """One item per target not yet collected here with these options.

    Node ids: `name[lossguard]` for a marked object or module-level targets, and
    `test_fn[lossguard-name]` for targets listed on a test function.
    """
    from pytest_lossguard.targets import describe

    seen = collector.config.stash[_SEEN]
    collector.config.stash[_MARKED].update(id(target) for target in targets)
    for target in targets:
        # Session-wide: a marked loss imported into several test modules is probed once.
        key = f"{id(target)}:{options!r}"
        if key in seen:
            continue
        seen.add(key)
        label = describe(target)
        stem = f"{owner}[lossguard-{label}" if owner else f"{label}[lossguard"
        node_name = f"{stem}]"
        for n in itertools.count(2):
            if f"{collector.nodeid}::{node_name}" not in seen:
                break
            node_name = f"{stem}-{n}]"
        seen.add(f"{collector.nodeid}::{node_name}")
        yield LossguardItem.from_parent(collector, name=node_name, target=target, options=options)


class Failed(Exception):
    """A report that did not pass; the item shows the report instead of a traceback."""

    def __init__(self, report: Report) -> None:
        super().__init__(str(report))
        self.report = report


class LossguardItem(pytest.Item):
    """One marked target: probed in setup, judged in call, recorded for the summary."""

    def __init__(
        self, *, target: Any, options: dict[str, Any], problem: str = "", target_id: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.options = options
        self.problem = problem
        if not target_id and target is not None:
            from pytest_lossguard.discovery import target_id as key

            module = self.getparent(pytest.Module)
            target_id = key(target, module.obj if module is not None else None)
        self.target_id = target_id
        self.report: Report | None = None
        self.add_marker(MARKER)

    def setup(self) -> None:
        __tracebackhide__ = True
        from pytest_lossguard.oracle import probe
        from pytest_lossguard.report import entry

        override = project_settings(self.config).targets.get(self.target_id, {})
        try:
            if self.problem:
                raise LossguardError(self.problem)
            options = Options.build(base_options(self.config), **{**override, **self.options})
            self.report = probe(self.target, options)
        except LossguardError as exc:
            if isinstance(exc, OptionNeeded) and isinstance(self.parent, ScanRoot):
                pytest.skip(f"lossguard: {exc.for_scan(self.target_id)}")  # unmarked code
            self.user_properties.append((PROPERTY, json.dumps(entry(self.nodeid, None, str(exc)))))
            raise
        self.user_properties.append((PROPERTY, json.dumps(entry(self.nodeid, self.report))))
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
        if isinstance(excinfo.value, Failed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def _repr_failure_py(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None,
    ) -> Any:
        """Setup errors: lossguard's reason first (the summary line shows it), then the user's
        own traceback when their code raised, with no frames of lossguard's or pytest's."""
        error = excinfo.value
        if not isinstance(error, LossguardError):
            return super()._repr_failure_py(excinfo, style=style)
        text = str(error) if str(error).startswith("lossguard: ") else f"lossguard: {error}"
        if error.__cause__ is None:
            return text
        cause = pytest.ExceptionInfo.from_exception(error.__cause__)
        if not len(self._traceback_filter(cause)):
            return text  # raised by lossguard's own checks: the reason says it all
        return f"{text}\n\n{super()._repr_failure_py(cause, style=style)}"

    def _traceback_filter(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
        """Drop pytest's and lossguard's own frames: users see their code and the verdict."""
        own = Path(__file__).parent
        return excinfo.traceback.filter(
            lambda entry: own not in Path(str(entry.path)).parents
            and "_pytest" not in str(entry.path) and "pluggy" not in str(entry.path)
        )

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"lossguard: {self.name}"


class Summary:
    """Collects per-target stats from reports (so xdist workers count) and prints the table."""

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
        from pytest_lossguard.report import document

        target = Path(self.config.rootpath, path) if not Path(path).is_absolute() else Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document(self.rows), indent=2) + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows or hasattr(self.config, "workerinput"):
            return
        from pytest_lossguard.report import summary_table

        terminalreporter.write_sep("=", "lossguard")
        verbose = self.config.get_verbosity() > 0 or len(self.rows) <= 20
        for line in summary_table(self.rows, verbose):
            terminalreporter.write_line(line)


class Guard:
    """The `lossguard` fixture: the engine, failing the test with the report when not ok."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def check(self, target: Any, **options: Any) -> Report:
        """Probe `target`; fail the calling test with the failure block unless it is ok.

        Options: the call's keywords over the target's own mark, its `[tool.lossguard.targets]`
        entry and the ini defaults, as for a collected item. A target that cannot be checked
        fails the test with the reason too.
        """
        __tracebackhide__ = True
        from pytest_lossguard.discovery import target_id
        from pytest_lossguard.oracle import probe
        from pytest_lossguard.settings import options_for

        try:
            key = target_id(target, inspect.getmodule(target))
            base = options_for(key, target, base_options(self.config),
                               project_settings(self.config))
            report = probe(target, Options.build(base, **options))
        except LossguardError as exc:
            pytest.fail(f"lossguard: {exc}", pytrace=False)
        if not report.ok:
            pytest.fail(str(report), pytrace=False)
        return report


@pytest.fixture
def lossguard(request: pytest.FixtureRequest) -> Guard:
    """Check losses from inside a test: lossguard.check(target, **options)."""
    return Guard(request.config)
