"""What every tracer reports: an op that grew, and the user's frames that ran it.

A backend's tracer (backends/*) runs the target on a probe's shapes and hands each op it sees
to `grown`. An op "grows" when it combines two or more float (or boolean) arrays and its
output has more elements than every input, or when those inputs (scalars aside) differ in
rank. This module is a leaf: backends import it, and it imports only `text` and `findings`.
"""

from __future__ import annotations

import dataclasses
import linecache
import math
import os
from collections.abc import Iterable

import numpy as np

from pytest_lossguard.findings import Location
from pytest_lossguard.text import display_path

_OWN = f"{os.sep}pytest_lossguard{os.sep}"
_LIBRARY_PARTS = (
    f"{os.sep}tensorflow{os.sep}", f"{os.sep}keras{os.sep}", f"{os.sep}tf_keras{os.sep}",
    f"{os.sep}numpy{os.sep}", f"{os.sep}_pytest{os.sep}", f"{os.sep}pluggy{os.sep}",
    f"{os.sep}jax{os.sep}", f"{os.sep}jaxlib{os.sep}", f"{os.sep}torch{os.sep}",
    f"{os.sep}optax{os.sep}", f"{os.sep}flax{os.sep}", f"{os.sep}lightning{os.sep}",
    f"{os.sep}pytorch_lightning{os.sep}",
    f"{os.sep}contextlib.py", f"{os.sep}functools.py", "<__array_function__",
    f"{os.sep}threading.py", f"{os.sep}concurrent{os.sep}futures{os.sep}",
)
_CONTRACTIONS = {"MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum",
                 "matmul", "dot", "einsum", "outer", "tensordot", "kron", "inner", "dot_general",
                 "conv_general_dilated", "mm", "bmm", "addmm", "linear", "conv1d", "conv2d"}
# Ops that call a whole function: their shapes say nothing about one operation.
_CALLS = {"PartitionedCall", "StatefulPartitionedCall", "pjit", "jit", "closed_call",
          "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr", "remat", "checkpoint",
          "cond", "while", "scan"}
Frame = tuple[str, int, str]


@dataclasses.dataclass(frozen=True)
class Growth:
    """One op that grew: its type, shapes, and the user's line (and callers) that ran it."""

    op: str
    inputs: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]
    where: str
    source: str
    chain: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return self.op, self.where

    @property
    def grew(self) -> bool:
        """More elements out than any input in, or inputs that broadcast to more (a fused op
        such as torch's mse_loss reduces what it broadcast): a broadcast, not only a rank mix."""
        largest = max(math.prod(shape) for shape in self.inputs)
        try:
            combined = math.prod(np.broadcast_shapes(*self.inputs))
        except ValueError:  # inputs that do not broadcast together (a gather, a concat)
            combined = 0
        return max(math.prod(self.output), combined) > largest

    def describe(self) -> str:
        """e.g. Sub (7,), (7, 1) -> (7, 7)."""
        shapes = ", ".join(str(s) for s in self.inputs)
        return f"{self.op} {shapes} -> {self.output}"

    def location(self) -> Location:
        """The report's view of this op."""
        return Location(self.where, self.source, self.describe(), self.chain, self.grew)


def _user_frames(frames: Iterable[Frame]) -> list[Frame]:
    """The user's frames of a stack (outermost first), from where lossguard called in."""
    found: list[Frame] = []
    inside = False  # past lossguard's own interceptor frames, into the target
    for frame in reversed(list(frames)):
        if _OWN in frame[0]:
            if inside:
                break  # back in lossguard: whatever is further out called lossguard
        else:
            inside = True
            if not any(part in frame[0] for part in _LIBRARY_PARTS):
                found.append(frame)
    return found[::-1]


def grown(op: str, inputs: list[tuple[int, ...]], output: tuple[int, ...],
          frames: Iterable[Frame]) -> Growth | None:
    """A Growth when `op` combined float (or boolean mask) inputs into something larger or of
    mixed ranks."""
    if len(inputs) < 2 or op in _CONTRACTIONS or op in _CALLS:
        return None
    sizes = [math.prod(shape) for shape in inputs]
    ranks = {len(shape) for shape in inputs if shape}
    if math.prod(output) <= max(sizes) and len(ranks) < 2:
        return None
    user = _user_frames(frames)
    if not user:
        return Growth(op, tuple(inputs), output, "", "")
    filename, lineno, _ = user[-1]
    chain = tuple(f"{display_path(f)}:{n} in {name.rsplit('.', 1)[-1]}" for f, n, name in user)
    return Growth(op, tuple(inputs), output, f"{display_path(filename)}:{lineno}",
                  linecache.getline(filename, lineno).strip(), chain)
