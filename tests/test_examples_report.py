"""The bundled examples' JSON report is pinned: engine changes (refactors, speed-ups) must leave
every verdict, value, location, call path and fix exactly as they were. Timings and the
installed versions are left out.

After a deliberate change of output, rewrite the golden file with
`LOSSGUARD_REGOLD=1 pytest tests/test_examples_report.py` and review its diff.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "examples.json"


def normalised(value):
    """The report without what varies by machine: seconds, versions, the Keras version."""
    if isinstance(value, dict):
        return {key: normalised(item) for key, item in value.items()
                if key not in ("seconds", "versions")}
    if isinstance(value, list):
        return [normalised(item) for item in value]
    if isinstance(value, str):  # the Keras version (library files show from their package down)
        return re.sub(r"^(keras|tf_keras) [0-9][^ ]*( on \w+)?$", r"\1 X\2", value)
    return value


def readme_excerpts():
    """The README's failure excerpts from the examples: each line but the `...` elisions."""
    blocks = re.findall(r"```text\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [[line for line in block.splitlines() if line.strip() != "..."]
            for block in blocks if block.startswith("lossguard: ") and "examples/" in block]


def test_the_examples_report_is_unchanged_and_the_readme_quotes_it(tmp_path):
    path = tmp_path / "examples.json"
    run = subprocess.run([sys.executable, "-m", "pytest", "--lossguard", "examples/", "-q",
                          "-p", "no:cacheprovider", f"--lossguard-report={path}"],
                         cwd=ROOT, capture_output=True, text=True, check=False,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    report = normalised(json.loads(path.read_text()))
    if os.environ.get("LOSSGUARD_REGOLD"):
        GOLDEN.write_text(json.dumps(report, indent=1) + "\n")
    assert report == json.loads(GOLDEN.read_text())
    printed = set(run.stdout.splitlines())
    excerpts = readme_excerpts()
    assert len(excerpts) == 4
    for excerpt in excerpts:
        assert [line for line in excerpt if line not in printed] == [], excerpt[0]
