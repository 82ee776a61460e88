"""Benchmarks of pytest-lossguard, printed as ratios against their targets.

Run: .venv/bin/python benchmarks/bench.py
Figures are measured side by side in one run; benchmarks/README.md records the latest.
The pytest and CLI figures run in subprocesses on suites generated in a temporary directory,
before this process imports TensorFlow; the in-process figures come last.
"""

import functools
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
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES / "linear_regression"))
sys.path.insert(0, str(EXAMPLES / "losses"))

MODEL_TARGET_SECONDS = 2.0
OVERHEAD_TARGET_RATIO = 1.03
CHECK_TARGET_RATIO = 3.0
SESSION_TARGET_SECONDS = 10.0
CLI_TARGET_SECONDS = 1.0
PLAIN_TESTS, PLAIN_FILES = 300, 6
MARKED_LOSSES = 200
FRAMEWORKS = ("tensorflow", "keras", "jax", "torch", "tf_keras")
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]

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

# Imports the frameworks up front, so the times it records start after the import.
MARKED_CONFTEST = """\
import os
import time

import keras  # noqa: F401
import tensorflow  # noqa: F401

IMPORTED = time.perf_counter()
COLLECTED = IMPORTED


def pytest_collection_finish(session):
    global COLLECTED
    COLLECTED = time.perf_counter()


def pytest_sessionfinish(session):
    out = os.environ.get("LOSSGUARD_BENCH_OUT")
    if out and "PYTEST_XDIST_WORKER" not in os.environ:
        with open(out, "w") as f:
            f.write(f"{COLLECTED - IMPORTED} {time.perf_counter() - IMPORTED}")
"""

# Clean bodies align the ranks first; every tenth loss broadcasts, as naive code does.
CLEAN_BODIES = (
    "tf.reduce_mean(tf.square(tf.reshape(y_true, tf.shape(y_pred)) - y_pred)) * {scale}",
    "tf.reduce_mean(tf.abs(tf.reshape(y_true, tf.shape(y_pred)) - y_pred)) * {scale}",
    "tf.reduce_mean(tf.math.log(tf.cosh(tf.reshape(y_true, tf.shape(y_pred)) - y_pred))) "
    "+ {scale}",
    "keras.losses.mean_squared_error(y_true, y_pred) * {scale}",
)
BROADCAST_BODIES = (
    "tf.reduce_mean(tf.square(y_true - y_pred)) * {scale}",
    "tf.reduce_mean(tf.abs(y_true - y_pred)) * {scale}",
)


