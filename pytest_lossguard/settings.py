"""`[tool.lossguard]` in pyproject.toml: defaults, per-target overrides, packages to scan.

```toml
[tool.lossguard]
strict = false
scan = ["mypkg"]
[tool.lossguard.targets."mypkg.losses:pinball"]
y_true_shape = [1]
y_pred_shape = [3]
```
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_lossguard.errors import LossguardError
from pytest_lossguard.options import Options
from pytest_lossguard.text import display_path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


@dataclasses.dataclass(frozen=True)
class Settings:
    """The `[tool.lossguard]` table, split into its parts."""

    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    targets: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    scan: tuple[str, ...] = ()


def find(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start`."""
    for folder in [start.resolve(), *start.resolve().parents]:
        if (folder / "pyproject.toml").is_file():
            return folder / "pyproject.toml"
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's content; a malformed file is a LossguardError that names it."""
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise LossguardError(f"{display_path(str(path))}: {exc}; fix the TOML") from None


def load(start: Path) -> Settings:
    """Settings from the nearest pyproject.toml; empty when there is none or no table."""
    path = find(start)
    if path is None:
        return Settings()
    where = display_path(str(path))
    tool = read_toml(path).get("tool", {})
    table = tool.get("lossguard", {}) if isinstance(tool, Mapping) else {}
    _expect(table, Mapping, f"{where} [tool] lossguard", "a table, [tool.lossguard]")
    defaults = {k: v for k, v in table.items() if k not in ("targets", "scan")}
    try:
        Options.build(**defaults)  # unknown or malformed keys fail here, naming the key
    except LossguardError as exc:
        raise LossguardError(f"{where} [tool.lossguard]: {exc}") from None
    targets = table.get("targets", {})
    _expect(targets, Mapping, f"{where} [tool.lossguard] targets",
            'a table of tables, [tool.lossguard.targets."module:name"]')
    for key, entry in targets.items():
        _expect(entry, Mapping, f'{where} [tool.lossguard.targets] "{key}"',
                f'a table of options, [tool.lossguard.targets."{key}"] with y_true_shape = [1]')
        try:  # each entry's keys; its values are checked layered, for the target they apply to
            Options.build(**{name: None for name in entry if name not in Options.names()})
        except LossguardError as exc:
            raise LossguardError(f'{where} [tool.lossguard.targets."{key}"]: {exc}') from None
    scan = table.get("scan", [])
    scan = [scan] if isinstance(scan, str) else scan
    names = isinstance(scan, list) and all(isinstance(name, str) for name in scan)
    _expect(scan, names, f"{where} [tool.lossguard] scan", 'package names, scan = ["mypkg"]')
    return Settings(defaults, targets, tuple(scan))


def _expect(value: Any, kind: type | bool, what: str, example: str) -> None:
    """A LossguardError naming the key and what it takes, for a value of another kind (or
    when `kind` is a check that failed)."""
    if not (kind if isinstance(kind, bool) else isinstance(value, kind)):
        raise LossguardError(f"{what} = {value!r} is not {example}; fix pyproject.toml")


def own_marks(marks: Any) -> list[Any]:
    """The lossguard marks among a `pytestmark` value (one mark, a decorator or a list), read
    without importing pytest."""
    found = [getattr(mark, "mark", mark) for mark in (marks if isinstance(marks, list)
                                                       else [marks])]
    return [mark for mark in found if getattr(mark, "name", None) == "lossguard"]


def marks_of(obj: Any) -> list[Any]:
    """Lossguard marks set on `obj` itself: a class does not inherit its base's marks here,
    so marking a base Loss marks only the base. An object whose attribute reads raise (a lazy
    proxy's `__getattr__`) has none that can be read."""
    try:
        marks = (vars(obj).get("pytestmark", []) if isinstance(obj, type)
                 else getattr(obj, "pytestmark", []))
    except Exception:
        return []
    return own_marks(marks)


def marker_kwargs(obj: Any) -> dict[str, Any]:
    """The kwargs of a @pytest.mark.lossguard on `obj` itself."""
    marks = marks_of(obj)
    return {k: v for k, v in marks[0].kwargs.items() if k != "targets"} if marks else {}


def base(settings: Settings, ini: Mapping[str, Any] | None = None) -> Options:
    """The options every target starts from: `[tool.lossguard]` over the ini keys and
    command-line flags (`ini`)."""
    return Options.build(**{**(ini or {}), **settings.defaults})


def layered(target_id: str, obj: Any, start: Options, settings: Settings,
            given: Mapping[str, Any] | None = None) -> Options:
    """One target's options, each layer over the one before: `start` (see `base`), its
    `[tool.lossguard.targets]` entry, the mark on the target itself, then `given` (the kwargs
    of the mark that listed it, or of a fixture call).

    Items, the fixture and the CLI all come here, so a target gets the same options each way.
    """
    entry = settings.targets.get(target_id, {})
    return Options.build(start, **{**entry, **marker_kwargs(obj), **(given or {})})
