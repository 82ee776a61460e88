"""What lossguard reads off Python objects without building or calling them: names, source
lines, signatures and Keras base classes. Cached where the object allows, since a session
asks the same questions of every target many times."""

from __future__ import annotations

import ast
import functools
import inspect
import sys
import textwrap
import types
from typing import Any

from pytest_lossguard.backends import infer, match
from pytest_lossguard.caches import cached, memo
from pytest_lossguard.text import display_path

KERAS_ROOTS = ("keras", "tf_keras")


def keras_base(cls: type, base: str) -> str | None:
    """The Keras flavour whose `base` class `cls` derives from, found without importing Keras."""
    for klass in cls.__mro__:
        root = klass.__module__.partition(".")[0]
        if klass.__name__ == base and root in KERAS_ROOTS:
            return root
    return None


def torch_base(cls: type, base: str, roots: tuple[str, ...] = ("torch",)) -> bool:
    """Whether `cls` derives from the class `base` of a library under `roots` (torch's
    nn.Module, Lightning's LightningModule), without importing it."""
    return any(k.__name__ == base and k.__module__.partition(".")[0] in roots
               for k in cls.__mro__)


def user_defines(cls: type, attribute: str, library: tuple[str, ...] = KERAS_ROOTS) -> bool:
    """True when `attribute` comes from a class outside the library (the user's override)."""
    for klass in cls.__mro__:
        if attribute in vars(klass):
            return klass.__module__.partition(".")[0] not in library
    return False


def from_keras(cls: type) -> bool:
    """Whether `cls` is Keras's own class (a functional model, a built-in loss), not the
    user's."""
    return cls.__module__.partition(".")[0] in KERAS_ROOTS


def unpacks_weights(step: Any) -> bool:
    """Whether a model step's own code takes sample weights out of its data: it calls Keras's
    `unpack_x_y_sample_weight`, unpacks its data argument into three names, or hands the data
    to Keras's own step through `super()`."""
    return bool(memo(_unpacking, unwrap(step)))


def requires_weights(step: Any) -> bool:
    """Whether a model step cannot run without sample weights: it unpacks its data argument
    into exactly three names (`x, y, w = data`), so `(x, y)` alone raises, and it neither
    measures the data (`len(data)`) nor unpacks it another way (the `else: x, y = data` of
    Keras's guide), either of which means the weights are optional."""
    return bool(memo(_unpacking, unwrap(step)) == REQUIRED)


OPTIONAL, REQUIRED = "optional", "required"


def labels_name(step: Any, before: int) -> str | None:
    """The name a model step's own code gives its labels, so that a fix can be written in it
    before line `before` of its file: the second name its data argument unpacks into (`x, y =
    data`, through Keras's `unpack_x_y_sample_weight(data)`, or item by item) in a statement
    that ends above that line, or compute_loss's own parameter for them; None when the step
    takes them another way, or names them only further down."""
    return next((name for line, name in memo(_labels, unwrap(step)) if line < before), None)


@cached()
def _labels(inner: Any) -> tuple[tuple[int, str], ...]:
    """Each name the step's source gives its labels, with the last line in its file of the
    statement that binds it (0 for a parameter); read off its source once per session."""
    parsed = _step_source(inner)
    if parsed is None or not hasattr(inner, "__code__"):
        return ()
    function, data = parsed
    if function.name == "compute_loss":  # compute_loss(self, x, y, y_pred, ...)
        names = [p.arg for p in (*function.args.posonlyargs, *function.args.args)]
        return ((0, names[2]),) if len(names) > 2 else ()
    offset = inner.__code__.co_firstlineno - 1
    found = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        if not (isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) > 1
                and isinstance(target.elts[1], ast.Name)):
            continue
        # `x, y = data`, `x, y = unpack_x_y_sample_weight(data)`, or item by item:
        # `x, y = batch["features"], batch["target"]`.
        second = value.elts[1] if isinstance(value, (ast.Tuple, ast.List)) and len(
            value.elts) == len(target.elts) else value
        if any(isinstance(name, ast.Name) and name.id == data for name in ast.walk(second)):
            found.append(((node.end_lineno or node.lineno) + offset, target.elts[1].id))
    return tuple(found)