def seconds(fn, repeat=1):
    """Median wall time of `repeat` calls of fn."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def line(label, value, unit, target=None, note=""):
    """One aligned line: the figure, its ratio to the target when there is one, and a note."""
    text = f"{label:<33}{value:6.2f} {unit:<4}"
    if target is not None:
        text += f"{value / target:5.2f} x target {target:g}{'' if unit == 'x' else ' ' + unit}"
    print(f"{text}  {note}".rstrip())


def children_cpu():
    """CPU seconds used so far by finished child processes (and the ones they waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args, cwd, out=None, check=True):
    """Run a command in cwd; its wall time, CPU time and the completed process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
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


def write_marked_suite(folder):
    """200 distinct marked TensorFlow losses, one in ten broadcasting, in one test file."""
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(MARKED_CONFTEST)
    parts = ["import keras\nimport pytest\nimport tensorflow as tf\n"]
    for i in range(MARKED_LOSSES):
        bodies = BROADCAST_BODIES if i % 10 == 0 else CLEAN_BODIES
        body = bodies[i % len(bodies)].format(scale=1.0 + i / 1000)
        parts.append(f"@pytest.mark.lossguard\ndef loss_{i}(y_true, y_pred):\n    return {body}\n")
    (folder / "test_losses.py").write_text("\n\n".join(parts))
    return folder


def plugin_overhead(root, repeat=5):
    """A 300-test suite with no target, plugin engaged (--lossguard) against unloaded."""
    folder = write_plain_suite(root / "plain")
    found = root / "frameworks.txt"
    engaged = [*PYTEST, "--lossguard", "."]
    unloaded = [*PYTEST, "-p", "no:lossguard", "."]
    run(engaged, folder)  # warm-up: compiles the test files, fills the disk cache
    run(unloaded, folder)
    on, off = [], []
    for _ in range(repeat):
        on.append(run(engaged, folder, out=found)[0])
        off.append(run(unloaded, folder)[0])
    on_s, off_s = statistics.median(on), statistics.median(off)
    loaded = found.read_text().split()
    frameworks = [m for m in loaded if m in FRAMEWORKS]
    line("pytest, 300 tests, plugin off", off_s, "s", note=f"(median of {repeat})")
    line("pytest, 300 tests, --lossguard", on_s, "s", note=f"(median of {repeat})")
    line("plugin overhead, on / off", on_s / off_s, "x", OVERHEAD_TARGET_RATIO)
    print(f"  frameworks imported: {', '.join(frameworks) or 'none'}; "
          f"numpy imported: {'yes' if 'numpy' in loaded else 'no'}")
    return folder


def cli_fast_path(plain, repeat=5):
    """`lossguard` on a file holding no candidate: it should leave before importing anything."""
    script = Path(sys.executable).with_name("lossguard")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pytest_lossguard"]
    args = [*command, "test_plain_0.py"]
    run(args, plain)
    times, done = [], None
    for _ in range(repeat):
        elapsed, _, done = run(args, plain, check=False)
        times.append(elapsed)
    note = f"(exit {done.returncode}, median of {repeat})"
    line("lossguard CLI, no candidate", statistics.median(times), "s", CLI_TARGET_SECONDS, note)


def marked_session(root, repeat=3):
    """200 marked losses: seconds after the framework import, and -n 2 against serial."""
    folder = write_marked_suite(root / "marked")
    times = root / "session.txt"
    serial = [*PYTEST, "--lossguard", "test_losses.py"]
    parallel = [*serial, "-n", "2"]
    unmarked = [*PYTEST, "test_losses.py"]
    run(unmarked, folder)  # warm-up: TensorFlow's files in the disk cache
    after, walls, cpus, xwalls, xcpus = [], [], [], [], []
    for _ in range(repeat):  # alternated, so that a busy moment hits both alike
        wall, cpu, done = run(serial, folder, out=times)
        after.append(float(times.read_text().split()[1]))
        walls.append(wall)
        cpus.append(cpu)
        wall, cpu, xdone = run(parallel, folder)
        xwalls.append(wall)
        xcpus.append(cpu)
    _, _, plain = run(unmarked, folder, out=times)
    without = float(times.read_text().split()[1])
    wall, xwall = statistics.median(walls), statistics.median(xwalls)
    line("200 losses, after import", statistics.median(after), "s", SESSION_TARGET_SECONDS,
         f"({outcome(done)}; median of {repeat})")
    line("  same file without --lossguard", without, "s", note=f"({outcome(plain)})")
    line("200 losses, serial, wall", wall, "s", note=f"(cpu {statistics.median(cpus):.2f} s; "
         "with pytest start-up and imports)")
    line("200 losses, -n 2, wall", xwall, "s", note=f"(cpu {statistics.median(xcpus):.2f} s; "
         f"{outcome(xdone)})")
    line("-n 2 / serial", xwall / wall, "x", note="(no target; below 1 means xdist helps)")


def model_probing():
    """Probing the linear-regression Dense model, after TensorFlow is imported."""
    started = time.perf_counter()
    import regression  # imports keras and tensorflow

    imported = time.perf_counter() - started
    from pytest_lossguard import check

    options = {"input_shape": (3,), "compile": {"optimizer": "sgd", "loss": regression.mse}}
    first = seconds(lambda: check(regression.HandWrittenLoss, **options))
    warm = seconds(lambda: check(regression.HandWrittenLoss, **options), repeat=5)
    clean = seconds(lambda: check(regression.ComputeLoss, **options), repeat=5)
    print(f"framework import                 {imported:6.2f} s (not counted)")
    print(f"model probing, first (flagged)   {first:6.2f} s   "
          f"{first / MODEL_TARGET_SECONDS:5.2f} x target {MODEL_TARGET_SECONDS} s")
    print(f"model probing, warm (flagged)    {warm:6.2f} s   "
          f"{warm / MODEL_TARGET_SECONDS:5.2f} x target")
    print(f"model probing, warm (clean)      {clean:6.2f} s   "
          f"{clean / MODEL_TARGET_SECONDS:5.2f} x target")


def check_cost(loops=100, repeat=7):
    """check() on a clean loss against the bare loss called as often, on the same shapes, warm."""
    import losses  # examples/losses: a TensorFlow module
    import numpy as np
    import tensorflow as tf

    from pytest_lossguard import check

    loss = losses.aligned_mse
    shapes = []

    @functools.wraps(loss)
    def counted(y_true, y_pred):
        shapes.append((tuple(y_true.shape), tuple(y_pred.shape)))
        return loss(y_true, y_pred)

    report = check(counted)
    if not report.ok:
        raise RuntimeError(f"expected a clean loss:\n{report}")
    rng = np.random.default_rng(0)
    pairs = [tuple(tf.constant(rng.normal(size=s).astype(np.float32)) for s in pair)
             for pair in shapes]

    def checked():
        for _ in range(loops):
            check(loss)

    def bare():
        for _ in range(loops):
            for y_true, y_pred in pairs:
                loss(y_true, y_pred)

    for _ in range(3):  # warm-up: TensorFlow's kernels, lossguard's lazy imports
        checked()
        bare()
    checks, bares = [], []
    for _ in range(repeat):  # alternated batches, so that noise hits both alike
        checks.append(seconds(checked) / loops)
        bares.append(seconds(bare) / loops)
    ratio = statistics.median([c / b for c, b in zip(checks, bares, strict=True)])
    calls = ", ".join(f"{t}/{p}".replace(" ", "") for t, p in shapes)
    line(f"check, clean loss ({len(shapes)} calls)", statistics.median(checks) * 1e3, "ms",
         note=f"(aligned_mse: {calls})")
    line(f"bare loss, same {len(shapes)} calls", statistics.median(bares) * 1e3, "ms",
         note="(on ready tensors)")
    line("check / bare", ratio, "x", CHECK_TARGET_RATIO, f"(median of {repeat} paired batches)")


def main():
    import platform
    from importlib.metadata import version

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"lossguard {version('pytest-lossguard')}, keras {version('keras')}, "
          f"tensorflow {version('tensorflow')}, pytest {version('pytest')}, "
          f"xdist {version('pytest-xdist')}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lossguard-bench-") as tmp:
        plain = plugin_overhead(Path(tmp))
        cli_fast_path(plain)
        marked_session(Path(tmp))
    model_probing()
    check_cost()
    print(f"whole run                        {time.perf_counter() - started:6.2f} s")


if __name__ == "__main__":
    main()
