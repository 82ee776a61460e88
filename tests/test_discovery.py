"""Discovery of unmarked targets, the lossguard command, and --lossguard-scan."""

import contextlib
import importlib
import io
import json
import os
import re
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_plugin import outcomes_by_item

import pytest_lossguard
from pytest_lossguard.discovery import discover, scan_source

LOSSES = '''
import keras
import tensorflow as tf


def naive(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - y_pred))


def aligned(labels, predictions):
    labels = tf.reshape(labels, tf.shape(predictions))
    return tf.reduce_mean(tf.square(labels - predictions))


def loss(model, batch):
    return model(batch)


def batches(x, y):
    return list(zip(x, y))


def r2(a, b):
    residual = tf.reduce_sum(tf.square(a - b))
    return 1.0 - residual / tf.reduce_sum(tf.square(a - tf.reduce_mean(a)))


class Absolute(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.ops.abs(y_true - y_pred)


class Scaled(keras.losses.Loss):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * keras.ops.abs(y_true - y_pred)


class Plain:
    def call(self, y_true, y_pred):
        return 0.0


class Residual(keras.metrics.Metric):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.total.assign_add(keras.ops.sum(keras.ops.abs(y_true - y_pred)))

    def result(self):
        return self.total


class Rmse(keras.metrics.RootMeanSquaredError):
    pass


rmse = keras.metrics.RootMeanSquaredError()


huber = keras.losses.Huber()
'''

MODELS = '''
import keras
import tensorflow as tf

from lgpkg.losses import r2


def mse(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_true - y_pred))


class Linear(keras.Model):
    def build(self, input_shape):
        self.layer = keras.layers.Dense(1, kernel_initializer="zeros")

    def call(self, x, training=None):
        return self.layer(x)


class Hand(Linear):
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = mse(y, self(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}


def build():
    model = Linear()
    model.compile(optimizer="sgd", loss="mse", metrics=[r2])
    return model
'''


def importable(tmp_path, monkeypatch, name, modules):
    """A package `name` of `modules` (module name -> source) under tmp_path, on sys.path;
    yields tmp_path and drops the package's modules afterwards."""
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for loaded in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[loaded]


@pytest.fixture
def package(tmp_path, monkeypatch):
    yield from importable(tmp_path, monkeypatch, "lgpkg", {"losses": LOSSES, "models": MODELS})


def test_discovery_finds_each_kind_with_its_reason_and_skips_near_misses(package):
    found = {c.id: c for c in discover(["lgpkg"])}
    assert {key: c.reason for key, c in found.items()} == {
        "lgpkg.losses:naive": "parameters (y_true, y_pred)",
        "lgpkg.losses:aligned": "parameters (labels, predictions)",
        "lgpkg.losses:r2": "used in compile(metrics=...) in lgpkg.models",
        "lgpkg.losses:Absolute": "a keras Loss subclass",
        "lgpkg.losses:Scaled": "a keras Loss subclass",
        "lgpkg.losses:huber": "a keras Loss instance",
        "lgpkg.losses:Residual": "a keras Metric subclass overriding update_state",
        "lgpkg.models:mse": "parameters (y_true, y_pred)",
        "lgpkg.models:Hand": "a keras Model overriding train_step",
    }
    assert "init=" in found["lgpkg.losses:Scaled"].skipped
    assert not found["lgpkg.losses:naive"].skipped


def test_the_ast_pass_sees_candidates_without_importing(package):
    reasons = scan_source((package / "lgpkg" / "losses.py").read_text())
    assert "naive: parameters y_true, y_pred" in reasons
    assert not any(r.startswith(("loss:", "batches:")) for r in reasons)
    assert "Residual: subclasses Metric" in reasons
    assert scan_source("def batches(x, y):\n    return x\n") == []
    # Instances of classes defined elsewhere, and partials, may be losses: the import pass
    # decides. A plain call result is not a candidate.
    assert scan_source("from lib import Pinball\npinball = Pinball()\n") == [
        "pinball: built by Pinball(...)"]
    assert scan_source("import functools\nhalf = functools.partial(f, k=0.5)\n") == [
        "half: built by partial(...)"]
    assert scan_source("import logging\nlog = logging.getLogger(__name__)\n") == []


