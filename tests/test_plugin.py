"""The pytest surface, driven through pytester: in this process, except where a test is about
what a fresh process imports or needs one (xdist workers)."""

import inspect
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import zoo

# The losses come from zoo.py, copied next to this file and marked here in place, as
# @pytest.mark.lossguard on their definitions would mark them.
LOSSES = """
import keras
import pytest
from zoo import ElementwiseAbs, aligned_mse, mse, r2, raising, shape_asserting_mse

for target in (mse, aligned_mse, shape_asserting_mse, ElementwiseAbs, raising):
    pytest.mark.lossguard(target)
del target


@pytest.mark.lossguard
class NotALoss:
    pass


pytestmark = pytest.mark.lossguard(targets=[keras.losses.MeanSquaredError(), r2])


@pytest.mark.lossguard(targets=[aligned_mse], output_shape=(3,))
def test_ordinary():
    assert 1 + 1 == 2
"""
# Where zoo.mse broadcasts, as a finding locates it in the copy.
MSE_LINE = f"zoo.py:{inspect.getsourcelines(zoo.mse)[1] + 1}"


@pytest.fixture
def losses(zoo_pytester):
    zoo_pytester.makepyfile(test_losses=LOSSES)
    return zoo_pytester


def outcomes_by_item(result):
    """nodeid -> PASSED / FAILED / ERROR, from -rA short summary lines."""
    found = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "ERROR"):
            if line.startswith(word + " "):
                found[line.split()[1]] = word
    return found


def test_lossguard_run_collects_marked_targets_and_judges_each(losses):
    result = losses.runpytest("--lossguard", "-rA", "--strict-markers")
    got = outcomes_by_item(result)
    assert got == {
        "test_losses.py::mse[lossguard]": "FAILED",
        "test_losses.py::aligned_mse[lossguard]": "PASSED",
        "test_losses.py::shape_asserting_mse[lossguard]": "PASSED",
        "test_losses.py::ElementwiseAbs[lossguard]": "FAILED",
        "test_losses.py::raising[lossguard]": "ERROR",
        "test_losses.py::NotALoss[lossguard]": "ERROR",
        "test_losses.py::MeanSquaredError[lossguard]": "PASSED",
        "test_losses.py::r2[lossguard]": "FAILED",
        "test_losses.py::test_ordinary": "PASSED",
        "test_losses.py::test_ordinary[lossguard-aligned_mse]": "PASSED",
    }
    result.stdout.fnmatch_lines([
        "*lossguard: mse broadcasts labels against predictions",
        "*probe       labels-missing-unit-axis   y_true (7,)  y_pred (7, 1)",
        f"*broadcast   {MSE_LINE}   return tf.reduce_mean(tf.square(y_true - y_pred))",
        "*Sub (7,), (7, 1) -> (7, 7)",
        "*fix         align ranks before combining*",
    ])
    result.stdout.fnmatch_lines(["*lossguard: ElementwiseAbs broadcasts labels against*"])
    result.stdout.fnmatch_lines([
        "*ERROR at setup of lossguard: NotALoss[[]lossguard[]]*",
        "lossguard: class NotALoss is not a keras Loss, Metric or Model; lossguard accepts*",
    ])
    # The error item shows the user's own traceback, down to the helper that raised.
    result.stdout.fnmatch_lines(["*return helper(y_true)*", "*helper refuses (7, 1)*"])
    assert result.ret == 1


def test_summary_table_counts_targets_and_verdicts(losses):
    result = losses.runpytest("--lossguard", "-p", "no:randomly")
    result.stdout.fnmatch_lines([
        "*= lossguard =*",
        "probes  safe  broadcast  mismatch  raises  error  seconds  target",
        "     4     0          4         0       0      0  * "
        "test_losses.py::mse[[]lossguard[]]",
        "* 9 target(s)",
    ])


def test_without_the_flag_marks_are_inert(losses):
    result = losses.runpytest("--strict-markers", "-rA")
    assert outcomes_by_item(result) == {"test_losses.py::test_ordinary": "PASSED"}
    result.stdout.no_fnmatch_line("*= lossguard =*")
    result.stdout.no_fnmatch_line("*lossguard is off*")


def test_flags_that_need_the_switch_say_lossguard_is_off(pytester):
    pytester.makepyfile(test_plain="def test_ordinary():\n    pass\n")
    result = pytester.runpytest("--lossguard-scan=mypkg", "--lossguard-strict",
                                "--lossguard-report=r.json")
    result.stdout.fnmatch_lines([
        "*PytestConfigWarning: lossguard: --lossguard-scan, --lossguard-report, "
        "--lossguard-strict given without --lossguard: lossguard is off, so they do nothing*"])
    assert result.ret == 0 and not (pytester.path / "r.json").exists()
    result = pytester.runpytest("--lossguard-strict")
    result.stdout.fnmatch_lines(["*--lossguard-strict given without --lossguard: lossguard is "
                                 "off, so it does nothing; add --lossguard*"])
    pytester.makeini("[pytest]\nlossguard = true\n")
    result = pytester.runpytest("--lossguard-strict")
    result.stdout.no_fnmatch_line("*lossguard is off*")


