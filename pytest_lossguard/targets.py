"""Resolve what was marked (loss, Loss class or instance, factory) into a uniform Target."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

from pytest_lossguard.backends import infer
from pytest_lossguard.caches import cached, memo
from pytest_lossguard.errors import LossguardError
from pytest_lossguard.options import Options
from pytest_lossguard.report import display_path

ACCEPTED = (
    "a loss or metric function fn(y_true, y_pred[, sample_weight]), a keras.losses.Loss, "
    "keras.metrics.Metric or keras.Model class or instance, or a zero-argument factory "
    "returning one"
)
_KINDS = ("Loss", "Metric", "Model")
_KERAS_ROOTS = ("keras", "tf_keras")


@dataclasses.dataclass(frozen=True)
class Target:
    """A checkable target: how to call it unreduced, the object as built, and its name."""

    name: str
    kind: str
    call: Callable[..., Any]
    takes_weights: bool
    backend: str
    source: str
    built: Any = None
    fresh: Callable[[], Any] | None = None

    def traceable(self) -> Callable[..., Any]:
        """`call`, for tracing as a graph: a metric's twin is built first, outside the trace,
        since tf.function may create variables only on its first trace."""
        return self.call if self.fresh is None else functools.partial(_measure, self.fresh())

    def instance(self) -> Any:
        """The object to hand to Keras's containers: a stateless target, or a fresh twin of a
        metric so that no run accumulates into the user's instance or into another run."""
        return self.fresh() if self.fresh is not None else self.built


def _keras_base(cls: type, base: str) -> str | None:
    """The Keras flavour whose `base` class `cls` derives from, found without importing Keras."""
    for klass in cls.__mro__:
        root = klass.__module__.partition(".")[0]
        if klass.__name__ == base and root in _KERAS_ROOTS:
            return root
    return None


def _unwrap(obj: Any) -> Any:
    """The plain Python function behind partials, tf.functions, bound methods and callables."""
    for _ in range(10):
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif hasattr(obj, "python_function"):
            obj = obj.python_function
        elif inspect.ismethod(obj):
            obj = obj.__func__
        elif not inspect.isfunction(obj) and callable(obj) and not isinstance(obj, type):
            obj = type(obj).__call__
        else:
            break
    return obj


def describe(obj: Any) -> str:
    """A short, stable name for reports and node ids."""
    if isinstance(obj, type) or inspect.isfunction(obj) or inspect.ismethod(obj):
        return str(obj.__qualname__)
    if isinstance(obj, functools.partial) or hasattr(obj, "python_function"):
        return str(getattr(_unwrap(obj), "__qualname__", type(obj).__name__))
    return type(obj).__name__


def _source(obj: Any) -> str:
    """`path:line` of the code behind `obj`, or "" when it has no source."""
    path, line = memo(_defined_at, _unwrap(obj))
    return f"{display_path(path)}:{line}" if line else ""


@cached()
def _defined_at(inner: Any) -> tuple[str, int]:
    """Cached: reading the source file costs more than a clean loss's whole check."""
    try:
        return inspect.getsourcefile(inner) or "", inspect.getsourcelines(inner)[1]
    except (TypeError, OSError):
        return "", 0


def _signature(fn: Any) -> inspect.Signature | None:
    """The call signature, cached where `fn` is hashable: classify and resolve both ask."""
    return memo(_cached_signature, fn)


