"""The `lossguard` command (and `python -m pytest_lossguard`): discovery plus probing, no pytest.

Exit codes: 0 clean (or nothing to check); 1 findings, or a candidate skipped (it could not be
checked); 2 usage error, a file that cannot be read or imported, or a report that cannot be
written (the other files are still checked, and 2 wins over 1).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_lossguard import __version__, discovery, settings
from pytest_lossguard.errors import LossguardError, NotProbed
from pytest_lossguard.json_report import document, entry, skipped, write
from pytest_lossguard.quiet import framework_import
from pytest_lossguard.render import ansi, colour_wanted, plain, render, row, summary_table
from pytest_lossguard.text import WIDTH, display_path, one_line, prefixed

if TYPE_CHECKING:
    from pytest_lossguard.findings import Report

CLEAN, FINDINGS, USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lossguard",
        description="Find losses, metrics and models that silently broadcast labels against "
                    "predictions. Exit 0: clean; 1: findings, or a candidate skipped; 2: usage, "
                    "import or report-writing error.",
    )
    parser.add_argument("targets", nargs="+", metavar="FILE|DIR|MODULE",
                        help="Python files, directories (searched for *.py) or module names")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text: failure blocks and a summary table; json: the JSON report")
    parser.add_argument("--strict", action="store_true", default=None,
                        help="also fail probes that raise on shapes Keras aligns")
    parser.add_argument("--report", metavar="PATH", help="also write the JSON report to PATH")
    parser.add_argument("--version", action="version", version=f"lossguard {__version__}")
    return parser


def _files(target: str) -> Iterator[Path]:
    path = Path(target)
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*.py") if not any(
            part.startswith(".") or part == "__pycache__" for part in p.parts))
    elif path.suffix == ".py" and path.is_file():
        yield path


def _sources(targets: list[str], problems: discovery.Problems) -> tuple[list[Path], list[str]]:
    """Source files to read first, and the module names to import if any holds a candidate;
    a target that names nothing to read is told in `problems`, and the others still run."""
    files: list[Path] = []
    names: list[str] = []
    for target in targets:
        found = list(_files(target))
        if found:
            files.extend(found)
            continue
        if Path(target).is_dir():
            problems.append((target, f"{target} is a directory with no Python files in it "
                             "(hidden folders and __pycache__ aside); give one that holds *.py "
                             "files"))
            continue
        if Path(target).exists() or target.endswith(".py"):
            problems.append((target, f"{target} is neither a Python file nor a directory"))
            continue
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # module names resolve as `python -m` does
        try:  # finding a submodule imports its package, which may raise anything
            spec = importlib.util.find_spec(target)
        except (Exception, SystemExit) as exc:
            problems.append(discovery.unimportable(
                target, discovery.origin(target.rpartition(".")[0]), exc))
            continue
        if spec is None:
            problems.append((target, f"no module named {target!r}; give a file, a "
                             "directory, or an importable module name"))
            continue
        names.append(target)
        locations = spec.submodule_search_locations
        if locations:
            files.extend(p for location in locations for p in _files(location))
        elif spec.origin and spec.origin.endswith(".py"):
            files.append(Path(spec.origin))
    return files, names


def _import_names(files: list[Path], names: list[str], root: Path,
                  problems: discovery.Problems) -> list[str]:
    """Module names for the files (making them importable), plus the names given; a file that
    cannot be imported is told in `problems` and left out. Files that would share a module
    name (two `losses.py` outside any package) are each imported under their path from the
    rootdir, whatever the order they were given in, so a `[tool.lossguard.targets]` key means
    the same file on every run."""
    result = list(names)
    found = [(path, *discovery.module_name(path)) for path in files]
    folders: dict[str, set[Path]] = {}
    for _, name, folder in found:
        folders.setdefault(name, set()).add(folder)
    for path, name, folder in found:
        if str(folder) not in sys.path:  # its siblings import as under pytest
            sys.path.insert(0, str(folder))
        if len(folders[name]) > 1:
            try:
                name = _load_by_path(path, root)
            except (Exception, SystemExit) as exc:  # a script that parses its arguments exits
                problems.append(discovery.unimportable(str(path), path, exc))
                continue
        result.append(name)
    return result


def _load_by_path(path: Path, root: Path) -> str:
    """Import a file whose module name other files share, under its path from the rootdir (or
    its absolute path, outside it)."""
    path = path.resolve()
    try:
        name = ".".join(path.relative_to(root).with_suffix("").parts)
    except ValueError:
        name = ".".join(path.with_suffix("").parts[1:])
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LossguardError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with framework_import():  # as every import of the user's files: no TensorFlow logs
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
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


def _other_projects(targets: list[str], root: Path) -> str:
    """A warning when the paths given belong to projects of their own (each with its own
    configuration file) other than the rootdir they share: their settings are not read."""
    own = {rootdir([target]) / "pyproject.toml" for target in targets if Path(target).exists()}
    unread = sorted(display_path(str(path)) for path in own
                    if path.is_file() and path != root / "pyproject.toml")
    if not unread:
        return ""
    return prefixed(f"the files given span several projects, so their rootdir is "
                    f"{display_path(str(root)) or '.'} and {', '.join(unread)} "
                    f"{'is' if len(unread) == 1 else 'are'} not read; run lossguard once per "
                    "project to use each one's [tool.lossguard]")


def _import_paths(root: Path) -> list[Path]:
    """What pytest puts on sys.path for a project: the rootdir (where a `python -m` run starts
    and a root conftest.py lives) and the `pythonpath` entries of [tool.pytest.ini_options]."""
    paths = [root]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        tables: Any = settings.read_toml(pyproject)
        for key in ("tool", "pytest", "ini_options"):  # a malformed table: no extra paths
            tables = tables.get(key, {}) if isinstance(tables, dict) else {}
        extra = tables.get("pythonpath", []) if isinstance(tables, dict) else []
        extra = [extra] if isinstance(extra, str) else extra
        paths.extend(root / entry for entry in extra if isinstance(entry, str))
    return paths


# Where the CLI's user raises the time limit: there is no ini, only pyproject.toml.
_TIMEOUT_SETTING = ("timeout = <seconds> under [tool.lossguard] in pyproject.toml, or in the "
                    "target's [tool.lossguard.targets] entry (0 turns it off)")


def _scanned(files: list[Path], problems: discovery.Problems) -> tuple[list[Path], bool]:
    """The files that parse, and whether any may hold a candidate (read with `ast`, nothing
    imported); a file that cannot be read or parsed is told in `problems` and left out."""
    readable: list[Path] = []
    found = False
    for path in files:
        try:
            found = bool(discovery.scan_source(path.read_bytes(), str(path))) or found
        except OSError as exc:
            shown = display_path(str(path))
            problems.append((shown, f"{shown}: cannot be read: {one_line(exc)}; check that the "
                                    "file is readable"))
            continue
        except (SyntaxError, ValueError) as exc:  # ValueError: a null byte
            problems.append(discovery.unimportable(str(path), path, exc))
            continue
        readable.append(path)
    return readable, found


def _unmatched(config: settings.Settings, candidates: list[discovery.Candidate],
               names: list[str]) -> Iterator[str]:
    """A warning for each `[tool.lossguard.targets]` key that names no candidate of this run
    but looks meant for one: its module was imported here and has nothing by that name, or
    no module of that name exists and a candidate has its name. Keys for modules this run did
    not read (a pre-commit run on a few files) are left alone, and so are keys naming an
    object that exists (a target pytest checks by its mark)."""
    ids = {c.id for c in candidates}
    for key in config.targets:
        module, _, qualname = key.partition(":")
        if key in ids or _resolves(module, qualname):
            continue
        same = [c.id for c in candidates if c.qualname == qualname]
        read = any(module == name or module.startswith(f"{name}.") for name in names)
        if not (read or (same and not _findable(module))):
            continue
        close = difflib.get_close_matches(qualname, [c.qualname for c in candidates], cutoff=0.6)
        meant = same or [c.id for c in candidates if c.qualname in close] \
            or [c.id for c in candidates if c.module == module]
        hint = f"did you mean {' or '.join(map(repr, meant))}?" if meant \
            else "no candidate was found in that module"
        yield prefixed(f'[tool.lossguard.targets."{key}"] matches no candidate, so its options '
                       f"are not used; {hint} (keys are module:qualname, as the summary table "
                       "names targets)")


def _skip_block(candidate: discovery.Candidate, why: str) -> str:
    """What the text output says of a candidate it cannot check: why it was picked, why it is
    skipped and what to set, wrapped as a failure block is."""
    text = prefixed(f"skipped {candidate.id} ({candidate.reason}): {why}")
    kept = text.replace(" = ", "\N{NO-BREAK SPACE}=\N{NO-BREAK SPACE}")  # a TOML line stays whole
    lines = textwrap.wrap(kept, WIDTH, subsequent_indent="  ", break_long_words=False,
                          break_on_hyphens=False)
    return "\n".join(lines).replace("\N{NO-BREAK SPACE}", " ")


def _findable(module: str) -> bool:
    """Whether a source file of that module name lies where imports look (`sys.path`, which
    holds the rootdir's import paths by now), without importing anything."""
    parts = module.split(".")
    return any(Path(folder or ".").joinpath(*parts[:-1], f"{parts[-1]}.py").is_file()
               or Path(folder or ".").joinpath(*parts, "__init__.py").is_file()
               for folder in sys.path)


def _resolves(module: str, qualname: str) -> bool:
    """Whether `module:qualname` names an object of a module already imported."""
    obj: Any = sys.modules.get(module)
    for part in qualname.split(".") if obj is not None else ():
        obj = getattr(obj, part, None)
    return obj is not None


def _run(args: argparse.Namespace) -> int:
    root = rootdir(args.targets)
    config = settings.load(root)  # the project the files are imported from, as under pytest
    spanned = _other_projects(args.targets, root)
    if spanned:
        print(spanned, file=sys.stderr)
    for path in reversed(_import_paths(root)):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))  # imports resolve as under pytest and `python -m`
    problems: discovery.Problems = []  # a row each, told last, exit 2
    files, names = _sources(args.targets, problems)
    files, found = _scanned(files, problems)
    markup = ansi if colour_wanted(sys.stdout.isatty(), os.environ) else plain
    if not (names or found):
        rows = _unchecked(problems)
        if args.format == "json":
            print(json.dumps(document(rows), indent=2))
        elif files or not problems:  # else every file given is broken: its rows say so
            print(prefixed(f"no candidate in {len(files)} file(s); nothing to check"))
        if rows and args.format != "json":
            print("\n".join(summary_table(rows, verbose=True, markup=markup)))
        return _finish(problems, CLEAN)
    # Only now that something is to be probed do NumPy and the frameworks load.
    from pytest_lossguard.engine import probe
    from pytest_lossguard.introspect import named
    from pytest_lossguard.probes import select

    imported = _import_names(files, names, root, problems)
    candidates = discovery.discover(imported, config.targets, problems)
    for warning in _unmatched(config, candidates, imported):
        print(warning, file=sys.stderr)
    base = settings.base(config, {"strict": True} if args.strict else {})
    try:
        select(base.probes)  # a wrong name in [tool.lossguard] stops the run, as under pytest
    except LossguardError as exc:
        raise LossguardError(f"[tool.lossguard] probes: {exc}") from None
    entries: list[dict[str, Any]] = []
    blocks: list[str | Report] = []
    for candidate in candidates:
        if candidate.skipped:
            entries.append(skipped(candidate.id, candidate.skipped))
            blocks.append(_skip_block(candidate, candidate.skipped))
            continue
        started = time.perf_counter()
        try:
            options = settings.layered(candidate.id, candidate.obj, base, config)
            report = probe(candidate.obj, options, _TIMEOUT_SETTING,
                           name=named(candidate.obj, candidate.id))
        except NotProbed as exc:
            entries.append(skipped(candidate.id, exc.for_scan(candidate.id)))
            blocks.append(_skip_block(candidate, exc.for_scan(candidate.id)))
            continue
        except LossguardError as exc:  # the message names the target; its id follows
            entries.append(entry(candidate.id, None, str(exc), time.perf_counter() - started))
            blocks.append(f"{prefixed(str(exc))}\n{row('target', candidate.id)}")
            continue
        entries.append(entry(candidate.id, report))
        if not report.ok:
            blocks.append(report)
    entries.extend(_unchecked(problems))
    doc = document(entries)
    unwritten = write(doc, Path(args.report)) if args.report else ""
    if unwritten:
        problems.append(("", unwritten))
    if args.format == "json":
        print(json.dumps(doc, indent=2))
    else:
        table = summary_table(entries, verbose=True, markup=markup)
        print("\n\n".join([*(b if isinstance(b, str) else render(b, markup) for b in blocks),
                            "\n".join(table)]))
    return _finish(problems, FINDINGS if doc["totals"]["failed"] else CLEAN)


def _unchecked(problems: discovery.Problems) -> list[dict[str, Any]]:
    """An error row for each file or module that could not be read or imported: what it holds
    is unknown, so the file stands for its candidates in the table and the JSON report."""
    texts = dict(problems)  # a package's module can be named twice
    return [entry(name, None, text) for name, text in texts.items() if name]


def _finish(problems: discovery.Problems, code: int) -> int:
    """Tell, after the results, what could not be read, imported or written: then the run
    exits 2 whatever it found, since it did not check everything it was given."""
    sys.stdout.flush()
    for _, text in dict.fromkeys(problems):  # a package's module can be named twice
        print(prefixed(text), file=sys.stderr)
    return USAGE if problems else code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (LossguardError, ImportError, SyntaxError, OSError) as exc:
        reason = str(exc) if isinstance(exc, LossguardError) else f"{type(exc).__name__}: {exc}"
        print(prefixed(reason), file=sys.stderr)
        return USAGE
