"""Benchmarks of pytest-lossguard, printed as ratios against their floors and targets.

Run: .venv/bin/python benchmarks/bench.py   (about 3 to 5 minutes on 2 cores)
Figures are measured side by side in one run; benchmarks/README.md records the latest.

Every timed target is fresh: generated into its own module, so that no per-function cache of
lossguard or of the frameworks is warm, as in a real session. The pytest and CLI figures run
in subprocesses on suites generated in a temporary directory, before this process imports
TensorFlow (and the xdist controller never imports it: only its workers do). The in-process
figures come next, and the per-Keras-backend figures last, one subprocess per backend
(`bench.py --keras-backend`, with KERAS_BACKEND set).
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import itertools
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OVERHEAD_TARGET_RATIO = 1.03
CLI_TARGET_SECONDS = 1.0
CLEAN_TARGET_RATIO = 2.5
FLAGGED_TARGET_RATIO = 8.0
MODEL_CLEAN_TARGET = 8.0
MODEL_FLAGGED_TARGET = 16.0
SESSION_TARGET_SECONDS = 12.0  # for 800 losses
PLAIN_TESTS, PLAIN_FILES = 300, 6
SESSION_SIZES = (50, 200, 800)
OUTPUT_SHAPES = ((1,), (64, 64, 1), (100, 1))
KERAS_BACKENDS = ("tensorflow", "jax", "torch")
FRAMEWORKS = ("tensorflow", "keras", "jax", "torch", "tf_keras")
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
# Distribution names a framework may be installed under, first found wins.
DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel",
                   "tf-nightly", "tf-nightly-cpu"),
    "keras": ("keras", "keras-nightly"),
    "pytest-xdist": ("pytest-xdist",),
    "pytest": ("pytest",),
    "pytest-lossguard": ("pytest-lossguard",),
}

# Records, at the end of the session, which frameworks (and whether NumPy) got imported.
PLAIN_CONFTEST = f"""\
import os
import sys


def pytest_sessionfinish(session):
    out = os.environ.get("LOSSGUARD_BENCH_OUT")
    if out:
        names = {(*FRAMEWORKS, "numpy")!r}
        with open(out, "w") as f:
            f.write(" ".join(m for m in names if m in sys.modules))
"""

# A serial run (and each xdist worker) imports the frameworks up front, so that the times it
# records start after the import; the xdist controller imports none, as a user's would not.
MARKED_CONFTEST = """\
import os
import sys
import time

if "PYTEST_XDIST_WORKER" in os.environ or os.environ.get("LOSSGUARD_BENCH_SERIAL"):
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

IMPORTED = time.perf_counter()


def pytest_sessionfinish(session):
    out = os.environ.get("LOSSGUARD_BENCH_OUT")
    if out and "PYTEST_XDIST_WORKER" not in os.environ:
        with open(out, "w") as f:
            f.write(f"{time.perf_counter() - IMPORTED} {int('tensorflow' in sys.modules)}")
"""

# Bodies per namespace: clean ones align the ranks first, flagged ones broadcast as naive
# code does. `{scale}` makes every generated function distinct.
BODIES = {
    "tf": (
        "tf.reduce_mean(tf.square(tf.reshape(y_true, tf.shape(y_pred)) - y_pred)) * {scale}",
        "tf.reduce_mean(tf.square(y_true - y_pred)) * {scale}",
    ),
    "keras.ops": (
        "ops.mean(ops.square(ops.reshape(y_true, ops.shape(y_pred)) - y_pred)) * {scale}",
        "ops.mean(ops.square(y_true - y_pred)) * {scale}",
    ),
}
IMPORTS = {"tf": "import tensorflow as tf\n", "keras.ops": "from keras import ops\n"}
_modules = itertools.count()


def version(name):
    """The installed version of a distribution, trying the names it may go by."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as lookup

    for candidate in DISTRIBUTIONS.get(name, (name,)):
        try:
            return lookup(candidate)
        except PackageNotFoundError:
            continue
    return "not installed"


def line(label, value, unit, target=None, note=""):
    """One aligned line: the figure, its ratio to the target when there is one, and a note."""
    text = f"{label:<36}{value:7.2f} {unit:<3}"
    if target is not None:
        text += f"{value / target:6.2f} x target {target:g}{'' if unit == 'x' else ' ' + unit}"
    print(f"{text}  {note}".rstrip(), flush=True)


