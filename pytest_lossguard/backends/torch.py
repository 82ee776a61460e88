"""torch tensors, and location from `torch.overrides.TorchFunctionMode`, which sees every
tensor op with its arguments while the Python stack still names the user's line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from pytest_lossguard.backends import ArrayBackend
from pytest_lossguard.trace import Growth, grown, live_frames


class _Recorder(TorchFunctionMode):
    """Records every op whose tensor inputs grew into its output: float, boolean and integer
    ones (class ids compared with an argmax), complex ones left out."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[Growth] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        if isinstance(result, torch.Tensor):
            tensors = [a for a in (*args, *(kwargs or {}).values())
                       if isinstance(a, torch.Tensor)
                       and not a.dtype.is_complex]
            name = getattr(func, "__name__", str(func)).strip("_")
            growth = grown(name, [tuple(t.shape) for t in tensors], tuple(result.shape),
                           live_frames(sys._getframe()))
            if growth is not None:
                self.found.append(growth)
        return result


def torch_growth(call: Callable[..., Any], tensors: Sequence[Any]) -> list[Growth]:
    """Every growing op of `call(*tensors)`, run eagerly under a recording mode."""
    with _Recorder() as recorder:
        call(*tensors)
    return recorder.found


class Torch(ArrayBackend):
    """The backend for torch code (and Keras 3 on torch, through backends.keras)."""

    name = "torch"
    feeds = "torch tensors"
    namespace = "torch"

    def reshape(self, value: str, shape: str) -> str:
        """torch's idiom takes a literal shape's sizes as arguments: y.reshape(-1, 1)."""
        literal = shape.startswith("(") and shape.endswith(")")
        return f"{value}.reshape({shape[1:-1] if literal else shape})"

    def shape(self, value: str) -> str:
        return f"{value}.shape"

    def to_tensor(self, array: np.ndarray) -> Any:
        return torch.from_numpy(np.array(array))

    def to_numpy(self, value: Any) -> np.ndarray:
        if not isinstance(value, torch.Tensor):
            return np.asarray(value)
        tensor = value.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            import ml_dtypes  # numpy has no bfloat16; torch cannot export one without it

            return tensor.float().numpy().astype(ml_dtypes.bfloat16)
        return tensor.numpy()

    def growth(self, call: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[Growth]:
        return torch_growth(call, [self.to_tensor(a) for a in arrays])

    def step(self, model: Any, method: str, data: Any) -> Any:
        """A Lightning step, `training_step(batch, batch_idx)`, as the Trainer calls it."""
        return getattr(model, method)(data, 0)

    def read(self, variable: Any) -> np.ndarray:
        return np.array(self.to_numpy(variable))

    def write(self, variable: Any, value: Any) -> None:
        # NumPy's bfloat16 (ml_dtypes) has no torch twin: it goes over as float32.
        plain = value.astype(np.float32) if value.dtype.name == "bfloat16" else np.array(value)
        with torch.no_grad():
            variable.copy_(torch.from_numpy(plain).to(variable.dtype))

    @contextlib.contextmanager
    def seeded(self, seed: int) -> Iterator[None]:
        """torch's default generator seeded in a fork of its state."""
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield


BACKEND = Torch()