@cached()
def _cached_signature(fn: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(getattr(fn, "python_function", fn))
    except (TypeError, ValueError):
        return None


def _binds(signature: inspect.Signature, *args: Any) -> bool:
    try:
        signature.bind(*args)
    except TypeError:
        return False
    return True


def classify(obj: Any) -> str:
    """What kind of target `obj` is, without building anything; LossguardError if none.

    Cheap enough for collection time: "loss class", "metric class", "model class", "loss",
    "metric", "model", "function" or "factory".
    """
    __tracebackhide__ = True
    name = describe(obj)
    if isinstance(obj, type):
        for kind in _KINDS:
            if _keras_base(obj, kind):
                return f"{kind.lower()} class"
        raise LossguardError(
            f"class {name} is not a keras Loss, Metric or Model; lossguard accepts {ACCEPTED}"
        )
    for kind in _KINDS:
        if _keras_base(type(obj), kind):
            return kind.lower()
    if not callable(obj):
        raise LossguardError(
            f"{name} ({type(obj).__name__}) is not callable; lossguard accepts {ACCEPTED}"
        )
    signature = _signature(obj)
    if signature is None:
        raise LossguardError(f"{name} has no inspectable signature; lossguard accepts {ACCEPTED}")
    if _binds(signature, None, None):
        return "function"
    if _binds(signature):
        return "factory"
    raise LossguardError(
        f"{name}{signature} cannot be called as fn(y_true, y_pred); lossguard accepts {ACCEPTED}"
    )


def resolve(obj: Any, options: Options, *, _built: bool = False) -> Target:
    """Turn a marked object into a Target, building classes and factories as needed."""
    __tracebackhide__ = True
    name = describe(obj)
    kind = classify(obj)
    if kind == "model":
        return _resolve_model(obj, name)
    if kind == "loss":
        return _resolve_loss(obj, name)
    if kind == "metric":
        return _resolve_metric(obj, name)
    if kind == "function":
        return _resolve_function(obj, name)
    if _built:
        raise LossguardError(f"factory {name} returned another factory; return the target itself")

    def build() -> Any:
        return obj() if kind == "factory" else obj(**options.init)

    try:
        built = build()
    except Exception as exc:
        raise LossguardError(
            f"cannot build {name}: {type(exc).__name__}: {exc}; pass constructor arguments "
            "with init={...} or mark a zero-argument factory that builds it"
        ) from exc
    if classify(built) == "metric":  # fresh twins as the user builds them, not from the config
        return _resolve_metric(built, name, build)
    return dataclasses.replace(resolve(built, options, _built=True), name=name)


def user_defines(cls: type, attribute: str) -> bool:
    """True when `attribute` comes from a class outside Keras (the user's override)."""
    for klass in cls.__mro__:
        if attribute in vars(klass):
            return klass.__module__.partition(".")[0] not in _KERAS_ROOTS
    return False


def _class_backend(cls: type) -> str:
    """The backend a Loss or Metric subclass's own module refers to."""
    module = sys.modules.get(cls.__module__)
    return infer([vars(module)] if module else [], cls.__module__)


def _resolve_loss(loss: Any, name: str) -> Target:
    cls = type(loss)
    backend = _class_backend(cls)
    if user_defines(cls, "__call__"):
        return Target(name, "loss", loss, True, backend, _source(cls), loss)
    # A shallow twin that skips the reduction, so the raw per-sample shape stays visible.
    unreduced = object.__new__(cls)
    unreduced.__dict__.update(vars(loss))
    unreduced.reduction = "none"
    return Target(name, "loss", unreduced, False, backend, _source(cls), loss)


def _measure(metric: Any, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    return metric.result()


def _resolve_metric(metric: Any, name: str, twin: Callable[[], Any] | None = None) -> Target:
    """A metric is called as documented (update_state, then result) on a fresh twin per call.

    An instance is rebuilt from its config; a class or factory by building it again.
    """
    cls = type(metric)
    if twin is None:
        config = metric.get_config()
        twin = functools.partial(cls.from_config, config)
        try:
            twin()
        except Exception as exc:
            raise LossguardError(
                f"cannot rebuild metric {name} from its get_config(): {type(exc).__name__}: "
                f"{exc}; return every constructor argument from get_config, or mark the class "
                "with init="
            ) from exc

    def measure(y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        return _measure(twin(), y_true, y_pred, sample_weight)

    return Target(name, "metric", measure, True, _class_backend(cls), _source(cls), metric, twin)


def _resolve_model(model: Any, name: str) -> Target:
    flavour = _keras_base(type(model), "Model") or "keras"
    return Target(name, "model", model, False, flavour, _source(type(model)), model)


def _resolve_function(fn: Any, name: str) -> Target:
    inner = _unwrap(fn)
    backend = infer([getattr(inner, "__globals__", {})], getattr(inner, "__module__", "") or "")
    signature = _signature(fn)
    takes_weights = signature is not None and "sample_weight" in signature.parameters
    return Target(name, "function", fn, takes_weights, backend, _source(fn), fn)