def test_ini_switch_enables_and_strict_fails_raising_targets(losses):
    losses.makeini("[pytest]\nlossguard = true\nlossguard_strict = true\n")
    result = losses.runpytest("-rA", "-k", "shape_asserting")
    assert outcomes_by_item(result) == {
        "test_losses.py::shape_asserting_mse[lossguard]": "FAILED"}
    result.stdout.fnmatch_lines(["*raises on shapes that Keras's loss container aligns (strict)"])


def test_strict_flag_fails_raising_targets(losses):
    result = losses.runpytest("--lossguard", "--lossguard-strict", "-rA", "-k",
                              "shape_asserting")
    assert outcomes_by_item(result) == {
        "test_losses.py::shape_asserting_mse[lossguard]": "FAILED"}


def test_failures_show_the_verdict_not_plugin_frames(losses):
    result = losses.runpytest("--lossguard", "-k", "mse and not aligned and not shape or raising")
    result.assert_outcomes(failed=1, errors=1)
    text = result.stdout.str()
    assert "pytest_lossguard/" not in text
    assert "_pytest/" not in text
    # What is shown instead: a failure is its verdict block, first thing under its header...
    target = f"zoo.py:{inspect.getsourcelines(zoo.mse)[1]}"
    result.stdout.fnmatch_lines([
        "*_ lossguard: mse[[]lossguard[]] _*",
        "lossguard: mse broadcasts labels against predictions",
        f"  target      {target}  (function, tensorflow tensors, reference: keras *)",
        "  probe       labels-missing-unit-axis   y_true (7,)  y_pred (7, 1)",
        "  result      () -> *reference (Keras-aligned) () -> *",
        f"  broadcast   {MSE_LINE}   return tf.reduce_mean(tf.square(y_true - y_pred))",
        "              Sub (7,), (7, 1) -> (7, 7)",
    ], consecutive=True)
    # ...and an error is lossguard's reason, then the user's own frames down to the raise.
    raising = f"zoo.py:{inspect.getsourcelines(zoo.raising)[1]}"
    result.stdout.fnmatch_lines([
        "*_ ERROR at setup of lossguard: raising[[]lossguard[]] _*",
        "lossguard: raising cannot be evaluated on canonical input",
        f"  target      {raising}  (function, tensorflow tensors, reference: keras *)",
        "  probe       canonical                  y_true (7, 1)  y_pred (7, 1)",
        "  raised      ValueError: helper refuses (7, 1)",
    ], consecutive=True)
    result.stdout.fnmatch_lines([
        "*def raising(y_true, y_pred):",
        ">*return helper(y_true)",
        "*def helper(values):",
        '>*raise ValueError("helper refuses " + str(values.shape))',
        "E*ValueError: helper refuses (7, 1)",
        f"zoo.py:{inspect.getsourcelines(zoo.helper)[1] + 1}: ValueError",
    ])


def test_ini_defaults_apply_under_marker_kwargs(pytester):
    pytester.makeini("[pytest]\nlossguard_output_shape = (3,)\nlossguard_domain = one-hot\n")
    pytester.makepyfile(test_ce="""
        import keras, pytest

        pytestmark = pytest.mark.lossguard(targets=[keras.losses.CategoricalCrossentropy()])
    """)
    result = pytester.runpytest("--lossguard", "-v")
    result.stdout.fnmatch_lines(["*CategoricalCrossentropy[[]lossguard[]] PASSED*"])
    pytester.makeini("[pytest]\nlossguard_domain = nonsense\n")
    result = pytester.runpytest("--lossguard")
    result.stderr.fnmatch_lines(["*lossguard: ini options: domain='nonsense' is not known*"])


@pytest.mark.parametrize(("ini", "error"), [
    ("lossguard_strict = maybe",
     "ERROR: lossguard: ini lossguard_strict: invalid truth value 'maybe'; write true or false"),
    ("lossguard_seed = abc",
     "ERROR: lossguard: ini lossguard_seed = 'abc' is not a Python literal, e.g. (1,) or 1e-5"),
    ("lossguard_probes = default nonsense",
     "ERROR: lossguard: ini lossguard_probes: unknown probe(s) nonsense; choose from default, *"),
])
def test_a_malformed_ini_key_stops_the_session_naming_the_key(pytester, ini, error):
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_one="def test_one():\n    assert True\n")
    result = pytester.runpytest("--lossguard")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([error])
    # A well-formed probes key is a session that runs.
    pytester.makeini("[pytest]\nlossguard_probes = default label-dtype\n")
    assert pytester.runpytest("--lossguard").ret == pytest.ExitCode.OK


