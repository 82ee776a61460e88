"""One target gets the same options as a collected item, through the fixture and through the
`lossguard` command: each layer (ini < [tool.lossguard] < [tool.lossguard.targets] < the
target's mark) applies the same way on all three paths."""

import json

import keras  # noqa: F401  (loaded before the in-process runs, which drop what they import)
import pytest

from pytest_lossguard import cli

TARGET = """
import json

import numpy as np
import pytest


@pytest.mark.lossguard(strict=True)
def pinball(y_true, y_pred):
    error = np.reshape(y_true, (-1, 1)) - np.reshape(y_pred, (-1, 3))
    return np.mean(np.maximum(0.5 * error, -0.5 * error), axis=-1)


def test_through_the_fixture(lossguard):
    report = lossguard.check(pinball)
    with open("fixture.json", "w") as out:
        json.dump(report.as_dict(), out)
"""
PROJECT = """
[tool.pytest.ini_options]
lossguard_seed = "5"
lossguard_output_shape = "(2,)"

[tool.lossguard]
seed = 3

[tool.lossguard.targets."test_layers:pinball"]
y_true_shape = [1]
y_pred_shape = [3]
"""
LAYERED = ("true_shape", "pred_shape", "strict", "seed")


def _layers(report):
    return {key: report[key] for key in LAYERED}


def test_a_target_gets_the_same_options_as_an_item_through_the_fixture_and_the_cli(
        pytester, capsys):
    pytester.makepyfile(test_layers=TARGET)
    pytester.makefile(".toml", pyproject=PROJECT)
    pytester.syspathinsert()
    result = pytester.runpytest("--lossguard", "--lossguard-report=items.json", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    item = json.loads((pytester.path / "items.json").read_text())["targets"][0]["report"]
    fixture = json.loads((pytester.path / "fixture.json").read_text())

    capsys.readouterr()  # the in-process run's own output
    assert cli.main(["test_layers.py", "--format", "json"]) == 0
    command = json.loads(capsys.readouterr().out)["targets"][0]["report"]

    expected = {"true_shape": [1], "pred_shape": [3], "strict": True, "seed": 3}
    assert _layers(item) == expected  # ini seed 5 loses to [tool.lossguard]; shapes from the entry
    assert _layers(fixture) == expected
    assert _layers(command) == expected


def test_config_errors_name_the_file_and_the_table(tmp_path, monkeypatch):
    from pytest_lossguard import settings
    from pytest_lossguard.errors import LossguardError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.lossguard]\ncolour = true\n")
    with pytest.raises(LossguardError, match=r"^pyproject\.toml \[tool\.lossguard\]: unknown "
                                             r"lossguard option\(s\) colour; known"):
        settings.load(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lossguard.targets."m:f"]\ny_shape = [1]\n')
    with pytest.raises(LossguardError, match=r'^pyproject\.toml \[tool\.lossguard\.targets\."m:f"'
                                             r"\]: unknown lossguard option\(s\) y_shape"):
        settings.load(tmp_path)


@pytest.mark.parametrize(("toml", "error"), [
    ("[tool.lossguard]\nscan = 3\n",
     '[tool.lossguard] scan = 3 is not package names, scan = ["mypkg"]'),
    ("[tool.lossguard]\nscan = [1]\n",
     '[tool.lossguard] scan = [1] is not package names, scan = ["mypkg"]'),
    ('[tool.lossguard]\ntargets = ["x"]\n',
     "[tool.lossguard] targets = ['x'] is not a table of tables"),
    ("[tool.lossguard]\ntargets = {x = 1}\n",
     '[tool.lossguard.targets] "x" = 1 is not a table of options'),
    ("[tool]\nlossguard = 3\n", "[tool] lossguard = 3 is not a table, [tool.lossguard]"),
])
def test_a_table_of_the_wrong_kind_is_an_error_naming_the_key(tmp_path, toml, error):
    from pytest_lossguard import settings
    from pytest_lossguard.errors import LossguardError

    (tmp_path / "pyproject.toml").write_text(toml)
    with pytest.raises(LossguardError) as info:
        settings.load(tmp_path)
    assert error in str(info.value) and str(info.value).endswith("; fix pyproject.toml")
    # A well-formed scan list, as a string too, loads.
    (tmp_path / "pyproject.toml").write_text('[tool.lossguard]\nscan = "mypkg"\n')
    assert settings.load(tmp_path).scan == ("mypkg",)


def test_an_unknown_probe_in_tool_lossguard_stops_the_command_as_it_stops_pytest(
        tmp_path, monkeypatch, capsys, pytester):
    from pytest_lossguard import cli

    source = "import numpy as np\n\n\ndef mse(y_true, y_pred):\n" \
             "    return np.mean((y_true - y_pred) ** 2)\n"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "losses_cli.py").write_text(source)
    (tmp_path / "pyproject.toml").write_text('[tool.lossguard]\nprobes = ["bogus"]\n')
    assert cli.main(["losses_cli.py"]) == 2
    assert "lossguard: [tool.lossguard] probes: unknown probe(s) bogus; choose from default" \
        in capsys.readouterr().err
    pytester.makepyprojecttoml('[tool.lossguard]\nprobes = ["bogus"]\n')
    result = pytester.runpytest("--lossguard")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*lossguard: [[]tool.lossguard[]] probes: unknown probe(s) bogus*"])


def test_pytest_reports_a_config_error_with_its_table(pytester):
    pytester.makepyprojecttoml("[tool.lossguard]\nstrict = 'yes'\n")
    result = pytester.runpytest("--lossguard")
    result.stderr.fnmatch_lines(
        ["*lossguard: pyproject.toml [[]tool.lossguard[]]: strict='yes' must be True or False"])


HEADS = """
import pytest
import zoo


@pytest.mark.lossguard(domain={"cls": "sparse"})
def marked():
    return zoo.two_heads()


@pytest.mark.lossguard
def configured():
    return zoo.two_heads()


@pytest.mark.lossguard
def plain():
    return zoo.two_heads()
"""


def test_a_per_output_option_is_taken_alike_from_a_mark_pyproject_and_the_ini(zoo_pytester):
    zoo_pytester.makepyfile(test_heads=HEADS)
    # TOML keys are strings: "1" names the second output, as the index 1 does in Python.
    zoo_pytester.makefile(".toml", pyproject='[tool.lossguard.targets."test_heads:configured"]\n'
                                             'domain = {"1" = "sparse"}\n')
    zoo_pytester.syspathinsert()
    result = zoo_pytester.runpytest("--lossguard", "-p", "no:randomly")
    # Without a layer that names the class head, its loss refuses real-valued labels.
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["ERROR test_heads.py::plain*"])
    zoo_pytester.makeini('[pytest]\nlossguard_domain = {"cls": "sparse"}\n')
    zoo_pytester.runpytest("--lossguard", "-p", "no:randomly").assert_outcomes(passed=3)
