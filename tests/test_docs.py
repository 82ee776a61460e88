"""README.md and docs/: links resolve, the README stays short, its quick start is true."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(text):
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def test_there_are_docs_pages():
    assert len(PAGES) >= 10


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_relative_links_resolve(page):
    links = LINK.findall(prose(page.read_text()))
    assert links, f"{page.name} links nowhere"
    broken = []
    for link in links:
        if re.match(r"[a-z]+:", link) or link.startswith("#"):
            continue  # https:, mailto:, an anchor on the same page
        target = (page.parent / link.split("#")[0]).resolve()
        if not target.exists() or ROOT not in target.parents:
            broken.append(link)
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 260, len(lines)


def test_the_readme_shows_ci_s_command():
    command = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest\n"
    assert command in (ROOT / "README.md").read_text()
    assert command in (ROOT / ".ci" / "run").read_text()
    first_screen = "".join((ROOT / "README.md").read_text().splitlines(keepends=True)[:30])
    assert command in first_screen and "pytest --lossguard examples/" in first_screen


def block(text, fence, after):
    """The first ``fence`` code block after the string ``after``."""
    start = text.index(f"```{fence}\n", text.index(after)) + len(fence) + 4
    return text[start:text.index("```", start)]


def test_the_quick_start_prints_what_the_readme_shows(tmp_path):
    readme = (ROOT / "README.md").read_text()
    (tmp_path / "test_losses.py").write_text(block(readme, "python", "## Install and quick start"))
    shown = block(readme, "text", "## Install and quick start")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--lossguard", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "test_losses.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    printed = re.search(r"^_+ lossguard: naive_mse\[lossguard\] _+\n.*?(?=^=+ lossguard =+$)",
                        result.stdout, re.MULTILINE | re.DOTALL)
    assert printed, result.stdout

    def version_free(text):  # the Keras version in the target line is the installed one
        return re.sub(r"reference: keras [\w.]+", "reference: keras X", text)

    assert version_free(printed.group()) == version_free(shown)


def test_the_readme_s_models_example_runs_and_its_models_pass():
    import keras
    import zoo

    from pytest_lossguard import check

    reports = []
    namespace = {"keras": keras, "Critic": zoo.AlignedCritic,
                 "check": lambda *args, **kwargs: reports.append(check(*args, **kwargs))}
    exec(block((ROOT / "README.md").read_text(), "python", "## Models"), namespace)
    assert len(reports) == 2 and all(report.ok for report in reports), reports
    assert [f.probe for f in reports[0].findings if f.output == "cls"] == [
        "labels-extra-unit-axis [cls]"]


def test_options_md_names_every_option_ini_key_and_flag(pytester):
    """Every marker option in the table, and every ini key and flag `pytest --help` lists under
    lossguard, is named on docs/options.md, so a newcomer finds each where the README sends them."""
    from pytest_lossguard.options import Options

    text = (ROOT / "docs" / "options.md").read_text()
    table = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)?", text, re.MULTILINE))
    in_table = {name for row in table for name in row if name}
    assert Options.names() <= in_table, Options.names() - in_table
    help_text = pytester.runpytest("--help").stdout.str()
    keys = set(re.findall(r"^  (lossguard\w*) \(", help_text, re.MULTILINE))
    flags = set(re.findall(r"^  (--lossguard[\w-]*)", help_text, re.MULTILINE))
    assert len(keys) > 10 and len(flags) >= 4, (keys, flags)
    missing = {name for name in keys | flags if f"`{name}" not in text}
    assert not missing, missing


def test_discovery_md_names_every_flag_of_the_command():
    from pytest_lossguard.cli import _parser

    flags = {option for action in _parser()._actions for option in action.option_strings
             if option.startswith("--") and option != "--help"}
    text = (ROOT / "docs" / "discovery-and-cli.md").read_text()
    assert flags and not {flag for flag in flags if f"`{flag}" not in text}, flags


def test_the_command_prints_what_discovery_md_shows(tmp_path):
    """The `lossguard` command's example: the skipped class, the instance named with its class,
    the table; each shown part (between `...` cuts) is printed as shown, up to the seconds."""
    page = (ROOT / "docs" / "discovery-and-cli.md").read_text()
    package = tmp_path / "src" / "mypkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "losses.py").write_text(block(page, "python", "For example, a package"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest_lossguard", "src/mypkg/losses.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]

    def steady(text):  # the seconds column, and torch's line numbers, vary
        text = re.sub(r"(?m)^((?:\s+\d+){6})\s+\d+\.\d+", r"\1 S", text)
        return re.sub(r"(torch/[\w/]+\.py):\d+", r"\1:N", text)

    printed = steady(result.stdout)
    shown = steady(block(page, "text", "For example, a package"))
    at = 0
    for part in shown.split("  ...\n"):
        found = printed.find(part, at)
        assert found >= 0, f"not printed after offset {at}:\n{part}\n--- printed:\n{printed}"
        at = found + len(part)


def test_discovery_md_lists_the_parameter_pairs_discovery_reads():
    from pytest_lossguard.conventions import PAIRS

    text = (ROOT / "docs" / "discovery-and-cli.md").read_text()
    listed = text[text.index("functions whose first two parameters"):text.index("- `keras.losses")]
    shown = set(re.findall(r"`\((\w+), (\w+)\)`", listed))
    assert shown == PAIRS, (shown - PAIRS, PAIRS - shown)