def children_cpu():
    """CPU seconds used so far by finished child processes (and the ones they waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args, cwd, out=None, check=True, env=None):
    """Run a command in cwd; its wall time, CPU time and the completed process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    env.pop("PYTEST_ADDOPTS", None)
    if out:
        env["LOSSGUARD_BENCH_OUT"] = str(out)
    started, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu
    if check and done.returncode not in (0, 1, 5):  # 5: no tests collected
        raise RuntimeError(f"{' '.join(map(str, args))} exited {done.returncode}:\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, cpu, done


def outcome(done):
    """pytest's closing summary, e.g. '20 failed, 180 passed'."""
    lines = [s for s in done.stdout.splitlines() if re.search(r"passed|failed|no tests ran", s)]
    return re.sub(r" in [\d.]+s.*", "", lines[-1]) if lines else "no summary"


def loss_source(namespace, count, flagged, marked=False):
    """`count` distinct losses of one namespace, clean or flagged (or alternating: None)."""
    parts = [("import pytest\n" if marked else "") + IMPORTS[namespace]]
    for i in range(count):
        bad = i % 2 == 0 if flagged is None else flagged
        body = BODIES[namespace][bad].format(scale=1.0 + i / 1000)
        mark = "@pytest.mark.lossguard\n" if marked else ""
        parts.append(f"{mark}def loss_{i}(y_true, y_pred):\n    return {body}\n")
    return "\n\n".join(parts)


def fresh_losses(folder, namespace, count, flagged):
    """`count` new loss functions, imported from a module generated for them alone."""
    name = f"bench_losses_{next(_modules)}"
    path = Path(folder) / f"{name}.py"
    path.write_text(loss_source(namespace, count, flagged))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return [getattr(module, f"loss_{i}") for i in range(count)]


# -- pytest and the CLI, in subprocesses ---------------------------------------------------


def write_plain_suite(folder):
    """300 plain tests with no lossguard target, over a few files: any cost is the plugin's."""
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(PLAIN_CONFTEST)
    per_file = PLAIN_TESTS // PLAIN_FILES
    for f in range(PLAIN_FILES):
        tests = [f"def test_{f}_{i}():\n    assert {i} + 1 == {i + 1}\n" for i in range(per_file)]
        (folder / f"test_plain_{f}.py").write_text("\n\n".join(tests))
    return folder


def plugin_overhead(root, repeat=3):
    """A 300-test suite with no target, plugin engaged (--lossguard) against unloaded."""
    folder = write_plain_suite(root / "plain")
    found = root / "frameworks.txt"
    engaged = [*PYTEST, "--lossguard", "."]
    unloaded = [*PYTEST, "-p", "no:lossguard", "."]
    run(engaged, folder)  # warm-up: compiles the test files, fills the disk cache
    run(unloaded, folder)
    ratios = []
    for _ in range(repeat):
        on = run(engaged, folder, out=found)[0]
        ratios.append(on / run(unloaded, folder)[0])
    loaded = found.read_text().split()
    frameworks = [m for m in loaded if m in FRAMEWORKS]
    line("plugin overhead, on / off", statistics.median(ratios), "x", OVERHEAD_TARGET_RATIO,
         f"(300 plain tests; median of {repeat} pairs)")
    print(f"  frameworks imported: {', '.join(frameworks) or 'none'}; "
          f"numpy imported: {'yes' if 'numpy' in loaded else 'no'}")
    return folder


def cli_fast_path(plain, repeat=3):
    """`lossguard` on a file holding no candidate: it should leave before importing anything."""
    script = Path(sys.executable).with_name("lossguard")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pytest_lossguard"]
    args = [*command, "test_plain_0.py"]
    run(args, plain)
    times = [run(args, plain, check=False)[0] for _ in range(repeat)]
    line("lossguard CLI, no candidate", statistics.median(times), "s", CLI_TARGET_SECONDS,
         f"(median of {repeat})")


def sessions(root):
    """N marked TensorFlow losses, half broadcasting: probing seconds after the import, and
    the wall time of -n 2 against serial (the controller imports no framework)."""
    print(f"{'marked losses':<14}{'probing s':>10}{'per target':>12}{'serial wall':>13}"
          f"{'-n 2 wall':>11}{'-n 2/serial':>13}  outcome", flush=True)
    times = root / "session.txt"
    for count in SESSION_SIZES:
        folder = root / f"marked_{count}"
        folder.mkdir()
        (folder / "pytest.ini").write_text("[pytest]\n")
        (folder / "conftest.py").write_text(MARKED_CONFTEST)
        (folder / "test_losses.py").write_text(loss_source("tf", count, None, marked=True))
        serial = [*PYTEST, "--lossguard", "test_losses.py"]
        repeat = 2
        probing, walls, xwalls, controller = [], [], [], []
        for _ in range(repeat):  # alternated, so that a busy moment hits both alike
            wall, _, done = run(serial, folder, out=times, env={"LOSSGUARD_BENCH_SERIAL": "1"})
            probing.append(float(times.read_text().split()[0]))
            walls.append(wall)
            xwall, _, _ = run([*serial, "-n", "2"], folder, out=times)
            controller.append(times.read_text().split()[1] == "1")
            xwalls.append(xwall)
        seconds, wall, xwall = (statistics.median(v) for v in (probing, walls, xwalls))
        print(f"{count:<14}{seconds:>10.2f}{seconds / count * 1e3:>9.1f} ms{wall:>11.2f} s"
              f"{xwall:>9.2f} s{xwall / wall:>11.2f} x  ({outcome(done)}; median of {repeat}"
              f"{'; controller imported tensorflow!' if any(controller) else ''})", flush=True)
        if count == SESSION_SIZES[-1]:
            line(f"{count} losses, probing", seconds, "s", SESSION_TARGET_SECONDS)


# -- in process ------------------------------------------------------------------------------


def recorded_calls(loss, **options):
    """The (y_true, y_pred) arrays of the direct calls `check` makes (one per layout)."""
    from pytest_lossguard import calls as engine
    from pytest_lossguard import check

    made = []
    original = engine._call

    def counted(target, inputs, *log):
        made.append((inputs.y_true, inputs.y_pred))
        return original(target, inputs, *log)

    engine._call = counted
    try:
        report = check(loss, **options)
    finally:
        engine._call = original
    return made, report


def trace_floor(loss, arrays):
    """The physical cost of locating: one trace of the loss on the backend Keras runs on."""
    import keras

    engine = keras.backend.backend()
    if engine == "tensorflow":
        import tensorflow as tf

        specs = [tf.TensorSpec(a.shape, a.dtype) for a in arrays]
        tf.function(loss, autograph=False).get_concrete_function(*specs)
    elif engine == "jax":
        import jax

        jax.make_jaxpr(loss)(*arrays)
    else:  # torch records ops while running them: one more eager call
        loss(*[keras.ops.convert_to_tensor(a) for a in arrays])


def paired(measure, floor, count):
    """Median of `count` ratios measure(i) / floor(i), run alternately."""
    checks, floors = [], []
    for i in range(count):
        checks.append(measure(i))
        floors.append(floor(i))
    return (statistics.median(checks), statistics.median(floors),
            statistics.median(c / f for c, f in zip(checks, floors, strict=True)))


def elapsed(fn):
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def loss_figure(folder, namespace, output_shape, flagged, count=15):
    """check() on `count` fresh losses against the floor: the same calls on arrays converted
    to tensors inside the timing, plus one trace of a fresh function when flagged."""
    import keras

    from pytest_lossguard import check

    convert = keras.ops.convert_to_tensor if namespace == "keras.ops" else None
    if convert is None:
        import tensorflow as tf

        convert = tf.convert_to_tensor
    options = {"output_shape": output_shape}
    targets = fresh_losses(folder, namespace, count + 1, flagged)
    floors = fresh_losses(folder, namespace, count, flagged)
    calls, report = recorded_calls(targets.pop(), **options)
    if not flagged and not report.ok:
        raise RuntimeError(f"expected a clean loss:\n{report}")
    located = any(f.location is not None for f in report.findings)
    verdicts = collections.Counter(f.verdict.value for f in report.findings)
    summary = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))

    called = []  # the floor's calls alone, without its trace

    def floor(i):
        fn = floors[i]

        def work():
            for y_true, y_pred in calls:
                with contextlib.suppress(Exception):  # a probe that raises costs its call
                    fn(convert(y_true), convert(y_pred))

        seconds = elapsed(work)
        called.append(seconds)
        return seconds + (elapsed(lambda: trace_floor(fn, calls[0])) if located else 0.0)

    figures = paired(lambda i: elapsed(lambda: check(targets[i], **options)), floor, count)
    return figures, figures[0] / statistics.median(called), len(calls), summary