def test_a_target_imported_into_two_modules_is_one_item_with_its_override(pytester):
    pytester.makepyfile(shared_losses="""
        import functools

        import pytest
        import tensorflow as tf

        @pytest.mark.lossguard
        def naive(y_true, y_pred):
            return tf.reduce_mean(tf.square(y_true - y_pred))

        def scaled(y_true, y_pred, k):
            return k * tf.reduce_mean(tf.square(tf.reshape(y_true, tf.shape(y_pred)) - y_pred))

        half = functools.partial(scaled, k=0.5)
    """)
    body = "from shared_losses import half, naive\n" \
           "import pytest\n" \
           "pytestmark = pytest.mark.lossguard(targets=[half])\n"
    pytester.makepyfile(test_a=body, test_b=body)
    pytester.makepyprojecttoml("""
        [tool.lossguard.targets."test_a:half"]
        output_shape = [3]
    """)
    result = pytester.runpytest("--lossguard", "-rA", "-p", "no:randomly",
                                           "--lossguard-report=out.json")
    assert outcomes_by_item(result) == {"test_a.py::naive[lossguard]": "FAILED",
                                        "test_a.py::scaled[lossguard]": "PASSED"}
    import json
    report = json.loads((pytester.path / "out.json").read_text())
    half = next(t for t in report["targets"] if t["nodeid"].endswith("scaled[lossguard]"))
    assert half["report"]["pred_shape"] == [3]


def test_positional_targets_are_refused_with_the_keyword_form(pytester):
    pytester.makepyfile(test_pos="""
        import pytest

        def a(y_true, y_pred):
            return y_true - y_pred

        pytestmark = pytest.mark.lossguard(a, a)
    """)
    result = pytester.runpytest("--lossguard")
    result.stdout.fnmatch_lines(["*pass targets by keyword, targets=[[]...[]]*"])


def test_a_malformed_ini_key_fails_every_fixture_check_alike(pytester):
    pytester.makeini("[pytest]\nlossguard_probes = nope\n")
    pytester.makepyfile(test_two="""
        import numpy as np

        def mae(y_true, y_pred):
            return np.mean(np.abs(y_true - y_pred))

        def test_1(lossguard):
            lossguard.check(mae)

        def test_2(lossguard):
            lossguard.check(mae)
    """)
    result = pytester.runpytest("-rf")  # lossguard off: the fixture still checks
    result.assert_outcomes(failed=2)
    said = "Failed: lossguard: ini lossguard_probes: unknown probe(s) nope;*"
    result.stdout.fnmatch_lines([f"FAILED test_two.py::test_1 - {said}",
                                 f"FAILED test_two.py::test_2 - {said}"])


def test_a_fixture_check_in_teardown_keeps_its_row(pytester):
    pytester.makepyfile(test_teardown="""
        import numpy as np
        import pytest

        def np_mae(y_true, y_pred):
            return np.mean(np.abs(y_true - y_pred))

        @pytest.fixture
        def checked_after(lossguard):
            yield
            lossguard.check(np_mae)

        def test_body(checked_after, lossguard):
            lossguard.check(lambda t, p: np.mean(np.abs(np.reshape(t, np.shape(p)) - p)))
    """)
    result = pytester.runpytest("--lossguard", "--lossguard-report=r.json")
    result.assert_outcomes(passed=1, errors=1)  # the teardown check fails its teardown
    rows = {row["nodeid"]: row["ok"] for row in
            json.loads((pytester.path / "r.json").read_text())["targets"]}
    assert rows == {"test_teardown.py::test_body[lossguard-test_body.<locals>.<lambda>]": True,
                    "test_teardown.py::test_body[lossguard-np_mae]": False}


