"""The differential computation verdicts are checked against: the target's own function on
the probe's layout against the canonical layout, on values drawn here (not lossguard's)."""

import numpy as np

from pytest_lossguard import check

# A lossguard verdict as the outcome of the differential computation.
OUTCOME = {"safe": "same", "broadcast": "differs", "mismatch": "differs", "raises": "raises"}


def draw(domain, true_shape, pred_shape, seed):
    """Canonical values of our own (not lossguard's), valid for the domain."""
    rng = np.random.default_rng(seed)
    if domain in ("one-hot", "sparse"):
        classes = pred_shape[-1]
        ids = rng.integers(0, classes, size=pred_shape[:-1])
        y_pred = rng.dirichlet(np.ones(classes), size=pred_shape[:-1])
        y_true = ids if domain == "sparse" else np.eye(classes)[ids]
    elif domain == "real":
        y_true, y_pred = rng.normal(size=true_shape), rng.normal(size=pred_shape)
    elif domain == "probability":
        y_true, y_pred = rng.uniform(0.1, 0.9, true_shape), rng.uniform(0.1, 0.9, pred_shape)
    else:
        y_true = rng.permutation(np.arange(np.prod(true_shape)) % 2).reshape(true_shape)
        y_pred = rng.uniform(0.05, 0.95, pred_shape)
    return y_true.astype(np.float32), y_pred.astype(np.float32)


def mean(value):
    return float(np.mean(np.asarray(value), dtype=np.float64))


def differential(fn, domain, finding, canonical_shapes):
    """'same', 'differs' or 'raises': fn on the probe's layout against the canonical one."""
    batch = finding.y_true[0]
    true_shape, pred_shape = ((batch, *shape) for shape in canonical_shapes)
    y_true, y_pred = draw(domain, true_shape, pred_shape, seed=batch)
    reference = mean(fn(y_true, y_pred))
    assert np.isfinite(reference), "the differential itself must be well-formed"
    try:
        value = mean(fn(y_true.reshape(finding.y_true), y_pred.reshape(finding.y_pred)))
    except Exception:
        return "raises"
    return "same" if np.isclose(value, reference, rtol=1e-4, atol=1e-6) else "differs"


def agree(target, fn, domain, shapes):
    """Check the target, and assert each label probe's verdict matches the differential."""
    report = check(target, domain=domain, **shapes)
    assert report.error is None, str(report)
    canonical = (report.true_shape, report.pred_shape)
    label_probes = [f for f in report.findings if f.sample_weight is None]
    assert label_probes
    for finding in label_probes:
        assert OUTCOME[finding.verdict] == differential(fn, domain, finding, canonical), (
            f"{finding.probe}: lossguard says {finding.verdict}\n{report}")
    return report