def losses_table(folder, namespace="tf", shapes=OUTPUT_SHAPES):
    """Clean and flagged losses by output shape: check / floor."""
    print(f"{'loss, output shape':<26}{'calls':>6}{'check ms':>10}{'floor ms':>10}"
          f"{'check/floor':>13}{'/calls':>8}  target", flush=True)
    for shape, flagged in itertools.product(shapes, (False, True)):
        (check_s, floor_s, ratio), per_calls, calls, verdicts = loss_figure(
            folder, namespace, shape, flagged)
        target = FLAGGED_TARGET_RATIO if flagged else CLEAN_TARGET_RATIO
        label = f"{'naive' if flagged else 'clean'} {shape}"
        print(f"{label:<26}{calls:>6}{check_s * 1e3:>10.2f}{floor_s * 1e3:>10.2f}"
              f"{ratio:>11.2f} x{per_calls:>6.1f} x  {ratio / target:.2f} x target {target:g}"
              f"  ({verdicts})",
              flush=True)


MODEL_SOURCE = """\
import keras
from keras import layers


class BenchModel(keras.Model):
    def __init__(self):
        super().__init__()
        self.body = {layers}

    def call(self, x, training=None):
        for layer in self.body:
            x = layer(x)
        return x


class NaiveLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_true - y_pred))
"""
# name -> (input shape, layers): four small architectures.
MODELS = {
    "Dense": ((3,), "[layers.Dense(1)]"),
    "MLP": ((16,), "[layers.Dense(64, activation='relu'), layers.Dense(64, activation='relu'), "
                   "layers.Dense(1)]"),
    "small CNN": ((16, 16, 1), "[layers.Conv2D(8, 3, activation='relu'), "
                               "layers.GlobalAveragePooling2D(), layers.Dense(1)]"),
    "LSTM": ((10, 4), "[layers.LSTM(16), layers.Dense(1)]"),
}