def lossguard(*args, cwd):
    """`python -m pytest_lossguard *args` in a process of its own: exit code, stdout, stderr."""
    result = subprocess.run([sys.executable, "-m", "pytest_lossguard", *args], cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout, result.stderr


MAIN = Path(pytest_lossguard.__file__).with_name("__main__.py")


def lossguard_here(*args, cwd):
    """`python -m pytest_lossguard *args`, run in this process (TensorFlow is loaded already).

    The modules it imports from under cwd and the sys.path entries it adds are undone, so each
    call imports the user's files afresh, as a new process would.
    """
    saved = list(sys.path), sys.argv, os.getcwd(), set(sys.modules)
    out, err, code = io.StringIO(), io.StringIO(), None
    sys.argv = ["lossguard", *args]
    os.chdir(cwd)
    importlib.invalidate_caches()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(str(MAIN), run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.path[:], sys.argv = saved[:2]
        os.chdir(saved[2])
        root = str(Path(cwd).resolve())
        for name in set(sys.modules) - saved[3]:
            if str(getattr(sys.modules[name], "__file__", None) or "").startswith(root):
                del sys.modules[name]
    return code, out.getvalue(), err.getvalue()


def test_cli_exit_codes_for_bad_good_and_candidate_free_files(tmp_path):
    (tmp_path / "bad.py").write_text(textwrap.dedent(LOSSES.split("def loss(")[0]))
    (tmp_path / "good.py").write_text("import tensorflow as tf\n\n\ndef aligned(y_true, y_pred):\n"
                                      "    y_true = tf.reshape(y_true, tf.shape(y_pred))\n"
                                      "    return tf.reduce_mean(tf.square(y_true - y_pred))\n")
    (tmp_path / "plain.py").write_text("def batches(x, y):\n    return list(zip(x, y))\n")
    code, out, _ = lossguard("bad.py", cwd=tmp_path)
    assert code == 1
    assert "lossguard: naive broadcasts labels against predictions" in out
    assert "bad:naive" in out and "2 target(s)" in out
    code, out, _ = lossguard("good.py", "--format", "json", "--report", "r.json", cwd=tmp_path)
    assert code == 0
    document = json.loads(out)
    assert [t["nodeid"] for t in document["targets"]] == ["good:aligned"]
    assert json.loads((tmp_path / "r.json").read_text()) == document
    code, out, _ = lossguard("plain.py", cwd=tmp_path)
    assert (code, out.strip()) == (0, "lossguard: no candidate in 1 file(s); nothing to check")
    code, _, err = lossguard("no_such_module_here", cwd=tmp_path)
    assert code == 2 and "no module named 'no_such_module_here'" in err
    code, _, err = lossguard("--format", "xml", "good.py", cwd=tmp_path)
    assert code == 2 and "invalid choice" in err
    code, out, _ = lossguard("--version", cwd=tmp_path)
    assert (code, out.strip()) == (0, f"lossguard {pytest_lossguard.__version__}")


NAIVE = "import tensorflow as tf\n\n\ndef naive(y_true, y_pred):\n" \
        "    return tf.reduce_mean(tf.square(y_true - y_pred))\n"
ALIGNED = "import tensorflow as tf\n\n\ndef aligned(y_true, y_pred):\n" \
          "    y_true = tf.reshape(y_true, tf.shape(y_pred))\n" \
          "    return tf.reduce_mean(tf.square(y_true - y_pred))\n"


def test_cli_checks_every_file_even_when_two_share_a_name(tmp_path):
    for folder, source in (("a", ALIGNED), ("b", NAIVE)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "losses.py").write_text(source)
    # Each is named by its path, in either order, so a target key means one file on every run.
    (tmp_path / "pyproject.toml").write_text('[tool.lossguard.targets."b.losses:naive"]\n'
                                             "y_true_shape = [3]\ny_pred_shape = [3]\n")
    for order in (("a/losses.py", "b/losses.py"), ("b/losses.py", "a/losses.py")):
        code, out, err = lossguard_here(*order, "--format", "json", cwd=tmp_path)
        rows = {row["nodeid"]: row for row in json.loads(out)["targets"]}
        assert sorted(rows) == ["a.losses:aligned", "b.losses:naive"], rows
        assert rows["b.losses:naive"]["report"]["true_shape"] == [3]  # its entry applied
        assert code == 0 and "names no candidate" not in err, err


def test_the_console_script_finds_modules_in_the_working_directory(tmp_path):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "losses.py").write_text(NAIVE)
    script = Path(sys.executable).parent / "lossguard"
    result = subprocess.run([str(script), "mypkg.losses"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "mypkg.losses:naive" in result.stdout


def test_cli_honours_tool_lossguard_overrides(tmp_path):
    (tmp_path / "quantile.py").write_text(
        "import tensorflow as tf\n\n\ndef pinball(y_true, y_pred):\n"
        "    error = tf.reshape(y_true, (-1, 1)) - y_pred\n"
        "    q = tf.constant([0.1, 0.5, 0.9])\n"
        "    return tf.reduce_mean(tf.maximum(q * error, (q - 1) * error), axis=-1)\n")
    assert lossguard_here("quantile.py", cwd=tmp_path)[0] == 1  # judged with (1,) vs (1,) shapes
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lossguard.targets."quantile:pinball"]\ny_true_shape = [1]\ny_pred_shape = [3]\n')
    code, out, _ = lossguard_here("quantile.py", cwd=tmp_path)
    assert code == 0, out


PINBALL = ("import tensorflow as tf\n\n\ndef pinball(y_true, y_pred):\n"
           "    error = tf.reshape(y_true, (-1, 1)) - y_pred\n"
           "    q = tf.constant([0.1, 0.5, 0.9])\n"
           "    return tf.reduce_mean(tf.maximum(q * error, (q - 1) * error), axis=-1)\n")


def test_cli_reads_tool_lossguard_of_the_project_it_imports_from_not_the_cwd(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "quantile.py").write_text(PINBALL)
    (project / "pyproject.toml").write_text(
        '[tool.lossguard.targets."quantile:pinball"]\ny_true_shape = [1]\ny_pred_shape = [3]\n')
    # The working directory's own pyproject.toml is another project's: not this file's.
    (tmp_path / "pyproject.toml").write_text("[tool.lossguard]\nstrict = true\n"
                                             '[tool.lossguard.targets."quantile:pinball"]\n'
                                             "y_true_shape = [2]\n")
    code, out, err = lossguard_here("project/quantile.py", "--format", "json", cwd=tmp_path)
    assert code == 0, out + err
    report = json.loads(out)["targets"][0]["report"]
    assert (report["true_shape"], report["pred_shape"], report["strict"]) == ([1], [3], False)
    assert "span several projects" not in err
    # With a file of another folder too, their rootdir is the shared one: the run says so.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "plain.py").write_text("def batches(x, y):\n    return x\n")
    _, _, err = lossguard_here("project/quantile.py", "other/plain.py", cwd=tmp_path)
    assert ("lossguard: the files given span several projects, so their rootdir is . and "
            "project/pyproject.toml is not read; run lossguard once per project to use each "
            "one's [tool.lossguard]") in err


UNSUPERVISED = """\
import keras


class Autoencoder(keras.Model):
    def __init__(self):
        super().__init__()
        self.code = keras.layers.Dense(2)
        self.out = keras.layers.Dense(3)

    def call(self, x):
        return self.out(self.code(x))

    def train_step(self, data):
        loss = keras.ops.mean(keras.ops.square(data - self(data)))
        return {"loss": loss}
"""


def test_a_scanned_model_whose_step_takes_no_labels_is_skipped_with_why(tmp_path):
    (tmp_path / "unsupervised.py").write_text(UNSUPERVISED)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lossguard.targets."unsupervised:Autoencoder"]\ninput_shape = [3]\n')
    code, out, _ = lossguard_here("unsupervised.py", cwd=tmp_path)
    assert code == 1, out  # nothing could be checked: not a clean pass, and not an error
    assert ("lossguard: skipped unsupervised:Autoencoder (a keras Model overriding "
            "train_step): Autoencoder's train_step takes its data as inputs alone, as fit(x) "
            "gives it") in out.replace("\n  ", " ")
    assert "unsupervised:Autoencoder (not checked)" in out


# A model whose input shape Keras cannot know, and LOSSES' class that needs arguments.
UNCHECKED = ("import keras\n\n\nclass Net(keras.Model):\n    def train_step(self, data):\n"
             "        return {}\n\n\n" + LOSSES[LOSSES.index("class Scaled"):
                                             LOSSES.index("class Plain")])


def test_cli_gives_skipped_candidates_a_row_and_a_failing_exit_code(tmp_path):
    (tmp_path / "unchecked.py").write_text(UNCHECKED)
    code, out, _ = lossguard_here("unchecked.py", cwd=tmp_path)
    assert code == 1, out  # nothing could be checked: not a clean pass
    table = out[out.index("probes  "):].splitlines()
    assert table[1:] == [
        "     0     0          0         0       0      0     0.00  unchecked:Net (not checked)",
        "     0     0          0         0       0      0     0.00  unchecked:Scaled (not checked)",
        "     0     0          0         0       0      0     0.00  2 target(s), 2 not checked"]
    code, out, _ = lossguard_here("unchecked.py", "--format", "json", cwd=tmp_path)
    document = json.loads(out)
    assert code == 1 and (document["totals"]["targets"], document["totals"]["failed"]) == (2, 2)
    net, scaled = document["targets"]
    assert net["message"].startswith("skipped: cannot tell the input shape of model Net; set it")
    assert scaled["message"].startswith("skipped: its constructor needs arguments")
    assert not net["ok"] and net["report"] is None and net["error"] == 0


def test_cli_warns_of_a_target_key_that_names_no_candidate(tmp_path):
    (tmp_path / "quantile.py").write_text(PINBALL)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.lossguard.targets."quantile:pinbal"]\ny_true_shape = [1]\n'  # a typo
        '[tool.lossguard.targets."src.quantile:pinball"]\ny_true_shape = [1]\n'  # wrong module
        '[tool.lossguard.targets."quantile:tf"]\nstrict = true\n'  # exists; not a candidate
        '[tool.lossguard.targets."elsewhere:pinbal"]\nstrict = true\n'  # not read this run
        '[tool.lossguard.targets."other:pinball"]\nstrict = true\n')  # a file not given
    (tmp_path / "other.py").write_text(PINBALL)
    code, out, err = lossguard_here("quantile.py", cwd=tmp_path)
    assert code == 1 and "quantile:pinball" in out
    assert err.splitlines() == [
        'lossguard: [tool.lossguard.targets."quantile:pinbal"] matches no candidate, so its '
        "options are not used; did you mean 'quantile:pinball'? (keys are module:qualname, as "
        "the summary table names targets)",
        'lossguard: [tool.lossguard.targets."src.quantile:pinball"] matches no candidate, so its '
        "options are not used; did you mean 'quantile:pinball'? (keys are module:qualname, as "
        "the summary table names targets)"]


