"""What every tracer reports: an op that grew, the user's frames that ran it, and the library
function it ran inside when it was not the user's own op (`role` decides, for every tracer).

A backend's tracer (backends/*) runs the target on a probe's shapes and hands each op it sees
to `grown`. An op "grows" when it combines two or more float (or boolean) arrays and its
output has more elements than every input, or when those inputs (scalars aside) differ in
rank. This module is a leaf: backends import it, and it imports only `text`, `caches` and
`findings`.
"""

from __future__ import annotations

import dataclasses
import linecache
import math
import os
from collections.abc import Iterable, Iterator
from types import FrameType

import numpy as np

from pytest_lossguard.caches import cached
from pytest_lossguard.findings import Location
from pytest_lossguard.text import STDLIB, display_path, library

_OWN = f"{os.sep}pytest_lossguard{os.sep}"
# Library frames that only carry an op from the line that wrote it to the tracer: operator
# overloads and the array libraries' own op functions (jnp.*, tf.*, keras.ops.*, np.*,
# torch's function dispatch), and the standard library. An op that ran through these alone is
# the user's own op; one that ran inside any other library function (optax.huber_loss,
# torch.nn.functional.mse_loss, keras.losses.hinge, sklearn.metrics) is library internals.
_DISPATCH = tuple(part.replace("/", os.sep) for part in (
    "/jax/", "/jaxlib/", "/numpy/", "/tensorflow/python/ops/", "/tensorflow/python/framework/",
    "/tensorflow/python/util/", "/tensorflow/python/eager/", "/tensorflow/python/autograph/",
    "/keras/src/ops/", "/keras/src/backend/", "/torch/_tensor.py", "/torch/overrides.py",
    "/torch/functional.py",
))
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
    internals: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.op, self.where

    @property
    def inside(self) -> int:
        """How many elements the inputs broadcast to; 0 when they do not broadcast together (a
        gather, a concat)."""
        try:
            return math.prod(np.broadcast_shapes(*self.inputs))
        except ValueError:
            return 0

    @property
    def grew(self) -> bool:
        """More elements out than any input in, or inputs that broadcast to more (a fused op
        such as torch's mse_loss reduces what it broadcast): a broadcast, not only a rank mix."""
        largest = max(math.prod(shape) for shape in self.inputs)
        return max(math.prod(self.output), self.inside) > largest

    @property
    def mixed(self) -> bool:
        """Inputs of different ranks (scalars aside): the signature of an accidental broadcast,
        where an intended outer product writes its unit axes on both sides."""
        return len({len(shape) for shape in self.inputs if shape}) > 1

    def describe(self) -> str:
        """e.g. Sub (7,), (7, 1) -> (7, 7); a fused op that reduces what it broadcast (torch's
        mse_loss) says so, since its output alone shows no growth."""
        shapes = ", ".join(str(s) for s in self.inputs)
        largest = max(math.prod(self.output), *map(math.prod, self.inputs))
        fused = "" if self.op in _CONTRACTIONS or self.inside <= largest else \
            f", broadcast to {tuple(np.broadcast_shapes(*self.inputs))} inside"
        return f"{self.op} {shapes} -> {self.output}{fused}"

    def location(self) -> Location:
        """The report's view of this op."""
        return Location(self.where, self.source, self.describe(), self.chain, self.grew,
                        self.internals, self.op, self.inputs, self.output)


USER, DISPATCH, INTERNALS = "user", "dispatch", "internals"


@cached(maxsize=4096)
def role(filename: str) -> str:
    """What a frame's file is: the one rule every tracer's frames go through.

    USER code is what `text.library` says is not library code. Library code is also the
    pseudo-files of C dispatch (`<frozen ...>`, NumPy's `<__array_function__ ...>`). Of library
    code, the standard library, pseudo-files and the array libraries' op machinery
    (`_DISPATCH`) are DISPATCH: they carry an op to the tracer; the rest is INTERNALS.
    """
    if filename.startswith(("<frozen ", "<__array_function__")):
        return DISPATCH
    kind = library(filename)
    if not kind:
        return USER
    if kind == STDLIB:
        return DISPATCH
    path = os.path.realpath(filename)
    return DISPATCH if any(part in path for part in _DISPATCH) else INTERNALS


def users(filename: str) -> bool:
    """Whether a frame's file is the user's own code: neither a library's nor lossguard's."""
    return _OWN not in filename and role(filename) == USER


def _split(frames: Iterable[Frame]) -> tuple[list[Frame], Frame | None]:
    """The user's frames of a stack (outermost first), from where lossguard called in; and the
    innermost library frame below the last of them that is more than an op's dispatch: the
    library function the op ran inside, or None when the user's line wrote the op itself."""
    found: list[Frame] = []
    internals: Frame | None = None
    inside = False  # past lossguard's own interceptor frames, into the target
    for frame in reversed(list(frames)):
        if _OWN in frame[0]:
            if inside:
                break  # back in lossguard: whatever is further out called lossguard
            continue
        inside = True
        kind = role(frame[0])
        if kind == USER:
            found.append(frame)
        elif kind == INTERNALS and not found and internals is None:
            internals = frame
    return found[::-1], internals


def live_frames(frame: FrameType | None) -> Iterator[Frame]:
    """The running Python stack from `frame` outwards, outermost first, for a tracer that sees
    each op while it runs (TF's op callbacks, torch's function mode). Walked only when
    iterated, which `grown` does only for an op that grew: reading the whole stack for every
    op (`traceback.extract_stack`, which also reads each frame's source line) cost more than
    the ops themselves."""
    frames = []
    while frame is not None:
        frames.append((frame.f_code.co_filename, frame.f_lineno or 0, frame.f_code.co_name))
        frame = frame.f_back
    yield from reversed(frames)


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
    user, inner = _split(frames)
    internals = "" if inner is None else _link(display_path(inner[0]), inner)
    if not user:
        return Growth(op, tuple(inputs), output, "", "", internals=internals)
    filename, lineno, _ = user[-1]
    chain = tuple(_link(display_path(frame[0]), frame) for frame in user)
    return Growth(op, tuple(inputs), output, f"{display_path(filename)}:{lineno}",
                  linecache.getline(filename, lineno).strip(), chain, internals)


def _link(path: str, frame: Frame) -> str:
    """One frame as a call chain shows it: `path:line in function`."""
    return f"{path}:{frame[1]} in {frame[2].rsplit('.', 1)[-1]}"