def fresh_model(folder, layers, flagged):
    """A new keras.Model subclass from a module generated for it alone, and the loss to
    compile it with: "mse", or, flagged, a Loss subclass overriding call, which Keras 3 does
    not align, so that labels (N,) broadcast against (N, 1) on every backend."""
    name = f"bench_model_{next(_modules)}"
    path = Path(folder) / f"{name}.py"
    path.write_text(MODEL_SOURCE.format(layers=layers))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.BenchModel, module.NaiveLoss() if flagged else "mse"


def _built(cls, input_shape, loss, batch):
    """A fresh compiled model, built and with its optimizer built, and its canonical data."""
    import numpy as np

    from pytest_lossguard.backends.keras import BACKEND

    model = cls()
    model.compile(optimizer="sgd", loss=loss)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *input_shape)).astype(np.float32)
    y = rng.normal(size=(batch, 1)).astype(np.float32)
    BACKEND.forward(model, x)  # Keras's first call, at its cheapest: the check's own
    if hasattr(model, "jax_state_sync"):  # a stateless JAX step needs every variable first
        model._symbolic_build(data_batch=(x, y))
    model.optimizer.build(model.trainable_variables)
    return model, x, y, BACKEND


def bare_step(cls, input_shape, loss, batch=7, steps=3):
    """Median seconds of one eager train_step of a compiled, built, warmed-up model."""
    model, x, y, backend = _built(cls, input_shape, loss, batch)
    data = (backend.to_tensor(x), backend.to_tensor(y))
    backend.step(model, "train_step", data)  # builds the optimizer and the metrics
    return statistics.median(elapsed(lambda: backend.step(model, "train_step", data))
                             for _ in range(steps))


