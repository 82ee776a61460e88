"""pytest hooks only: options, marker, collection, items, fixture and the summary table.

Nothing here imports NumPy or a framework at load time; the engine loads when the first
lossguard item runs, or when the `lossguard` fixture is used.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_lossguard.configure import (
    INI_DEFAULTS,
    MARKER,
    base_options,
    check_report_path,
    enabled,
    idle_flags,
    off_warning,
    project_settings,
    tell_and_stop,
)
from pytest_lossguard.deadline import GIVE_UP
from pytest_lossguard.items import Guard, LossguardItem, ScanRoot
from pytest_lossguard.settings import marks_of, own_marks
from pytest_lossguard.summary import Summary

_SEEN = pytest.StashKey[set[str]]()
_MARKED = pytest.StashKey[set[int]]()


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
    GIVE_UP.append(functools.partial(tell_and_stop, config))
    if enabled(config):
        base_options(config)  # malformed ini options are a usage error before collection
        if not hasattr(config, "workerinput"):
            check_report_path(config)  # so is a report path nothing can be written to
    elif idle_flags(config) and not hasattr(config, "workerinput"):
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(off_warning(idle_flags(config))), stacklevel=2)


def pytest_unconfigure(config: pytest.Config) -> None:
    GIVE_UP[:] = [tell for tell in GIVE_UP
                  if not (isinstance(tell, functools.partial) and config in tell.args)]


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
    from pytest_lossguard.discovery import Problems, discover

    problems: Problems = []  # a module that cannot be imported: an error item, the rest go on
    candidates = discover(list(dict.fromkeys(packages)), project_settings(config).targets,
                          problems)
    marked = config.stash[_MARKED]
    root = ScanRoot.from_parent(session, name="lossguard-scan", path=config.rootpath,
                                nodeid="lossguard-scan")
    for where, why in problems:
        items.append(LossguardItem.from_parent(root, name=f"{where}[lossguard]", target=None,
                                               options={}, problem=f"--lossguard-scan: {why}"))
    for candidate in candidates:
        if id(candidate.obj) in marked:
            continue
        items.append(LossguardItem.from_parent(
            root, name=f"{candidate.id}[lossguard]",
            path=_source_file(candidate.obj, config.rootpath), target=candidate.obj, options={},
            target_id=candidate.id, skipped=candidate.skipped))


def _source_file(obj: Any, default: Path) -> Path:
    try:
        found = inspect.getsourcefile(obj if inspect.isclass(obj) or inspect.isfunction(obj)
                                     else type(obj))
    except TypeError:
        found = None
    return Path(found) if found else default


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
    try:
        marks = _own_marks(name, obj)
    except Exception:  # an object whose __getattr__ raises carries no mark
        marks = []
    if not marks:
        return result
    nodes = [] if result is None else list(result) if isinstance(result, list) else [result]
    for mark in marks:
        try:
            nodes.extend(_mark_items(collector, name, obj, mark, result))
        except Exception as exc:  # one bad mark is one error item, never a lost module
            nodes.append(_problem(collector, name, f"@pytest.mark.lossguard on {name} cannot be "
                                  f"read: {type(exc).__name__}: {exc}"))
    return nodes or result


def _problem(collector: pytest.Collector, name: str, problem: str) -> LossguardItem:
    """An error item that says what is wrong with a mark, and what to write instead."""
    return LossguardItem.from_parent(collector, name=f"{name}[lossguard]", target=None,
                                     options={}, problem=problem)


def _mark_items(
    collector: pytest.Collector, name: str, obj: object, mark: pytest.Mark, result: Any,
) -> list[pytest.Item]:
    """The items of one lossguard mark on `obj` (collected as `name`)."""
    options = {k: v for k, v in mark.kwargs.items() if k != "targets"}
    if mark.args:
        return [_problem(collector, name, (
            f"@pytest.mark.lossguard on {name} got positional arguments; pass targets "
            "by keyword, targets=[...], since pytest takes a lone positional callable "
            "as the object being marked"))]
    if "targets" in mark.kwargs:
        targets = mark.kwargs["targets"]
        if targets is not None and not isinstance(targets, (list, tuple)):
            from pytest_lossguard.introspect import describe

            label = describe(targets)
            return [_problem(collector, name, (
                f"@pytest.mark.lossguard on {name}: targets={label} is not a list; "
                f"write targets=[{label}]"))]
        if not targets:
            return [_problem(collector, name, (
                f"@pytest.mark.lossguard on {name}: targets={targets!r} names no target; list "
                "what to probe, targets=[my_loss], or remove the mark"))]
        owner = "" if name == "pytestmark" else name
        return list(_items(collector, list(targets), options, owner))
    if result is None and name != "pytestmark":
        return list(_items(collector, [obj], options))
    if isinstance(result, pytest.Class) or inspect.isclass(obj):
        return [_problem(collector, name, (
            f"@pytest.mark.lossguard on test class {name} does nothing: lossguard probes losses "
            "and models, not tests; mark the loss itself, or list it on a test function, "
            "@pytest.mark.lossguard(targets=[my_loss])"))]
    if result is not None:
        return [_problem(collector, name, (
            f"@pytest.mark.lossguard on test {name} names no target, so it does nothing; list "
            "what to probe, @pytest.mark.lossguard(targets=[my_loss]), or mark the loss itself"))]
    return []


def _items(
    collector: pytest.Collector, targets: list[Any], options: dict[str, Any], owner: str = "",
) -> Iterator[pytest.Item]:
    """One item per target not yet collected here with these options.

    Node ids: `name[lossguard]` for a marked object or module-level targets, and
    `test_fn[lossguard-name]` for targets listed on a test function.
    """
    from pytest_lossguard.introspect import describe

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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A target that cannot be checked fails in setup: show it as the item words it (pytest
    words setup errors itself, without asking the item). A scanned target that is skipped
    points at its own file, not at the line of lossguard's that skipped it."""
    report = yield
    if isinstance(item, LossguardItem) and call.when == "setup" and call.excinfo is not None \
            and report.failed:
        report.longrepr = item.repr_failure(call.excinfo)
    if isinstance(item, LossguardItem) and report.skipped and isinstance(report.longrepr, tuple):
        from pytest_lossguard.introspect import source

        path, _, line = source(item.target).rpartition(":")
        if path:
            report.longrepr = (path, int(line), report.longrepr[2])
    return report


@pytest.fixture
def lossguard(request: pytest.FixtureRequest) -> Guard:
    """Check losses from inside a test: lossguard.check(target, **options)."""
    return Guard(request.config, request.node)
