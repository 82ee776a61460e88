"""The fix hints every kind shares: the aligning statement, and the hints that do not depend
on the kind. Kind-specific wording lives with each kind (kinds/*), which calls these.

Hints about an op that grew write their statement in the user's own names: the operands are
read off the located line (`ast`), matched to the op's input shapes, and a name is used only
when the line writes it; otherwise the hint names shapes, never an invented variable.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
from typing import Any

from pytest_lossguard.backends import Backend
from pytest_lossguard.findings import Finding, Fix, Location, Report, Shape
from pytest_lossguard.introspect import labels_name, statement_start

CANONICAL_ERROR = ("make the target work on canonical input, or describe its intended shapes "
                   "with output_shape / y_true_shape / y_pred_shape and its values with domain=")
NOT_DETERMINISTIC = (
    "seed it: draw its randomness from a fixed seed inside it (keras.random.normal(shape, seed=0), "
    "tf.random.stateless_normal, np.random.default_rng(0)) or from a seed argument that the "
    "check fixes (functools.partial(loss, seed=0)), and keep no count or state between calls")
# How tracers name an op (TF, NumPy, JAX, torch, lower-cased) and how source writes it: as a
# function of that name, or with the Python operator.
_SPELLINGS: tuple[tuple[frozenset[str], type[ast.AST] | None], ...] = (
    (frozenset({"mul", "multiply"}), ast.Mult),
    (frozenset({"sub", "subtract"}), ast.Sub),
    (frozenset({"add", "addv2"}), ast.Add),
    (frozenset({"div", "realdiv", "divide", "true_divide", "truediv"}), ast.Div),
    (frozenset({"pow", "power"}), ast.Pow),
    (frozenset({"equal", "eq"}), ast.Eq),
    (frozenset({"notequal", "not_equal", "ne"}), ast.NotEq),
    (frozenset({"maximum"}), None),
    (frozenset({"minimum"}), None),
)


def fix_code(finding: Finding, true_shape: tuple[int, ...], pred_shape: tuple[int, ...],
             backend: Backend, names: tuple[str, str] = ("y_true", "y_pred"),
             head: str | int | None = None) -> str:
    """The statement that aligns the probe's odd side, to put first in the loss's body.

    With equal canonical shapes, labels reshaped to the prediction's shape fix every probe
    (Keras's own idiom); otherwise the side the probe edited goes back to its own shape.
    `head` is the key (a dict's) or index (a list's) of the output the finding is on, for
    code that gets the labels and predictions of several outputs at once.
    """
    if head is not None:
        key = json.dumps(head)
        names = (f"{names[0]}[{key}]", f"{names[1]}[{key}]")
    labels, predictions = names
    if true_shape == pred_shape:
        return _assign(labels, backend.reshape(labels, backend.shape(predictions)))
    side, own = ((predictions, pred_shape) if finding.edits == ("y_pred",)
                 else (labels, true_shape))
    return _assign(side, backend.reshape(side, str((-1, *own))))


def _assign(target: str, value: str) -> str:
    """`target = value` as a statement that runs when pasted into a step: an output's item
    (`y["reg"]`, `y[0]`) is set on a copy of its dict or list, since fit() hands a list of
    outputs over as a tuple, and a compiled step may not change the data it is given."""
    node = ast.parse(target, mode="eval").body
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        base = ast.unparse(node.value)
        copy = "list" if isinstance(node.slice.value, int) else "dict"
        return f"{base} = {copy}({base}); {target} = {value}"
    return f"{target} = {value}"


def _callee(node: ast.expr) -> str:
    """The last name of a called function: `multiply` for tf.math.multiply."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _pairs(tree: ast.AST, names: frozenset[str],
           operator: type[ast.AST] | None) -> list[tuple[ast.expr, ast.expr]]:
    """Every (left, right) that the tree writes as the op: a binary operator, a comparison,
    an augmented assignment, or a two-argument call of the op's name."""
    found: list[tuple[ast.expr, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and operator and isinstance(node.op, operator):
            found.append((node.left, node.right))
        elif isinstance(node, ast.AugAssign) and operator and isinstance(node.op, operator):
            found.append((node.target, node.value))
        elif (isinstance(node, ast.Compare) and operator and len(node.ops) == 1
              and isinstance(node.ops[0], operator)):
            found.append((node.left, node.comparators[0]))
        elif (isinstance(node, ast.Call) and len(node.args) == 2 and not node.keywords
              and _callee(node.func).lower() in names):
            found.append((node.args[0], node.args[1]))
    return found


def _written(node: ast.expr, line: str) -> str | None:
    """An operand as the line writes it, when a statement can assign to it: a name, or a
    name subscripted by a constant (`y["reg"]`, `y_pred[0]`, the output of several)."""
    if isinstance(node, ast.Name):
        return node.id
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, (str, int))):
        return ast.get_source_segment(line, node)
    return None


def operands(where: Location) -> tuple[str | None, str | None]:
    """The located op's two operands as its line writes them, in the op's input order: None
    for an operand that is neither a name nor a name's item, or when the line does not write
    exactly one such op."""
    spelling = next((s for s in _SPELLINGS if where.op.lower() in s[0]), None)
    if spelling is None or len(where.inputs) != 2:
        return None, None
    line = where.source.strip()
    try:
        tree = ast.parse(line)
    except SyntaxError:  # one line of a longer statement
        return None, None
    found = _pairs(tree, *spelling)
    if len(found) != 1:
        return None, None
    left, right = found[0]
    return _written(left, line), _written(right, line)