def needed_work(cls, input_shape, loss, flagged, batch=7):
    """Seconds of the work a model check cannot skip, run bare on a fresh model: its build,
    compile and first call, then the step runs its probes need (train_step on the canonical
    labels, on (B,) and (B, 1, 1) labels, and with (B,) and (B, 1) sample weights; one
    test_step), and when flagged, the three test_steps that locate (the reference and each of
    the two label probes). The flagged loss differs in logs that test_step reproduces, so no
    determinism re-run is needed (kinds/model._logs_reproduced)."""
    import numpy as np

    def work():
        model, x, y, backend = _built(cls, input_shape, loss, batch)
        weights = np.linspace(0.5, 1.5, batch, dtype=np.float32)
        train = [(x, y), (x, y[:, 0]), (x, y[:, :, None]), (x, y, weights),
                 (x, y, weights[:, None])]
        test = [(x, y)] + [(x, y), (x, y[:, 0]), (x, y[:, :, None])] * flagged
        for method, runs in (("train_step", train), ("test_step", test)):
            for data in runs:
                backend.step(model, method, tuple(map(backend.to_tensor, data)))

    return elapsed(work)


def model_figure(folder, input_shape, layers, flagged, count=3):
    """check() on fresh model classes against one bare train_step of another fresh one, and
    the work the check cannot skip (`needed_work`) on a third, in bare steps too."""
    from pytest_lossguard import check

    def measure(i):
        cls, loss = fresh_model(folder, layers, flagged)
        options = {"input_shape": input_shape, "compile": {"optimizer": "sgd", "loss": loss}}
        started = time.perf_counter()
        report = check(cls, **options)
        seconds = time.perf_counter() - started
        if report.ok == flagged:
            raise RuntimeError(f"expected a {'flagged' if flagged else 'clean'} model:\n{report}")
        return seconds

    def floor(i):
        cls, loss = fresh_model(folder, layers, flagged)
        return bare_step(cls, input_shape, loss)

    def needed(i):
        cls, loss = fresh_model(folder, layers, flagged)
        return needed_work(cls, input_shape, loss, flagged)

    measure(0)  # the first check in a process sets up Keras's optimizer code paths
    needed(0)
    check_s, step_s, ratio = paired(measure, floor, count)
    _, _, needed_ratio = paired(needed, floor, count)
    return check_s, step_s, ratio, needed_ratio


def models_table(folder, names=None):
    print(f"{'model':<26}{'check ms':>10}{'step ms':>10}{'steps':>13}{'needed':>10}  target",
          flush=True)
    for name, (shape, layers) in MODELS.items():
        if names and name not in names:
            continue
        for flagged in (False, True):
            check_s, step_s, ratio, needed = model_figure(folder, shape, layers, flagged)
            target = MODEL_FLAGGED_TARGET if flagged else MODEL_CLEAN_TARGET
            label = f"{name}, {'flagged' if flagged else 'clean'}"
            print(f"{label:<26}{check_s * 1e3:>10.1f}{step_s * 1e3:>10.2f}{ratio:>11.2f} x"
                  f"{needed:>8.2f} x  {ratio / target:.2f} x target {target:g}", flush=True)


def keras_backend_figures():
    """Run in a subprocess with KERAS_BACKEND set: keras.ops losses and a Dense model."""
    import keras

    print(f"-- Keras backend {keras.backend.backend()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="lossguard-bench-") as tmp:
        sys.path.insert(0, tmp)
        losses_table(tmp, "keras.ops", shapes=((1,),))
        models_table(tmp, names=("Dense",))


def main():
    import platform

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"lossguard {version('pytest-lossguard')}, keras {version('keras')}, "
          f"tensorflow {version('tensorflow')}, pytest {version('pytest')}, "
          f"xdist {version('pytest-xdist')}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lossguard-bench-") as tmp:
        plain = plugin_overhead(Path(tmp))
        cli_fast_path(plain)
        sessions(Path(tmp))
        sys.path.insert(0, tmp)
        import tensorflow  # noqa: F401  (imported here, after the subprocess figures)

        losses_table(tmp)
        models_table(tmp)
    for backend in KERAS_BACKENDS:
        done = subprocess.run([sys.executable, __file__, "--keras-backend"],
                              env={**os.environ, "KERAS_BACKEND": backend},
                              capture_output=True, text=True)
        print(done.stdout.rstrip(), flush=True)
        if done.returncode:
            print(f"  (exited {done.returncode}: {done.stderr.strip().splitlines()[-1]})")
    print(f"whole run {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    if "--keras-backend" in sys.argv:
        keras_backend_figures()
    else:
        main()
