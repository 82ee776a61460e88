"""lossguard's settings as a pytest session holds them: the on switch, the ini keys and flags,
`[tool.lossguard]`, and the base options every item starts from (read once per session)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from pytest_lossguard.errors import LossguardError
from pytest_lossguard.options import Options
from pytest_lossguard.settings import Settings, base
from pytest_lossguard.text import prefixed

MARKER = "lossguard"
# Marker kwargs that may also be given as ini defaults: lossguard_<key>.
INI_DEFAULTS = {
    "output_shape": "per-sample output shape of losses, e.g. (1,), or per model output",
    "domain": "label domain: real, probability, binary, one-hot or sparse, or per model "
              "output, e.g. {1: 'sparse'}",
    "batch_size": "probe batch size (> 1, differing from every per-sample axis)",
    "probes": "probes to run: default, label-dtype, coincident-batch, ... (space separated)",
    "rtol": "relative tolerance of the value comparison (default: by dtype)",
    "atol": "absolute tolerance of the value comparison (default: by dtype)",
    "seed": "seed of the probe values",
    "backend": "tensor library to feed targets: auto, numpy, tensorflow, keras, jax or torch",
    "order": "argument order of losses: auto (from the signature), labels-first or "
             "prediction-first",
    "timeout": "seconds one target may take before it is an error (0: no limit)",
}
# ini keys taken as written rather than as Python literals.
_WORDS = ("domain", "backend", "probes", "order")
_BASE = pytest.StashKey[Options]()
_SETTINGS = pytest.StashKey[Settings]()


def flag(config: pytest.Config, name: str) -> bool:
    """A command-line switch, else its ini twin of the same name."""
    value = config.getoption(name)
    if value is not None:
        return bool(value)
    try:
        return bool(config.getini(name))
    except (ValueError, pytest.UsageError) as exc:  # pytest's own words name no key
        raise pytest.UsageError(prefixed(f"ini {name}: {exc}; write true or false")) from None


def enabled(config: pytest.Config) -> bool:
    """--lossguard, or the `lossguard` ini switch."""
    return flag(config, "lossguard")


def idle_flags(config: pytest.Config) -> list[str]:
    """The flags given that do nothing because lossguard is off."""
    if enabled(config):
        return []
    return [f"--{name.replace('_', '-')}" for name in
            ("lossguard_scan", "lossguard_report", "lossguard_strict")
            if config.getoption(name) is not None]


def off_warning(flags: list[str]) -> str:
    """The one line that says why the flags do nothing."""
    subject = "it does" if len(flags) == 1 else "they do"
    return prefixed(f"{', '.join(flags)} given without --lossguard: lossguard is off, so "
                    f"{subject} nothing; add --lossguard (or `lossguard = true` in the ini file)")


def project_settings(config: pytest.Config) -> Settings:
    """`[tool.lossguard]` of the nearest pyproject.toml, read once per session."""
    if _SETTINGS not in config.stash:
        from pytest_lossguard.settings import load

        try:
            config.stash[_SETTINGS] = load(config.rootpath)
        except LossguardError as exc:
            raise pytest.UsageError(prefixed(str(exc))) from None
    return config.stash[_SETTINGS]


def _ini(config: pytest.Config) -> dict[str, Any]:
    """The ini keys and --lossguard-strict, as option values."""
    values: dict[str, Any] = {"strict": True} if flag(config, "lossguard_strict") else {}
    for key in INI_DEFAULTS:
        raw = config.getini(f"lossguard_{key}")
        if not raw:
            continue
        if key in _WORDS and not str(raw).startswith("{"):  # a dict: the domain per output
            values[key] = raw
            continue
        try:
            values[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise pytest.UsageError(prefixed(
                f"ini lossguard_{key} = {raw!r} is not a Python literal, e.g. (1,) or 1e-5"
            )) from None
    return values


def base_options(config: pytest.Config) -> Options:
    """The options every target starts from, before its own layers (settings.layered)."""
    if _BASE not in config.stash:
        try:
            options = base(project_settings(config), _ini(config))
        except LossguardError as exc:
            raise pytest.UsageError(prefixed(f"ini options: {exc}")) from None
        if options.probes != Options.probes:  # named: a wrong name stops the session
            from pytest_lossguard.probes import select  # NumPy, only when probes are named

            where = ("[tool.lossguard] probes" if "probes" in project_settings(config).defaults
                     else "ini lossguard_probes")
            try:
                select(options.probes)
            except LossguardError as exc:
                raise pytest.UsageError(prefixed(f"{where}: {exc}")) from None
        config.stash[_BASE] = options  # stored once valid: every later ask says the same
    return config.stash[_BASE]


def report_path(config: pytest.Config) -> Path | None:
    """Where --lossguard-report (or ini lossguard_report) writes, relative to the rootdir."""
    given = config.getoption("lossguard_report") or config.getini("lossguard_report")
    return Path(config.rootpath, given) if given else None


def check_report_path(config: pytest.Config) -> None:
    """A usage error, before any test runs, when the JSON report could not be written: the path
    is a directory, lies under a file, or its folder cannot be made."""
    path = report_path(config)
    if path is None:
        return
    problem = ""
    if path.is_dir():
        problem = f"{path} is a directory; give a file path, e.g. {path / 'lossguard.json'}"
    else:
        folder = next(p for p in path.parents if p.exists())
        if not folder.is_dir():
            problem = f"{path} lies under {folder}, which is a file, not a directory"
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                problem = f"cannot make its folder {path.parent}: {exc.strerror or exc}"
    if problem:
        raise pytest.UsageError(prefixed(f"--lossguard-report: {problem}"))


def options_for(config: pytest.Config, target_id: str, obj: Any,
                given: dict[str, Any] | None = None) -> Options:
    """One target's options in this session: see settings.layered."""
    from pytest_lossguard.settings import layered

    return layered(target_id, obj, base_options(config), project_settings(config), given)


def tell_and_stop(config: pytest.Config, message: str) -> None:
    """Say why the run must end now, past pytest's output capturing (deadline.GIVE_UP)."""
    import sys

    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    sys.stderr.write(f"\n{message}\n")
    sys.stderr.flush()
