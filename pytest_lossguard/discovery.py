"""Find unmarked targets: losses, metrics, Loss classes, models that override their steps,
torch loss modules (`_Loss` subclasses, and modules whose `forward` takes a prediction/target
pair), and LightningModules that define `training_step` / `validation_step`.

Two passes share one rule set. `scan_source` reads a file with `ast` and imports nothing (not
even NumPy), so the CLI can leave early when no file holds a candidate. `discover` imports a
module and returns every candidate with the reason it was picked, or why it is skipped.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from pytest_lossguard.conventions import LIGHTNING_STEPS, STEPS, pair
from pytest_lossguard.errors import LossguardError
from pytest_lossguard.quiet import framework_import
from pytest_lossguard.settings import marker_kwargs
from pytest_lossguard.text import display_path, one_line

_BASES = ("Loss", "Metric", "Model")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One discovered target: where it lives, why it was picked, and why it is skipped if so."""

    module: str
    qualname: str
    reason: str
    obj: Any = dataclasses.field(default=None, compare=False, repr=False)
    skipped: str = ""

    @property
    def id(self) -> str:
        """`module:qualname`, the key of a `[tool.lossguard.targets]` override."""
        return f"{self.module}:{self.qualname}"


def _base_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _metric_names(tree: ast.AST) -> set[str]:
    """Names listed in `metrics=[...]` of any `.compile(...)` call."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _base_name(node.func) == "compile":
            for keyword in node.keywords:
                if keyword.arg in ("metrics", "weighted_metrics"):
                    names.update(n.id for n in ast.walk(keyword.value) if isinstance(n, ast.Name))
    return names


def scan_source(source: str | bytes, filename: str = "<unknown>") -> list[str]:
    """Reasons a module's source may hold candidates, found without importing it; a
    SyntaxError names `filename`. Bytes are decoded as Python decodes a source file."""
    tree = ast.parse(source, filename)
    reasons = []
    metrics = _metric_names(tree)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found = pair([a.arg for a in node.args.posonlyargs + node.args.args])
            if found:
                reasons.append(f"{node.name}: parameters {found[0]}, {found[1]}")
            elif node.name in metrics:
                reasons.append(f"{node.name}: used in compile(metrics=...)")
        elif isinstance(node, ast.ClassDef):
            bases = {_base_name(b) for b in node.bases}
            methods = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
            # A torch module's forward(self, input, target): a loss, not a network's forward(x).
            forward = methods.get("forward")
            taken = pair([a.arg for a in forward.args.posonlyargs + forward.args.args][1:]) \
                if forward is not None else None
            if (any(name.endswith(_BASES) for name in bases)
                    or methods.keys() & {*STEPS, *LIGHTNING_STEPS, "call", "update_state"}):
                reasons.append(f"{node.name}: subclasses {', '.join(sorted(bases))}")
            elif taken:
                reasons.append(f"{node.name}: forward({taken[0]}, {taken[1]})")
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            # Without importing, any instance may be a Loss (keras.losses.Huber(), a class
            # from elsewhere) and a partial may bind a loss: the import pass decides.
            callee = _base_name(node.value.func)
            if callee[:1].isupper() or callee == "partial":
                reasons.append(f"{ast.unparse(node.targets[0])}: built by {callee}(...)")
    return reasons


def _reason(name: str, obj: Any, metrics: set[str]) -> str | None:
    """Why `obj` is a candidate, or None if it is not one."""
    from pytest_lossguard.kinds import classify

    try:
        return classify(obj).reason(name, metrics)
    except LossguardError:
        return None


def _skipped(obj: Any, target_id: str, entry: Mapping[str, Any]) -> str:
    """Why a class cannot be built without arguments, or '': no `init` is given for it in its
    `[tool.lossguard.targets]` entry or its own mark, and its constructor needs arguments."""
    if not isinstance(obj, type) or "init" in entry or "init" in marker_kwargs(obj):
        return ""
    try:
        inspect.signature(obj).bind()
    except TypeError:
        return (f"its constructor needs arguments; set them in pyproject.toml, under "
                f'[tool.lossguard.targets."{target_id}"]: init = {{...}}, or mark it with '
                "init={...}, or mark a zero-argument factory")
    except ValueError:
        return ""
    return ""


def module_candidates(
    module: ModuleType, targets: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Candidate]:
    """Candidates defined in `module`, then metric functions its compile() calls name.

    `targets` is `[tool.lossguard.targets]`: a class given `init` there is built, not skipped.
    """
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        tree = ast.Module(body=[], type_ignores=[])
    metrics = _metric_names(tree)
    found = []
    for name, obj in vars(module).items():
        instance = _is_instance(obj)
        home = module.__name__ if instance else getattr(obj, "__module__", None)
        if name.startswith("_") or home != module.__name__:
            continue
        reason = _reason(name, obj, metrics)
        if reason is not None:
            qualname = name if instance else getattr(obj, "__qualname__", name)
            key = f"{module.__name__}:{qualname}"
            found.append(Candidate(module.__name__, qualname, reason, obj,
                                   _skipped(obj, key, (targets or {}).get(key, {}))))
    for name in sorted(metrics):
        obj = vars(module).get(name)
        if inspect.isfunction(obj) and obj.__module__ != module.__name__:
            found.append(Candidate(obj.__module__, obj.__qualname__,
                                   f"used in compile(metrics=...) in {module.__name__}", obj))
    return found


def _is_instance(obj: Any) -> bool:
    return not (isinstance(obj, type) or inspect.isroutine(obj) or inspect.ismodule(obj))


def target_id(obj: Any, module: ModuleType | None) -> str:
    """The `[tool.lossguard.targets]` key of `obj`, as discovery names it: `module:qualname`
    for a function or class, `module:name` for an instance (a Loss, a partial) bound in module."""
    if not _is_instance(obj):
        return f"{obj.__module__}:{obj.__qualname__}"
    if module is not None:
        for name, value in vars(module).items():
            if value is obj:
                return f"{module.__name__}:{name}"
    return f"{type(obj).__module__}:{type(obj).__qualname__}"


# What could not be read or imported: the file or module (a row of its own; "" for none, as
# a report that cannot be written) and the line that says why and what to do.
Problems = list[tuple[str, str]]


def origin(name: str) -> Path | None:
    """The source file of a module that failed to import, if it can be found."""
    try:
        spec = importlib.util.find_spec(name)
    except Exception:  # its package raises on import: the caller tells that error
        return None
    found = spec.origin if spec is not None else None
    return Path(found) if found and found.endswith(".py") else None


def unimportable(where: str, path: Path | None, exc: BaseException) -> tuple[str, str]:
    """One line for a file or module that cannot be parsed or imported: the file (at the line
    that failed, when it is in that file), what went wrong, and the fix."""
    shown = display_path(str(path)) if path is not None else where
    home = path.resolve() if path is not None else None

    def own(filename: str | None) -> bool:
        return bool(filename) and Path(str(filename)).resolve() == home

    if isinstance(exc, SyntaxError) and own(exc.filename):
        return shown, f"{shown}:{exc.lineno}: SyntaxError: {exc.msg}; fix the syntax"
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
             if own(frame.filename)]
    at = f"{shown}:{lines[-1]}" if lines else shown
    fix = (f"install {exc.name}, or fix the import" if isinstance(exc, ModuleNotFoundError)
           and exc.name else "fix it so that importing it succeeds")
    return shown, f"{at}: cannot be imported: {one_line(exc)}; {fix}"


def misnamed(name: str) -> str:
    """Why `name` cannot be scanned when it is not a module name as `import` spells it (a
    path, most likely), and what to give instead; "" for a module name."""
    if name and all(part.isidentifier() for part in name.split(".")):
        return ""
    if not name.strip():
        return ("an empty entry names no module: give a package or module name as `import` "
                "spells it (mypkg, mypkg.losses), or drop the entry")
    path = Path(name)
    source = path if path.suffix == ".py" else path / "__init__.py"
    module = module_name(source)[0] if source.is_file() else ""
    instead = f"give its module name, {module}, or " if module else "give a module name, or "
    return (f"{name!r} is not a module name: scanning imports packages and modules by name "
            f"(mypkg, mypkg.losses); {instead}run `lossguard {name}`, which takes files and "
            "directories")


def _modules(name: str, problems: Problems | None) -> Iterator[ModuleType]:
    """The module and, for a package, its submodules depth first: each imported here, under
    the quiet guard, and a package's submodules listed only once the package imported."""
    why = misnamed(name)
    if why:
        if problems is None:
            raise LossguardError(why)
        problems.append((name, why))
        return
    try:
        with framework_import():  # the user's modules may load TensorFlow: no C++ logs
            module = importlib.import_module(name)
    except (Exception, SystemExit) as exc:  # a script that parses its arguments exits
        if problems is None:
            raise
        if isinstance(exc, ModuleNotFoundError) and exc.name == name:
            problems.append((name, f"no module named {name!r}; check the name, and that its "
                                   "folder is where imports look (the rootdir, or pythonpath "
                                   "under [tool.pytest.ini_options])"))
        else:
            problems.append(unimportable(name, origin(name), exc))
        return
    yield module
    for info in pkgutil.iter_modules(getattr(module, "__path__", []), f"{name}."):
        yield from _modules(info.name, problems)


def discover(
    names: list[str], targets: Mapping[str, Mapping[str, Any]] | None = None,
    problems: Problems | None = None,
) -> list[Candidate]:
    """Every candidate in the named modules and packages (imported), each object once.

    `targets` is `[tool.lossguard.targets]`, whose `init` entries let classes be built. A
    module that cannot be imported raises, or with `problems` is told there and left out."""
    found: dict[int, Candidate] = {}
    for name in names:
        for module in _modules(name, problems):
            for candidate in module_candidates(module, targets):
                found.setdefault(id(candidate.obj), candidate)
    return sorted(found.values(), key=lambda c: c.id)


def module_name(path: Path) -> tuple[str, Path]:
    """The dotted name of a source file and the directory to import it from."""
    path = path.resolve()
    parts = [path.stem] if path.name != "__init__.py" else []
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), folder