def test_cli_report_makes_its_folder_and_a_report_it_cannot_write_comes_after_the_table(
        tmp_path):
    (tmp_path / "bad.py").write_text(NAIVE)
    code, out, _ = lossguard_here("bad.py", "--report", "new/folder/r.json", cwd=tmp_path)
    assert code == 1
    assert json.loads((tmp_path / "new" / "folder" / "r.json").read_text())["totals"]["failed"] == 1
    (tmp_path / "afile").write_text("")
    code, out, err = lossguard_here("bad.py", "--report", "afile/r.json", cwd=tmp_path)
    assert code == 2
    assert out.rstrip().endswith("1 target(s)")
    assert err.startswith("lossguard: the JSON report could not be written to afile/r.json: ")
    assert len(err.splitlines()) == 1


def test_cli_reports_each_file_it_cannot_import_and_checks_the_others(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "good.py").write_text(NAIVE)
    (tmp_path / "src" / "missing.py").write_text(
        "import math\nimport not_a_real_pkg\n\n\ndef f(y_true, y_pred):\n    return 0\n")
    (tmp_path / "src" / "syntax.py").write_text("def f(y_true, y_pred):\n    return (\n")
    (tmp_path / "src" / "raises.py").write_text(
        "def f(y_true, y_pred):\n    return 0\n\n\nraise RuntimeError('no config')\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "ok.py").write_text(ALIGNED)
    (tmp_path / "pkg" / "broken.py").write_text("import not_a_real_pkg\n")
    code, out, err = lossguard_here("src", "pkg", cwd=tmp_path)
    assert code == 2, out + err
    assert "lossguard: naive broadcasts labels against predictions" in out
    # Each file that could not be imported stands for its candidates: an error row of its own.
    assert "good:naive" in out and "pkg.ok:aligned" in out and "6 target(s)" in out
    code, out, _ = lossguard_here("src", "pkg", "--format", "json", cwd=tmp_path)
    rows = {row["nodeid"]: row for row in json.loads(out)["targets"]}
    assert sorted(name for name, row in rows.items() if row["error"]) == [
        "pkg/broken.py", "src/missing.py", "src/raises.py", "src/syntax.py"]
    assert rows["src/syntax.py"]["message"] == \
        "src/syntax.py:2: SyntaxError: '(' was never closed; fix the syntax"
    assert not rows["src/syntax.py"]["ok"] and rows["pkg.ok:aligned"]["ok"]
    assert sorted(err.splitlines()) == sorted([
        "lossguard: src/syntax.py:2: SyntaxError: '(' was never closed; fix the syntax",
        "lossguard: src/missing.py:2: cannot be imported: ModuleNotFoundError: No module named "
        "'not_a_real_pkg'; install not_a_real_pkg, or fix the import",
        "lossguard: src/raises.py:5: cannot be imported: RuntimeError: no config; fix it so "
        "that importing it succeeds",
        "lossguard: pkg/broken.py:1: cannot be imported: ModuleNotFoundError: No module named "
        "'not_a_real_pkg'; install not_a_real_pkg, or fix the import"])
    code, out, err = lossguard_here("src/syntax.py", cwd=tmp_path)
    assert code == 2 and out.splitlines()[1:] == [  # its row in the table, the reason below
        "     1     0          0         0       0      1     0.00  src/syntax.py",
        "     1     0          0         0       0      1     0.00  1 target(s)"]
    assert err == "lossguard: src/syntax.py:2: SyntaxError: '(' was never closed; fix the syntax\n"
    # A path or module that names nothing does not stop the others either.
    code, out, err = lossguard_here("nope.py", "no_such_module", "src/good.py", cwd=tmp_path)
    assert code == 2 and "good:naive" in out and "3 target(s)" in out
    assert err.splitlines() == [
        "lossguard: nope.py is neither a Python file nor a directory",
        "lossguard: no module named 'no_such_module'; give a file, a directory, or an importable "
        "module name"]


def test_cli_goes_on_past_a_package_that_raises_and_a_script_that_exits(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("raise RuntimeError('boom in init')\n")
    (tmp_path / "pkg" / "losses.py").write_text(ALIGNED)
    (tmp_path / "script.py").write_text(
        "import argparse\nargparse.ArgumentParser().parse_args(['--nope'])\n\n\n"
        "def f(y_true, y_pred):\n    return 0\n")
    (tmp_path / "ok.py").write_text(NAIVE)
    for given in (("pkg/losses.py",), ("pkg",), ("pkg.losses",)):
        code, out, err = lossguard_here(*given, "script.py", "ok.py", "--format", "json",
                                        cwd=tmp_path)
        rows = {row["nodeid"]: row for row in json.loads(out)["targets"]}
        assert code == 2 and rows["ok:naive"]["broadcast"] == 4, (given, err)
        assert "RuntimeError: boom in init" in err and "script.py" in rows, (given, err)


def test_cli_files_that_share_a_name_import_their_own_siblings(tmp_path):
    for folder, constant in (("a", "1.0"), ("b", "2.0")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"helpers_{folder}.py").write_text(f"SCALE = {constant}\n")
        (tmp_path / folder / "losses.py").write_text(
            f"from helpers_{folder} import SCALE\n\n\n" + NAIVE.replace(
                "return tf.reduce_mean", "return SCALE * tf.reduce_mean"))
    code, out, err = lossguard_here("a/losses.py", "b/losses.py", "--format", "json",
                                    cwd=tmp_path)
    rows = {row["nodeid"]: row for row in json.loads(out)["targets"]}
    assert code == 1 and sorted(rows) == ["a.losses:naive", "b.losses:naive"], err
    assert all(row["broadcast"] == 4 for row in rows.values())


def test_cli_says_a_directory_holds_no_python_files(tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = lossguard_here("empty", cwd=tmp_path)
    assert code == 2
    assert err.startswith("lossguard: empty is a directory with no Python files in it")


def test_cli_times_out_naming_the_target_once_and_where_to_raise_the_limit(tmp_path):
    (tmp_path / "hang.py").write_text(
        "import time\n\n\ndef slow(y_true, y_pred):\n    time.sleep(30)\n    return 0.0\n")
    (tmp_path / "pyproject.toml").write_text("[tool.lossguard]\ntimeout = 0.5\n")
    code, out, _ = lossguard_here("hang.py", cwd=tmp_path)
    assert code == 1
    assert out.startswith(
        "lossguard: slow did not finish within timeout=0.5 s; fix the hang, or raise the limit "
        "with timeout = <seconds> under [tool.lossguard] in pyproject.toml, or in the target's "
        "[tool.lossguard.targets] entry (0 turns it off)\n  target      hang:slow\n")
    row = out.splitlines()[-2].split()  # the table's row of the target, above the totals
    assert row[-1] == "hang:slow" and float(row[-2]) >= 0.5


def test_the_fast_path_imports_no_framework(tmp_path):
    (tmp_path / "plain.py").write_text("def batches(x, y):\n    return list(zip(x, y))\n")
    script = ("import sys\nfrom pytest_lossguard.cli import main\ncode = main(['plain.py'])\n"
              "heavy = {'tensorflow', 'keras', 'tf_keras', 'jax', 'torch', 'numpy'}\n"
              "print(code, sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "0 []"


def test_a_scan_entry_that_names_no_module_is_an_error_row_and_the_rest_run(
        pytester, package, tmp_path):
    path = tmp_path / "lgpkg" / "losses.py"
    result = pytester.runpytest("--lossguard", f"--lossguard-scan={path}", "--lossguard-scan=",
                                "--lossguard-scan=lgpkg.nosuch", "--lossguard-scan=lgpkg.losses",
                                "-p", "no:randomly", "--lossguard-report=r.json")
    rows = {row["nodeid"]: row for row in
            json.loads((pytester.path / "r.json").read_text())["targets"]}
    # A path is told what to give instead: its module name, or the lossguard command.
    assert rows[f"lossguard-scan::{path}[lossguard]"]["message"] == (
        f"--lossguard-scan: {str(path)!r} is not a module name: scanning imports packages and "
        "modules by name (mypkg, mypkg.losses); give its module name, lgpkg.losses, or run "
        f"`lossguard {path}`, which takes files and directories")
    assert rows["lossguard-scan::[lossguard]"]["message"].startswith(
        "--lossguard-scan: an empty entry names no module")
    assert rows["lossguard-scan::lgpkg.nosuch[lossguard]"]["message"].startswith(
        "--lossguard-scan: no module named 'lgpkg.nosuch'; check the name")
    # The scan goes on: the module named right is probed, and the session is not aborted.
    assert rows["lossguard-scan::lgpkg.losses:naive[lossguard]"]["broadcast"] > 0
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_scan_probes_candidates_once_alongside_marked_ones(pytester, package):
    # In this process: `package` put lgpkg on sys.path, and the run's imports of it are undone.
    pytester.makepyfile(test_marked=(
        "import pytest\nfrom lgpkg.losses import naive\n\n"
        "pytestmark = pytest.mark.lossguard(targets=[naive])\n"))
    result = pytester.runpytest(
        "--lossguard", "--lossguard-scan=lgpkg", "--lossguard-scan=lgpkg.losses", "-rA",
        "-p", "no:randomly", "--lossguard-report=r.json")
    outcomes = outcomes_by_item(result)
    assert outcomes.pop("test_marked.py::naive[lossguard]") == "FAILED"
    assert not any("losses:naive" in nodeid for nodeid in outcomes)
    scan = {nodeid.removeprefix("lossguard-scan::"): outcome for nodeid, outcome in outcomes.items()
            if nodeid.startswith("lossguard-scan::")}
    assert scan == {
        "lgpkg.losses:Absolute[lossguard]": "FAILED",
        "lgpkg.losses:aligned[lossguard]": "PASSED",
        "lgpkg.losses:huber[lossguard]": "PASSED",
        "lgpkg.losses:r2[lossguard]": "FAILED",
        "lgpkg.losses:Residual[lossguard]": "FAILED",
        "lgpkg.models:mse[lossguard]": "FAILED",
    }
    # Each skip points at the target's file, not at lossguard's own code.
    result.stdout.fnmatch_lines_random([
        "SKIPPED [[]1[]] *lgpkg/losses.py:*: lossguard: its constructor needs arguments*",
        # A subclassed model needs input_shape: skipped, naming where to set it.
        "SKIPPED [[]1[]] *lgpkg/models.py:*: lossguard: cannot tell the input shape of model "
        "Hand; set it in "
        'pyproject.toml, under [[]tool.lossguard.targets."lgpkg.models:Hand"[]]: '
        "input_shape = [[]<features>[]]",
    ])
    # Skipped, each still has its row, not checked, as the lossguard command gives it.
    rows = {row["nodeid"]: row for row in
            json.loads((pytester.path / "r.json").read_text())["targets"]}
    for name, why in (("losses:Scaled", "its constructor needs arguments"),
                      ("models:Hand", "cannot tell the input shape of model Hand")):
        row = rows[f"lossguard-scan::lgpkg.{name}[lossguard]"]
        assert row["message"].startswith(f"skipped: {why}") and row["report"] is None
    result.stdout.fnmatch_lines(["*lossguard-scan::lgpkg.models:Hand[[]lossguard[]] (not checked)"])
    # One row each, with pytest's skipping plugin off too: the item skips itself.
    pytester.runpytest("--lossguard", "--lossguard-scan=lgpkg", "-p", "no:skipping",
                       "-p", "no:randomly", "--lossguard-report=r2.json")
    names = [row["nodeid"] for row in
             json.loads((pytester.path / "r2.json").read_text())["targets"]]
    assert names.count("lossguard-scan::lgpkg.losses:Scaled[lossguard]") == 1
    assert names.count("lossguard-scan::lgpkg.models:Hand[lossguard]") == 1


def test_cli_skips_a_scanned_model_that_needs_an_input_shape(package):
    code, out, _ = lossguard_here("lgpkg/models.py", cwd=package)
    assert code == 1  # mse broadcasts; Hand is skipped, not an error
    assert ("lossguard: skipped lgpkg.models:Hand (a keras Model overriding train_step): "
            "cannot tell the input shape of model Hand; set it in pyproject.toml, under "
            '[tool.lossguard.targets."lgpkg.models:Hand"]: input_shape = [<features>]'
            ) in out.replace("\n  ", " ")
    # Wrapped as a failure block is, and the TOML line is never cut.
    block = out[out.index("lossguard: skipped"):].split("\n\n")[0].splitlines()
    assert len(block) > 1 and max(map(len, block)) <= 100
    assert "input_shape = [<features>]" in out
    (package / "pyproject.toml").write_text(
        '[tool.lossguard.targets."lgpkg.models:Hand"]\ninput_shape = [3]\n')
    code, out, _ = lossguard_here("lgpkg/models.py", cwd=package)
    assert "lossguard: Hand broadcasts labels against predictions" in out


@pytest.mark.parametrize("files", [["bad.py"], ["a/losses.py", "b/losses.py"]],
                         ids=["one file", "two files of one name"])
def test_the_cli_keeps_tensorflow_logs_out_and_leaves_the_environment_as_it_was(tmp_path, files):
    (tmp_path / "bad.py").write_text(NAIVE)
    for folder in ("a", "b"):  # the second losses.py is imported by its path, first
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "losses.py").write_text(NAIVE)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    script = Path(sys.executable).parent / "lossguard"
    result = subprocess.run([str(script), *files], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "lossguard: naive broadcasts labels against predictions" in result.stdout
    for noise in ("I0000", "W0000", "E0000", "absl::InitializeLog", "cuInit"):
        assert noise not in result.stderr + result.stdout, result.stderr
    check = (f"import os\nfrom pytest_lossguard.cli import main\ncode = main({files!r})\n"
             "print(code, os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n")
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.stdout.strip().splitlines()[-1] == "1 None"
    assert "I0000" not in result.stderr


def test_framework_logs_are_filtered_and_python_output_is_kept():
    from pytest_lossguard.quiet import framework_logs

    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
            "STDERR\n"
            "I0000 00:00:1795765358.540715   26173 cpu_feature_guard.cc:227] This TensorFlow "
            "binary is optimized\n"
            "To enable the following instructions: AVX2, in other operations, rebuild.\n"
            "mod.py:3: DeprecationWarning: old\n"
            "  import thing\n"
            "E0000 00:00:1795765360.173030   26173 cuda_platform.cc:52] failed call to cuInit\n")
    assert framework_logs(text) == "mod.py:3: DeprecationWarning: old\n  import thing\n"


def test_framework_logs_below_the_level_in_force_are_filtered():
    from pytest_lossguard.quiet import framework_logs

    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
            "STDERR\n"
            "I0000 00:00:1795765358.540715   26173 port.cc:153] oneDNN custom operations\n"
            "E0000 00:00:1795765360.173030   26173 cuda_platform.cc:52] failed call to cuInit\n")
    assert framework_logs(text, 0) == text
    assert framework_logs(text, 1) == text.splitlines(keepends=True)[-1]
    assert framework_logs(text, 3) == ""


def test_init_lets_discovery_build_a_class_that_needs_arguments(package, pytester, monkeypatch):
    _, out, _ = lossguard("lgpkg/losses.py", cwd=package)
    assert ("lossguard: skipped lgpkg.losses:Scaled (a keras Loss subclass): its constructor needs "
            "arguments; set them in pyproject.toml, under "
            '[tool.lossguard.targets."lgpkg.losses:Scaled"]: init = {...}'
            ) in out.replace("\n  ", " "), out
    toml = '[tool.lossguard.targets."lgpkg.losses:Scaled"]\ninit = {scale = 2.0}\n'
    (package / "pyproject.toml").write_text(toml)
    _, out, _ = lossguard("lgpkg/losses.py", cwd=package)
    assert "skipped lgpkg.losses:Scaled" not in out
    assert "lossguard: Scaled broadcasts labels against predictions" in out
    # --lossguard-scan reads the same entry.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(package), *filter(None, [os.environ.get("PYTHONPATH")])]))
    pytester.makepyprojecttoml(toml)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--lossguard", "--lossguard-scan=lgpkg.losses", "-rA",
                                           "-k", "Scaled")
    result.stdout.fnmatch_lines(["FAILED lossguard-scan::lgpkg.losses:Scaled[[]lossguard[]]*"])


def test_the_cli_builds_a_marked_class_with_its_own_init(tmp_path):
    (tmp_path / "scaled.py").write_text(
        "import keras\nimport pytest\n\n\n@pytest.mark.lossguard(init={'scale': 2.0})\n"
        "class Scaled(keras.losses.Loss):\n    def __init__(self, scale):\n"
        "        super().__init__()\n        self.scale = scale\n\n"
        "    def call(self, y_true, y_pred):\n"
        "        return self.scale * keras.ops.abs(y_true - y_pred)\n")
    code, out, _ = lossguard("scaled.py", cwd=tmp_path)
    assert code == 1 and "lossguard: Scaled broadcasts labels against predictions" in out, out


def test_the_console_script_and_python_m_agree_on_a_project_whose_tests_import_it(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'mypkg'\n")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "ops.py").write_text(
        "import tensorflow as tf\n\n\ndef square(x):\n    return tf.square(x)\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_losses.py").write_text(
        "import tensorflow as tf\n\nfrom mypkg.ops import square\n\n\n"
        "def naive(y_true, y_pred):\n    return tf.reduce_mean(square(y_true - y_pred))\n")
    script = Path(sys.executable).parent / "lossguard"
    runs = [subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
            for command in ([str(script), "tests/"],
                            [sys.executable, "-m", "pytest_lossguard", "tests/"])]
    for run in runs:
        assert run.returncode == 1, run.stderr[-2000:]
        assert "lossguard: naive broadcasts labels against predictions" in run.stdout
    seconds = re.compile(r"\d+\.\d\d(?=  )")
    assert seconds.sub("", runs[0].stdout) == seconds.sub("", runs[1].stdout)


TORCH_LOSSES = '''
import torch
from torch import nn
from torch.nn.modules.loss import _Loss


class SquaredError(nn.Module):
    def forward(self, input, target):
        return ((input - target) ** 2).mean()


class AlignedAbsolute(_Loss):
    def forward(self, logits, labels):
        return (logits - labels.reshape(logits.shape)).abs().mean()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 1)

    def forward(self, x):
        return self.layer(x)


class Join(nn.Module):
    def forward(self, x, y):
        return torch.cat([x, y], dim=-1)


criterion = nn.MSELoss()
'''


@pytest.fixture
def torch_package(tmp_path, monkeypatch):
    # torch loads in this process, not first inside an in-process pytester run: that run's
    # imports are dropped when it ends, and torch imported twice crashes at garbage collection.
    importlib.import_module("torch")
    yield from importable(tmp_path, monkeypatch, "tlpkg", {"losses": TORCH_LOSSES})


def test_torch_loss_modules_are_found_and_a_network_s_forward_is_not(torch_package):
    assert scan_source(TORCH_LOSSES) == [
        "SquaredError: forward(input, target)", "AlignedAbsolute: subclasses _Loss",
        "criterion: built by MSELoss(...)"]
    found = {c.id: c.reason for c in discover(["tlpkg"])}
    assert found == {
        "tlpkg.losses:SquaredError": "a torch module with forward(input, target)",
        "tlpkg.losses:AlignedAbsolute": "a torch loss module",
        "tlpkg.losses:criterion": "a torch loss module",
    }


def test_scan_and_the_cli_check_torch_loss_modules(pytester, torch_package):
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest("--lossguard", "--lossguard-scan=tlpkg", "-rA",
                                "-p", "no:randomly")
    outcomes = outcomes_by_item(result)
    assert {nodeid: outcome for nodeid, outcome in outcomes.items()
            if nodeid.startswith("lossguard-scan::")} == {
        "lossguard-scan::tlpkg.losses:AlignedAbsolute[lossguard]": "PASSED",
        "lossguard-scan::tlpkg.losses:SquaredError[lossguard]": "FAILED",
        "lossguard-scan::tlpkg.losses:criterion[lossguard]": "FAILED",
    }
    code, out, _ = lossguard_here("tlpkg/losses.py", cwd=torch_package)
    assert code == 1 and "3 target(s)" in out
    assert "lossguard: SquaredError broadcasts labels against predictions" in out
    # A module's instance is headed by the name its row gives it, and by what it is.
    assert "lossguard: criterion (MSELoss) broadcasts labels against predictions" in out
    assert "lossguard: criterion (MSELoss) broadcasts labels against predictions" \
        in result.stdout.str()
    assert "(torch module, torch tensors, prediction first, reference: numpy port of keras 3)" \
        in out


# The bundled seed case (a module with training_step, and its aligned twin), and a backbone
# that defines no step.
LIGHTNING_MODULES = (Path(__file__).resolve().parent.parent / "examples" / "pytorch" /
                     "lightning_regression.py").read_text() + '''

class Backbone(L.LightningModule):
    def forward(self, x):
        return x
'''


@pytest.fixture
def lightning_package(tmp_path, monkeypatch):
    importlib.import_module("lightning")  # loaded here for the reason torch_package gives
    yield from importable(tmp_path, monkeypatch, "ltpkg", {"modules": LIGHTNING_MODULES})


def test_lightning_modules_with_a_step_are_found_and_a_backbone_is_not(lightning_package):
    assert scan_source(LIGHTNING_MODULES) == [
        "LinearRegression: subclasses LightningModule",
        "AlignedLinearRegression: subclasses LinearRegression"]
    assert {c.id: c.reason for c in discover(["ltpkg"])} == {
        "ltpkg.modules:LinearRegression": "a LightningModule defining training_step",
        "ltpkg.modules:AlignedLinearRegression": "a LightningModule defining training_step"}
    code, out, _ = lossguard_here("ltpkg/modules.py", cwd=lightning_package)
    assert code == 1 and "2 target(s)" in out
    assert "(lightning module, torch, reference: numpy port of keras 3)" in out