def statement_start(function: Any, line: int) -> int | None:
    """The first line of the innermost statement of `function` (a method) that spans `line`
    of its file: where a statement pasted before it runs, when the line continues one written
    over several. None when the source cannot be read, or the line is not in it."""
    spans = [(start, end) for start, end in memo(_statements, unwrap(function))
             if start <= line <= end] if function is not None else []
    return max(spans)[0] if spans else None


@cached()
def _statements(inner: Any) -> tuple[tuple[int, int], ...]:
    """The first and last line in its file of every statement of a function, read off its
    source once per session."""
    parsed = _step_source(inner)
    if parsed is None or not hasattr(inner, "__code__"):
        return ()
    offset = inner.__code__.co_firstlineno - 1
    return tuple((node.lineno + offset, (node.end_lineno or node.lineno) + offset)
                 for node in ast.walk(parsed[0]) if isinstance(node, ast.stmt))


def _step_source(inner: Any) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, str] | None:
    """A step's parsed definition and the name of its data parameter; None without source."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(inner)))
    except (TypeError, OSError, SyntaxError):
        return None
    function = tree.body[0] if tree.body else None
    if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    # The data is the first parameter after self: train_step(self, data), and Lightning's
    # training_step(self, batch, batch_idx); after the state in Keras's JAX trainer's
    # stateless train_step(self, state, data), whose state unpacks into variable groups.
    names = [p.arg for p in (*function.args.posonlyargs, *function.args.args)][1:]
    return function, next((name for name in names[:2] if name != "state"), "")


@cached()
def _unpacking(inner: Any) -> str:
    """How a step takes sample weights out of its data: "" (not at all), OPTIONAL or
    REQUIRED. Cached: read off the step's source once per session."""
    parsed = _step_source(inner)
    if parsed is None:
        return ""
    function, data = parsed
    takes = strict = lenient = False
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            through_super = (called in ("train_step", "test_step")
                             and isinstance(node.func, ast.Attribute)
                             and isinstance(node.func.value, ast.Call)
                             and getattr(node.func.value.func, "id", "") == "super")
            takes |= called == "unpack_x_y_sample_weight" or through_super
            lenient |= called == "len" and any(
                isinstance(a, ast.Name) and a.id == data for a in node.args)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) \
                and node.value.id == data:
            for target in node.targets:
                if not isinstance(target, (ast.Tuple, ast.List)):
                    continue
                starred = any(isinstance(e, ast.Starred) for e in target.elts)
                three = len(target.elts) == 3
                takes |= three
                strict |= three and not starred
                lenient |= starred or not three
    if strict and not lenient:
        return REQUIRED
    return OPTIONAL if takes else ""


def unwrap(obj: Any) -> Any:
    """The plain Python function behind partials, tf.functions, jax.jit functions (a
    compiled callable whose `__wrapped__` is the user's function), bound methods and
    callables."""
    for _ in range(10):
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif hasattr(obj, "python_function"):
            obj = obj.python_function
        elif not inspect.isfunction(obj) and inspect.isfunction(getattr(obj, "__wrapped__", None)):
            obj = obj.__wrapped__
        elif inspect.ismethod(obj):
            obj = obj.__func__
        elif not inspect.isfunction(obj) and callable(obj) and not isinstance(obj, type):
            obj = type(obj).__call__
        else:
            break
    return obj


def describe(obj: Any) -> str:
    """A short, stable name for reports and node ids; never raises: an object whose attribute
    reads raise (a lazy proxy's `__getattr__`) is named by its type."""
    try:
        return _described(obj)
    except Exception:
        return type(obj).__name__


def _described(obj: Any) -> str:
    if isinstance(obj, type) or inspect.isfunction(obj) or inspect.ismethod(obj):
        return str(obj.__qualname__)
    if isinstance(obj, functools.partial) or hasattr(obj, "python_function"):
        return str(getattr(unwrap(obj), "__qualname__", type(obj).__name__))
    if inspect.isroutine(obj) or type(obj).__name__ in _NAMED:
        # Builtins, ufuncs and lru_cache wrappers: their own name, not their type's.
        name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        if isinstance(name, str):
            return name
    return type(obj).__name__