def _reshape(where: Location, varying: Shape, backend: Backend,
             prediction: Shape | None = None) -> str | None:
    """The statement that reshapes the located op's operand of shape `varying` (the one the
    layouts vary) to the other operand's shape, in the user's name for it: to the other's
    own shape when that is the named `prediction`, else batch left free; None when that
    operand has no name or the reshape cannot hold."""
    names = operands(where)
    side = next((i for i, shape in enumerate(where.inputs)
                 if shape == varying and names[i] is not None), None)
    if side is None:
        return None
    name, other, named = str(names[side]), where.inputs[1 - side], names[1 - side]
    if other == prediction and named is not None:
        return _assign(name, backend.reshape(name, backend.shape(named)))
    if other[:1] != varying[:1] or math.prod(other[1:]) != math.prod(varying[1:]):
        return None
    return _assign(name, backend.reshape(name, str((-1, *other[1:]))))


def step_labels(finding: Finding, head: str | int | None, true_shape: Shape, pred_shape: Shape,
                backend: Backend, names: tuple[str, str], owner: type) -> tuple[str, str]:
    """(statement, the line it goes before, if it is read off one) that aligns a step's labels
    to its prediction. On one output of several (`head`: its key or index; its canonical
    shapes), the located op's operands as its line writes them (`y["reg"]`, or the step's own
    names for them). Else the labels are reshaped to their own shape, in the name the step (a
    method of `owner`) gives them, subscripted by the head (`y` alone is then a dict or a
    list, which a reshape cannot take), before the statement of the step that the broadcast
    runs under; else, for want of those, the step's labels and predictions are `names`."""
    where = finding.location
    # An op inside a library function the line calls has operands of its own, not the line's.
    if (head is not None and where is not None and where.where and not where.layout
            and not where.internals):
        code = _reshape(where, finding.y_true, backend, finding.y_pred)
        if code is not None:
            return code, where.where
    step, line, start = _step_line(finding, owner)
    labels = labels_name(_as_written(owner, step), start) if line else None
    if labels:
        labels = labels if head is None else f"{labels}[{json.dumps(head)}]"
        return _assign(labels, backend.reshape(labels, str((-1, *true_shape)))), line
    return fix_code(finding, true_shape, pred_shape, backend, names, head), ""


def _step_line(finding: Finding, owner: type) -> tuple[str, str, int]:
    """The finding's step (or compute_loss), and `path:line` and line of its statement that
    the broadcast runs under (the call chain's link in it, moved up to the first line of a
    statement written over several); "" and 0 when it runs under no step of `owner`'s."""
    method, where = finding.method, finding.location
    if method is None or where is None or where.layout or (method.metric and not method.step):
        return "", "", 0
    step = method.step or method.name
    suffix = f" in {step}"
    link = next((link.removesuffix(suffix) for link in where.chain if link.endswith(suffix)),
                "")
    path, _, line = link.rpartition(":")
    start = statement_start(_as_written(owner, step), int(line)) if line.isdigit() else None
    return step, f"{path}:{start}" if start else "", start or 0


def _as_written(owner: type, step: str) -> Any:
    """The step as the user wrote it, whose frame the call chain names: a decorator's wrapper
    (`functools.wraps`) followed to the function it wraps."""
    found = getattr(owner, step, None)
    return inspect.unwrap(found) if callable(found) else found


def weights_hint(backend: Backend, where: Location | None = None,
                 weights: Shape | None = None) -> str:
    """Weights that broadcast against the per-sample loss: give the weights the loss's rank (a
    column for a (B, 1) loss), at the located line in the user's names when they are known.
    Reshaping the loss instead would break the other weighting, so it is not advised."""
    side = next((i for i, shape in enumerate(where.inputs) if shape == weights), None) \
        if where is not None and where.where else None
    if where is None or side is None:
        code = f"sample_weight = {backend.reshape('sample_weight', '(-1, 1)')}"
        return ("Keras hands sample_weight over as (B,) or (B, 1) alike: reshape it to the "
                f"per-sample loss's rank before weighting, e.g. {code} for a (B, 1) loss")
    names = operands(where)
    loss, other = where.inputs[1 - side], names[1 - side]
    name = names[side] or "sample_weight"
    against = f"{other} {loss}" if other else f"a {loss} value"
    place = "before that line" if names[side] else "first in the loss"
    shape = str((-1, *[1] * (len(loss) - 1)))
    return (f"{name} {weights} meets {against} at {where.where}; Keras hands sample_weight "
            f"over as (B,) or (B, 1) alike, so give it the loss's rank {place}: "
            f"{_assign(name, backend.reshape(name, shape))}")


def canonical_growth(report: Report) -> tuple[Finding, Location] | None:
    """A finding whose growth is in the canonical layout, not in the probe, and where: the
    intended shapes are the broken ones, so aligning to them is no fix."""
    return next(((f, f.location) for f in report.failures
                 if f.location is not None and f.location.layout), None)


def canonical_hint(report: Report, grown: Finding, where: Location,
                   backend: Backend) -> tuple[str, str]:
    """(statement, hint) for a loss that broadcasts on its canonical layout at the located
    line: give that op's operands one rank, reshaping the one the layouts vary."""
    edited = report.pred_shape if grown.edits == ("y_pred",) else report.true_shape
    code = _reshape(where, (grown.y_true[0], *edited), backend)
    shapes = " and ".join(str(shape) for shape in where.inputs)
    change = f"e.g. {code}" if code else f"so that {shapes} no longer broadcast"
    return code or where.where, (
        f"the canonical layout itself broadcasts at {where.where}, so aligning the probe's "
        f"shapes to it would keep the bug: give that op's operands one rank, {change}")


def advised(finding: Finding, code: str, text: str) -> Fix:
    """`text` as the fix of `finding`, whose aligning statement is `code`: findings of the same
    method and weighting that need the same statement share one fix."""
    return Fix(text, f"{finding.method}|{finding.sample_weight is None}|{code}")