def test_fixture_fails_the_test_with_the_report(pytester):
    pytester.makepyfile(test_fixture="""
        import numpy as np

        def np_mae(y_true, y_pred):
            return np.abs(y_true - y_pred)

        def test_guarded(lossguard):
            lossguard.check(np_mae)

        def test_aligned(lossguard):
            report = lossguard.check(lambda t, p: np.abs(np.reshape(t, np.shape(p)) - p))
            assert report.ok

        def quantiles(y_true, y_pred):
            return np.abs(np.reshape(y_true, (-1, 1)) - y_pred)

        def test_override_applies(lossguard):
            assert lossguard.check(quantiles).pred_shape == (3,)

        def test_not_a_loss(lossguard):
            lossguard.check(42)

        class Proxy:
            def __getattr__(self, name):
                raise RuntimeError(f"not ready: {name}")

            def __call__(self, y_true, y_pred):
                return np_mae(y_true, y_pred)

        def test_proxy(lossguard):
            lossguard.check(Proxy())

        def test_twice(lossguard):
            lossguard.check(quantiles)
            lossguard.check(quantiles, seed=1)
    """)
    pytester.makepyprojecttoml("""
        [tool.lossguard.targets."test_fixture:quantiles"]
        y_true_shape = [1]
        y_pred_shape = [3]
    """)
    result = pytester.runpytest("-rA")
    assert outcomes_by_item(result) == {
        "test_fixture.py::test_guarded": "FAILED",
        "test_fixture.py::test_aligned": "PASSED",
        "test_fixture.py::test_override_applies": "PASSED",
        "test_fixture.py::test_not_a_loss": "FAILED",
        "test_fixture.py::test_proxy": "FAILED",
        "test_fixture.py::test_twice": "PASSED",
    }
    result.stdout.fnmatch_lines(["*lossguard: np_mae broadcasts labels against predictions"])
    result.stdout.fnmatch_lines(["lossguard: 42 (int) is not callable; lossguard accepts*"])
    # An object whose attribute reads raise is a lossguard error naming it, not a raw exception.
    result.stdout.fnmatch_lines(["lossguard: Proxy: *RuntimeError: not ready*"])
    assert "pytest_lossguard/" not in result.stdout.str()
    # Once, not again after "During handling of the above exception".
    assert "During handling" not in result.stdout.str()
    assert result.stdout.str().count("42 (int) is not callable") == 2  # block + short summary
    # An assertion, it checks without the switch; with it, each check is a row of the table and
    # the JSON report, named after its test, whatever happened to it.
    result.stdout.no_fnmatch_line("*= lossguard =*")
    result = pytester.runpytest("--lossguard", "--lossguard-report=r.json")
    rows = {row["nodeid"]: row for row in
            json.loads((pytester.path / "r.json").read_text())["targets"]}
    assert {name: (row["ok"], row["broadcast"], row["error"]) for name, row in rows.items()} == {
        "test_fixture.py::test_guarded[lossguard-np_mae]": (False, 4, 0),
        "test_fixture.py::test_aligned[lossguard-test_aligned.<locals>.<lambda>]": (True, 0, 0),
        "test_fixture.py::test_override_applies[lossguard-quantiles]": (True, 0, 0),
        "test_fixture.py::test_not_a_loss[lossguard-int]": (False, 0, 1),
        "test_fixture.py::test_proxy[lossguard-Proxy]": (False, 0, 1),
        "test_fixture.py::test_twice[lossguard-quantiles]": (True, 0, 0),
        "test_fixture.py::test_twice[lossguard-quantiles-2]": (True, 0, 0),
    }
    assert rows["test_fixture.py::test_not_a_loss[lossguard-int]"]["message"].startswith(
        "42 (int) is not callable")
    result.stdout.fnmatch_lines(["*= lossguard =*",
                                 "*test_fixture.py::test_guarded[[]lossguard-np_mae[]]"])


FRAMEWORKS = ("tensorflow", "keras", "tf_keras", "jax", "torch")
# With no target, the plugin costs nothing: not even NumPy loads.
REPORT_MODULES = f"""
import sys

def pytest_sessionfinish(session):
    loaded = sorted(m for m in {(*FRAMEWORKS, "numpy")!r} if m in sys.modules)
    print("LOADED:", ",".join(loaded) or "none")
"""


