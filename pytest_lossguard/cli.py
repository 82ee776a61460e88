"""The `lossguard` command (and `python -m pytest_lossguard`): discovery plus probing, no pytest.

Exit codes: 0 clean (or nothing to check), 1 findings, 2 usage or import error.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_lossguard import discovery, settings
from pytest_lossguard.errors import LossguardError, OptionNeeded
from pytest_lossguard.json_report import document, entry
from pytest_lossguard.render import ansi, colour_wanted, plain, render, summary_table
from pytest_lossguard.text import prefixed

if TYPE_CHECKING:
    from pytest_lossguard.findings import Report

CLEAN, FINDINGS, USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lossguard",
        description="Find losses, metrics and models that silently broadcast labels against "
                    "predictions. Exit 0: clean; 1: findings; 2: usage or import error.",
    )
    parser.add_argument("targets", nargs="+", metavar="FILE|DIR|MODULE",
                        help="Python files, directories (searched for *.py) or module names")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text: failure blocks and a summary table; json: the JSON report")
    parser.add_argument("--strict", action="store_true", default=None,
                        help="also fail probes that raise on shapes Keras aligns")
    parser.add_argument("--report", metavar="PATH", help="also write the JSON report to PATH")
    return parser


def _files(target: str) -> Iterator[Path]:
    path = Path(target)
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*.py") if not any(
            part.startswith(".") or part == "__pycache__" for part in p.parts))
    elif path.suffix == ".py" and path.is_file():
        yield path


def _sources(targets: list[str]) -> tuple[list[Path], list[str]]:
    """Source files to read first, and the module names to import if any holds a candidate."""
    files: list[Path] = []
    names: list[str] = []
    for target in targets:
        found = list(_files(target))
        if found:
            files.extend(found)
            continue
        if Path(target).exists() or target.endswith(".py"):
            raise LossguardError(f"{target} is neither a Python file nor a directory")
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # module names resolve as `python -m` does
        spec = importlib.util.find_spec(target)
        if spec is None:
            raise LossguardError(f"no module named {target!r}; give a file, a directory, or an "
                                 "importable module name")
        names.append(target)
        locations = spec.submodule_search_locations
        if locations:
            files.extend(p for location in locations for p in _files(location))
        elif spec.origin and spec.origin.endswith(".py"):
            files.append(Path(spec.origin))
    return files, names


def _import_names(files: list[Path], names: list[str]) -> list[str]:
    """Module names for the files (making them importable), plus the names given."""
    result = list(names)
    homes: dict[str, Path] = {}
    for path in files:
        name, folder = discovery.module_name(path)
        if homes.setdefault(name, folder) != folder:
            name = _load_by_path(path)  # a second `losses.py`: the first one owns the name
        elif str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        result.append(name)
    return result


def _load_by_path(path: Path) -> str:
    """Import a file whose module name another file took, under its path from the cwd."""
    path = path.resolve()
    try:
        name = ".".join(path.relative_to(Path.cwd()).with_suffix("").parts)
    except ValueError:
        name = ".".join(path.with_suffix("").parts[1:])
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LossguardError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return name


_ROOT_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def rootdir(targets: list[str]) -> Path:
    """The project root as pytest finds it: from the common ancestor of the paths given (the
    working directory for module names), the nearest folder up with a configuration file."""
    paths = [Path(t).resolve() for t in targets if Path(t).exists()]
    if len(paths) < len(targets):
        paths.append(Path.cwd())
    ancestor = Path(os.path.commonpath(paths))
    ancestor = ancestor if ancestor.is_dir() else ancestor.parent
    for folder in [ancestor, *ancestor.parents]:
        if any((folder / name).is_file() for name in _ROOT_FILES):
            return folder
    return ancestor


def _import_paths(root: Path) -> list[Path]:
    """What pytest puts on sys.path for a project: the rootdir (where a `python -m` run starts
    and a root conftest.py lives) and the `pythonpath` entries of [tool.pytest.ini_options]."""
    paths = [root]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        table = settings.read_toml(pyproject).get("tool", {}).get("pytest", {})
        extra = table.get("ini_options", {}).get("pythonpath", [])
        paths.extend(root / entry for entry in ([extra] if isinstance(extra, str) else extra))
    return paths


def _run(args: argparse.Namespace) -> int:
    config = settings.load(Path.cwd())
    for path in reversed(_import_paths(rootdir(args.targets))):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))  # imports resolve as under pytest and `python -m`
    files, names = _sources(args.targets)
    if not names and not any(discovery.scan_source(p.read_text()) for p in files):
        if args.format == "json":
            print(json.dumps(document([]), indent=2))
        else:
            print(prefixed(f"no candidate in {len(files)} file(s); nothing to check"))
        return CLEAN
    # Only now that something is to be probed do NumPy and the frameworks load.
    from pytest_lossguard.engine import probe

    candidates = discovery.discover(_import_names(files, names), config.targets)
    base = settings.base(config, {"strict": True} if args.strict else {})
    entries: list[dict[str, Any]] = []
    blocks: list[str | Report] = []
    markup = ansi if colour_wanted(sys.stdout.isatty(), os.environ) else plain
    for candidate in candidates:
        if candidate.skipped:
            blocks.append(prefixed(f"skipped {candidate.id} ({candidate.reason}): "
                                   f"{candidate.skipped}"))
            continue
        try:
            options = settings.layered(candidate.id, candidate.obj, base, config)
            report = probe(candidate.obj, options)
        except OptionNeeded as exc:
            blocks.append(prefixed(f"skipped {candidate.id}: {exc.for_scan(candidate.id)}"))
            continue
        except LossguardError as exc:
            entries.append(entry(candidate.id, None, str(exc)))
            blocks.append(prefixed(f"{candidate.id}: {exc}"))
            continue
        entries.append(entry(candidate.id, report))
        if not report.ok:
            blocks.append(report)
    doc = document(entries)
    if args.report:
        Path(args.report).write_text(json.dumps(doc, indent=2) + "\n")
    if args.format == "json":
        print(json.dumps(doc, indent=2))
    else:
        table = summary_table(entries, verbose=True, markup=markup)
        print("\n\n".join([*(b if isinstance(b, str) else render(b, markup) for b in blocks),
                            "\n".join(table)]))
    return FINDINGS if doc["totals"]["failed"] else CLEAN


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (LossguardError, ImportError, SyntaxError, OSError) as exc:
        reason = str(exc) if isinstance(exc, LossguardError) else f"{type(exc).__name__}: {exc}"
        print(prefixed(reason), file=sys.stderr)
        return USAGE