def named(obj: Any, key: str) -> str:
    """What reports call a target found under a name (`key`, `module:name`): the name the user
    gave it, and what it is when that differs, e.g. `criterion (MSELoss)` for a module's
    `criterion = nn.MSELoss()`, so that the heading matches the target's row."""
    own = describe(obj)
    given = key.rpartition(":")[2]
    return own if given in ("", own) else f"{given} ({own})"


# Callable objects that carry the name of the function they are (read only off these types,
# since reading attributes of an arbitrary object may run its __getattr__).
_NAMED = ("ufunc", "_lru_cache_wrapper", "_ArrayFunctionDispatcher")


def source(obj: Any) -> str:
    """`path:line` of the code behind `obj`, or "" when it has no source."""
    path, line = memo(_defined_at, unwrap(obj))
    return f"{display_path(path)}:{line}" if line else ""


@cached()
def _defined_at(inner: Any) -> tuple[str, int]:
    """Cached: reading the source file costs more than a clean loss's whole check. A
    function's code object knows its first line (its first decorator's, as inspect says);
    only a class needs its file searched. A wrapper (functools.wraps, as sklearn's
    parameter validation wraps its metrics) is unwrapped first, so that the file and the line
    are both the wrapped function's."""
    try:
        inner = inspect.unwrap(inner)
        path = inspect.getsourcefile(inner)
        if not path:
            return "", 0
        code = getattr(inner, "__code__", None)
        line = code.co_firstlineno if code is not None else inspect.getsourcelines(inner)[1]
    except (TypeError, OSError):
        return "", 0
    return path, line


def signature(fn: Any) -> inspect.Signature | None:
    """The call signature, cached where `fn` is hashable: classify and the kinds both ask."""
    return memo(_cached_signature, fn)


@cached()
def _cached_signature(fn: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(getattr(fn, "python_function", fn))
    except (TypeError, ValueError):
        return None


def binds(sig: inspect.Signature, *args: Any) -> bool:
    """Whether `sig` accepts these positional arguments."""
    try:
        sig.bind(*args)
    except TypeError:
        return False
    return True


def class_backend(cls: type) -> str:
    """The backend a Loss or Metric subclass's own module refers to."""
    module = sys.modules.get(cls.__module__)
    return infer([vars(module)] if module else [], cls.__module__)


def _contents(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # a cell not yet filled
        return None


def _referenced(inner: Any) -> dict[str, Any]:
    """What a function's code refers to: the globals it names, modules it imports inside, its
    closure's values, and the same for nested functions, closed-over functions and helpers of
    its own module. A module importing torch and jax holds losses of each."""
    found: dict[str, Any] = {}
    namespace = getattr(inner, "__globals__", {})
    functions = [inner]
    seen: set[Any] = set()
    while functions:
        function = functions.pop()
        code = getattr(function, "__code__", None)
        if code is None or code in seen:
            continue
        seen.add(code)
        cells = [_contents(cell) for cell in getattr(function, "__closure__", None) or ()]
        named = {n: namespace[n] for n in code.co_names if n in namespace}
        imported = {n: sys.modules[n] for n in code.co_names if n in sys.modules}
        found.update({**imported, **named, **{f"<cell {id(v)}>": v for v in cells}})
        nested = [c for c in code.co_consts if hasattr(c, "co_names")]
        functions.extend(types.SimpleNamespace(__code__=c) for c in nested)
        functions.extend(v for v in [*named.values(), *cells] if inspect.isfunction(v))
    return found


def function_backend(fn: Any) -> str:
    """The backend of the libraries a function's code refers to, else its module's."""
    inner = unwrap(fn)
    module = getattr(inner, "__module__", "") or ""
    return match([_referenced(inner)]) or infer([getattr(inner, "__globals__", {})], module)