@pytest.mark.parametrize("args", [(), ("--lossguard",)])
def test_no_framework_is_imported_when_no_target_is_collected(pytester, args):
    pytester.makeconftest(REPORT_MODULES)
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess("-s", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*LOADED: none*"])
    # ...and the plugin was active in that very configuration.
    plugins = pytester.runpytest_subprocess("--trace-config", *args)
    plugins.stdout.fnmatch_lines(["*pytest_lossguard*"])


def test_importing_the_package_imports_no_framework_nor_numpy(pytester):
    code = textwrap.dedent(f"""
        import sys
        import pytest_lossguard, pytest_lossguard.plugin
        print(sorted(m for m in {(*FRAMEWORKS, "numpy")!r} if m in sys.modules))
    """)
    result = pytester.run(sys.executable, "-c", code)
    assert result.outlines[-1] == "[]"


def test_p_no_lossguard_disables_the_plugin(pytester):
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    result = pytester.runpytest("-p", "no:lossguard", "--lossguard")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --lossguard*"])


def test_xdist_gives_the_serial_verdicts_and_one_summary(losses):
    serial = losses.runpytest("--lossguard", "-rA")
    parallel = losses.runpytest_subprocess("--lossguard", "-rA", "-n", "2")
    assert outcomes_by_item(parallel) == outcomes_by_item(serial)
    totals = [line for line in parallel.outlines if line.endswith(" 9 target(s)")]
    assert len(totals) == 1
    counts = next(line for line in serial.outlines if line.endswith(" 9 target(s)")).split()[:6]
    assert totals[0].split()[:6] == counts  # probes and verdicts; seconds differ
    assert sum("= lossguard =" in line for line in parallel.outlines) == 1


# zoo.py's models, marked in place: a step that broadcasts, none, one that raises, and one
# that needs a constructor argument.
MODELS = """
import pytest
from zoo import COMPILE, HandMSE, Linear, Raising, Scaled

for target in (HandMSE, Linear):
    pytest.mark.lossguard(input_shape=(3,), compile=COMPILE)(target)
for target in (Raising, Scaled):
    pytest.mark.lossguard(input_shape=(3,))(target)
del target
"""


def test_model_targets_become_items_with_step_level_messages(zoo_pytester):
    zoo_pytester.makepyfile(test_marked_models=MODELS)
    result = zoo_pytester.runpytest("--lossguard", "-rA", "-p", "no:randomly")
    assert outcomes_by_item(result) == {
        "test_marked_models.py::HandMSE[lossguard]": "FAILED",
        "test_marked_models.py::Linear[lossguard]": "PASSED",
        "test_marked_models.py::Raising[lossguard]": "ERROR",
        "test_marked_models.py::Scaled[lossguard]": "ERROR",
    }
    result.stdout.fnmatch_lines([
        "*lossguard: HandMSE broadcasts labels against predictions",
        "*probe       labels-missing-unit-axis   y_true (7,)  y_pred (7, 1)",
        "*method      train_step: loss and weight update differ from the Keras-aligned run",
        "*update      largest weight-update difference *",
        f"*broadcast   {MSE_LINE}   return tf.reduce_mean(tf.square(y_true - y_pred))",
        "*fix         in train_step, let Keras align the labels*",
    ])
    # A step that raises on aligned labels shows the user's traceback; a class that cannot
    # be built says how to pass its arguments.
    result.stdout.fnmatch_lines(["*raise RuntimeError*", "*this train_step is unfinished*"])
    result.stdout.fnmatch_lines(["lossguard: cannot build Scaled: TypeError*init=*"])
    assert "pytest_lossguard/" not in result.stdout.str()


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def test_the_same_suite_run_twice_gives_identical_json_reports_timings_aside(zoo_pytester):
    import json

    pytester = zoo_pytester
    # RandomInit's Dense starts from Keras's unseeded glorot initialiser.
    pytester.makepyfile(test_marked_models=MODELS + '''
from zoo import RandomInit, mse

pytest.mark.lossguard(input_shape=(3,), compile={"optimizer": "sgd", "loss": mse})(RandomInit)
instance = RandomInit()
instance.build((None, 3))


@pytest.mark.lossguard(targets=[instance], input_shape=(3,), compile={"loss": mse})
def test_instance():
    assert instance.built
''')
    reports = []
    # Twice in this process (the second run after the first has moved every random state),
    # then in fresh xdist worker processes.
    for run, args in (("first", ()), ("second", ()), ("parallel", ("-n", "2"))):
        runpytest = pytester.runpytest_subprocess if args else pytester.runpytest
        runpytest("--lossguard", f"--lossguard-report={run}.json", *args)
        reports.append(json.loads((pytester.path / f"{run}.json").read_text()))
    first, second, parallel = (without_timings(report) for report in reports)
    assert first == second == parallel
    for name in ("HandMSE", "RandomInit", "test_instance[lossguard-RandomInit"):
        hand = next(t for t in first["targets"] if f"::{name}" in t["nodeid"])
        assert hand["report"]["findings"][0]["update_difference"] > 0


def test_json_report_and_junit_properties_are_complete_and_match_a_serial_run(losses):
    import json
    import xml.etree.ElementTree as ET

    serial = losses.runpytest("--lossguard", "--lossguard-report=serial.json")
    parallel = losses.runpytest_subprocess("--lossguard", "-n", "2", "--junitxml=junit.xml",
                                           "--lossguard-report=out/parallel.json")
    assert serial.ret == parallel.ret == 1
    first = json.loads((losses.path / "serial.json").read_text())
    second = json.loads((losses.path / "out" / "parallel.json").read_text())
    assert without_timings(first) == without_timings(second)

    assert set(first) == {"schema", "versions", "session", "targets", "totals"}
    assert first["versions"]["pytest-lossguard"] and first["versions"]["tensorflow"]
    names = {t["nodeid"].split("::")[1] for t in first["targets"]}
    assert names == {"mse[lossguard]", "aligned_mse[lossguard]", "ElementwiseAbs[lossguard]",
                     "shape_asserting_mse[lossguard]", "raising[lossguard]",
                     "NotALoss[lossguard]", "MeanSquaredError[lossguard]", "r2[lossguard]",
                     "test_ordinary[lossguard-aligned_mse]"}
    by_name = {t["nodeid"].split("::")[1]: t for t in first["targets"]}
    assert "is not a keras Loss, Metric or Model" in by_name["NotALoss[lossguard]"]["message"]
    naive = by_name["mse[lossguard]"]["report"]
    assert naive["seed"] == 0 and naive["alignment"].startswith("keras ")
    finding = naive["findings"][0]
    assert finding["verdict"] == "broadcast" and finding["location"] == MSE_LINE
    assert finding["operation"] == "Sub (7,), (7, 1) -> (7, 7)"
    assert finding["paths"] == {"direct call": "affected", "compile(loss=...)": "protected",
                                "compile(metrics=...)": "affected"}
    assert first["totals"]["targets"] == len(first["targets"])
    assert first["totals"]["broadcast"] == sum(t["broadcast"] for t in first["targets"])

    cases = ET.parse(losses.path / "junit.xml").getroot().iter("testcase")
    properties = {
        case.get("name"): json.loads(prop.get("value"))
        for case in cases for prop in case.iter("property") if prop.get("name") == "lossguard"
    }
    assert set(properties) == names
    assert properties["mse[lossguard]"]["report"]["findings"][0]["location"] == MSE_LINE


def test_verdicts_are_coloured_by_color_and_no_color(losses, monkeypatch):
    item = "test_losses.py::mse[lossguard]"
    result = losses.runpytest("--lossguard", "--color=yes", item)
    text = result.stdout.str()
    assert "mse \x1b[31mbroadcasts labels against predictions\x1b[0m" in text
    assert "probes  \x1b[32msafe\x1b[0m  \x1b[31mbroadcast\x1b[0m  \x1b[31mmismatch\x1b[0m  " \
           "\x1b[33mraises\x1b[0m  \x1b[31merror\x1b[0m  seconds  target" in text
    assert "     4     0          \x1b[31m4\x1b[0m         0" in text
    plain = losses.runpytest("--lossguard", "--color=no", item)
    assert "\x1b[" not in plain.stdout.str()
    # Without colour the text is the same, escape codes aside.
    strip = re.compile(r"\x1b\[[0-9;]*m|\d+\.\d\d")
    coloured, uncoloured = (strip.sub("", out).splitlines()[2:-1] for out in
                            (text, plain.stdout.str()))  # not the timed last line
    assert coloured == uncoloured
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in losses.runpytest("--lossguard", item).stdout.str()


def test_the_cli_colours_on_a_terminal_only(tmp_path):
    from pytest_lossguard.render import colour_wanted

    assert colour_wanted(True, {}) and not colour_wanted(False, {})
    assert not colour_wanted(True, {"NO_COLOR": "1"}) and colour_wanted(False, {"FORCE_COLOR": "1"})
    assert not colour_wanted(True, {"TERM": "dumb"}) and colour_wanted(False, {"PY_COLORS": "1"})
    (tmp_path / "bad.py").write_text(
        "import numpy as np\n\n\ndef naive(y_true, y_pred):\n"
        "    return np.mean(np.abs(y_true - y_pred))\n")
    env = {**os.environ, "FORCE_COLOR": "1"}
    env.pop("NO_COLOR", None)
    env.pop("PY_COLORS", None)
    run = subprocess.run([sys.executable, "-m", "pytest_lossguard", "bad.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env=env)
    assert "naive \x1b[31mbroadcasts labels against predictions\x1b[0m" in run.stdout
    run = subprocess.run([sys.executable, "-m", "pytest_lossguard", "bad.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env={**env, "NO_COLOR": "1"})
    assert "\x1b[" not in run.stdout and "naive broadcasts labels" in run.stdout


@pytest.mark.parametrize("flag", ["--setup-plan", "--setup-only"])
def test_setup_plan_and_setup_only_call_no_target(pytester, flag):
    pytester.makepyfile(test_called="""
        import pathlib
        import pytest

        @pytest.mark.lossguard
        def records(y_true, y_pred):
            pathlib.Path("called").write_text("yes")
            return (y_true - y_pred) ** 2

        def test_ordinary():
            'A test of the sample project: its body does not matter here.'
    """)
    result = pytester.runpytest("--lossguard", flag, "-p", "no:randomly")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*test_called.py::records[[]lossguard[]]*"])
    assert not (pytester.path / "called").exists()


def test_a_bad_mark_or_a_hostile_object_is_one_error_and_the_file_runs_on(zoo_pytester):
    zoo_pytester.makepyfile(test_bad_mark="""
        import pytest
        from zoo import aligned_mse


        class Hostile:
            def __getattr__(self, name):
                raise RuntimeError("no attributes here")


        hostile = Hostile()


        @pytest.mark.lossguard(targets=aligned_mse)
        def test_not_a_list():
            'A test of the sample project: its body does not matter here.'


        def test_ordinary():
            'A test of the sample project: its body does not matter here.'
    """)
    result = zoo_pytester.runpytest("--lossguard", "-rA", "-p", "no:randomly")
    assert outcomes_by_item(result) == {
        "test_bad_mark.py::test_not_a_list": "PASSED",
        "test_bad_mark.py::test_not_a_list[lossguard]": "ERROR",
        "test_bad_mark.py::test_ordinary": "PASSED",
    }
    result.stdout.fnmatch_lines([
        "*lossguard: @pytest.mark.lossguard on test_not_a_list: targets=aligned_mse is not a "
        "list; write targets=[[]aligned_mse[]]*",
    ])
    assert "Interrupted" not in result.stdout.str()


def test_marks_that_would_do_nothing_are_errors_saying_what_to_write(zoo_pytester):
    zoo_pytester.makepyfile(test_idle_marks="""
        import pytest
        from zoo import aligned_mse


        @pytest.mark.lossguard
        class TestMarked:
            def test_method(self):
                'A test of the sample project: its body does not matter here.'


        @pytest.mark.lossguard
        @pytest.mark.parametrize("x", [1, 2])
        def test_parametrized(x):
            'A test of the sample project: its body does not matter here.'


        @pytest.mark.lossguard(targets=None)
        def test_none():
            'A test of the sample project: its body does not matter here.'


        @pytest.mark.lossguard(targets=[])
        def test_empty():
            'A test of the sample project: its body does not matter here.'


        @pytest.mark.lossguard(targets=[aligned_mse], probes=[])
        def test_no_probes():
            'A test of the sample project: its body does not matter here.'
    """)
    result = zoo_pytester.runpytest("--lossguard", "-rA", "-p", "no:randomly")
    outcomes = outcomes_by_item(result)
    assert {k: v for k, v in outcomes.items() if "lossguard" in k} == {
        "test_idle_marks.py::TestMarked[lossguard]": "ERROR",
        "test_idle_marks.py::test_parametrized[lossguard]": "ERROR",
        "test_idle_marks.py::test_none[lossguard]": "ERROR",
        "test_idle_marks.py::test_empty[lossguard]": "ERROR",
        "test_idle_marks.py::test_no_probes[lossguard-aligned_mse]": "ERROR",
    }
    assert sum(v == "PASSED" for v in outcomes.values()) == 6  # the tests themselves run
    result.stdout.fnmatch_lines_random([
        "*on test class TestMarked does nothing: *mark the loss itself, or list it on a test "
        "function, @pytest.mark.lossguard(targets=[[]my_loss[]])",
        "*on test test_parametrized names no target, so it does nothing; list what to probe*",
        "*on test_none: targets=None names no target; list what to probe, targets=[[]my_loss[]]*",
        "*on test_empty: targets=[[][]] names no target*",
        "*probes=[[][]] names no probe, so nothing would be checked; leave probes out*",
    ])


@pytest.mark.parametrize("where", ["folder", "under-a-file", "unmakeable"])
def test_a_report_path_nothing_can_be_written_to_is_a_usage_error(losses, where):
    (losses.path / "folder").mkdir()
    (losses.path / "file.txt").write_text("")
    path = {"folder": "folder", "under-a-file": "file.txt/sub/report.json",
            "unmakeable": "/proc/lossguard-missing/report.json"}[where]
    result = losses.runpytest("--lossguard", f"--lossguard-report={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: lossguard: --lossguard-report: *"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_report_that_cannot_be_written_at_the_end_is_a_line_after_the_table(losses,
                                                                               monkeypatch):
    from pytest_lossguard import summary

    monkeypatch.setattr(summary, "report_path", lambda config: losses.path / "gone" / "r.json")
    (losses.path / "gone").write_text("")  # a file where the folder should be
    result = losses.runpytest("--lossguard", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*= lossguard =*", "*target(s)",
                                 "lossguard: the JSON report could not be written to *r.json: *",
                                 "*failed*passed*"])


FAULTS = """
import os
import sys

import pytest
from zoo import aligned_mse, mse


@pytest.mark.lossguard
def exits(y_true, y_pred):
    sys.exit(3)


@pytest.mark.lossguard(targets=[aligned_mse], timeout=float("inf"))
def test_forever():
    'A test of the sample project: its body does not matter here.'
"""


def test_every_collected_target_has_a_row_and_the_report_says_if_the_session_was_complete(
        zoo_pytester):
    zoo_pytester.makepyfile(test_faults=FAULTS)
    result = zoo_pytester.runpytest("--lossguard", "--lossguard-report=r.json", "-p",
                                    "no:randomly")
    report = json.loads((zoo_pytester.path / "r.json").read_text())
    rows = {row["nodeid"]: row for row in report["targets"]}
    assert set(rows) == {"test_faults.py::exits[lossguard]",
                         "test_faults.py::test_forever[lossguard-aligned_mse]"}
    assert rows["test_faults.py::exits[lossguard]"]["message"].startswith(
        "exits called sys.exit(3); a target must return or raise")
    assert "timeout=inf must be a finite number" in \
        rows["test_faults.py::test_forever[lossguard-aligned_mse]"]["message"]
    assert report["session"] == {"complete": True, "interrupted": False, "not_run": 0}
    assert report["totals"]["failed"] == 2
    result.stdout.fnmatch_lines(["*timeout=inf must be a finite number of seconds*"])

    # Ctrl-C during the first target: the rest is "not run", and the session incomplete.
    zoo_pytester.makepyfile(test_faults="""
        import pytest
        from zoo import aligned_mse

        @pytest.mark.lossguard
        def interrupts(y_true, y_pred):
            raise KeyboardInterrupt

        @pytest.mark.lossguard(targets=[aligned_mse])
        def test_later():
            'A test of the sample project: its body does not matter here.'
    """)
    zoo_pytester.runpytest("--lossguard", "--lossguard-report=r.json", "-p", "no:randomly",
                           no_reraise_ctrlc=True)
    report = json.loads((zoo_pytester.path / "r.json").read_text())
    assert report["session"] == {"complete": False, "interrupted": True, "not_run": 2}
    assert [row["message"] for row in report["targets"]] == ["not run", "not run"]
    assert report["totals"]["failed"] == 0


@pytest.mark.parametrize("args", [("--collect-only",), ("-k", "nothing_matches"),
                                  ("--setup-plan",)])
def test_a_session_that_runs_no_target_leaves_an_earlier_report_alone(losses, args):
    earlier = '{"earlier": true}\n'
    (losses.path / "r.json").write_text(earlier)
    losses.runpytest("--lossguard", "--lossguard-report=r.json", *args)
    assert (losses.path / "r.json").read_text() == earlier


def test_a_crashed_xdist_worker_s_target_has_a_failing_row(zoo_pytester):
    zoo_pytester.makepyfile(test_crash="""
        import os
        import pytest
        from zoo import aligned_mse

        @pytest.mark.lossguard
        def crashes(y_true, y_pred):
            os._exit(1)

        @pytest.mark.lossguard(targets=[aligned_mse])
        def test_fine():
            'A test of the sample project: its body does not matter here.'
    """)
    zoo_pytester.runpytest("--lossguard", "--lossguard-report=r.json", "-n", "2",
                           "-p", "no:randomly")
    report = json.loads((zoo_pytester.path / "r.json").read_text())
    rows = {row["nodeid"]: row for row in report["targets"]}
    assert "crashed" in rows["test_crash.py::crashes[lossguard]"]["message"]
    assert report["totals"]["failed"] >= 1


@pytest.mark.parametrize(("flag", "ran"), [
    ("--lf", ["test_losses.py::mse[lossguard]"]),
    ("--ff", ["test_losses.py::mse[lossguard]", "test_losses.py::aligned_mse[lossguard]"]),
])
def test_last_failed_and_failed_first_find_lossguard_items(pytester, flag, ran):
    pytester.makepyfile(test_losses="""
        import numpy as np
        import pytest

        @pytest.mark.lossguard
        def aligned_mse(y_true, y_pred):
            return np.mean((np.reshape(y_true, np.shape(y_pred)) - y_pred) ** 2)

        @pytest.mark.lossguard
        def mse(y_true, y_pred):
            return np.mean((y_true - y_pred) ** 2)
    """)
    pytester.runpytest("--lossguard", "-p", "cacheprovider", "-p", "no:randomly")
    result = pytester.runpytest("--lossguard", "-p", "cacheprovider", "-p", "no:randomly", flag,
                                "-v")
    assert "run-last-failure: rerun previous 1 failure" in result.stdout.str()
    order = [line.split(" ")[0] for line in result.stdout.lines
             if line.startswith("test_losses.py::") and ("PASSED" in line or "FAILED" in line)]
    assert order == ran
