"""Class probabilities on batches of one fixed shape: one compiled program per architecture.

On JAX, `Predictor` compiles its own program: the model's stateless call, with the mirror image
as a traced flag, so that plain and mirrored predictions share one program. It can compile in a
background thread (`compile_ahead`) while the first epoch's training step compiles: on a GPU a
new architecture's prediction program costs seconds of XLA time (on an H100: about 4.7 s of
a cold trial's 6.9 s of validation). A few batches are dispatched ahead of the one being read,
so the device does not wait for the host between them (and a large validation set is not all on
the device at once). Other backends use Keras's `predict_on_batch`.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import keras
import numpy as np

EVAL_BATCH = 1024
IN_FLIGHT = 4  # batches dispatched ahead of the one being read (JAX)


class Predictor:
    """Predicts arrays shaped like `shape` (n, *image) with `model`, in batches of
    min(batch, n), the last one padded."""

    def __init__(self, model: keras.Model, shape: tuple[int, ...], dtype: Any, batch: int = EVAL_BATCH):
        self.model, self.dtype = model, np.dtype(dtype)
        self.batch = min(batch, shape[0])
        self.batch_shape = (self.batch, *shape[1:])
        self.jax = keras.backend.backend() == "jax"
        self._program: Any = None
        self._thread: threading.Thread | None = None

    def compile_ahead(self) -> None:
        """Start compiling now, in the background (JAX only; elsewhere nothing to do)."""
        if self.jax and self._program is None and self._thread is None:
            # A failure here is left for the first prediction to raise, on the caller's thread.
            self._thread = threading.Thread(target=self._compile_quietly, name="compile-predict", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Wait for a background compile: the caller may free the backend's caches next."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __call__(self, x: np.ndarray, mirrored: bool = False) -> np.ndarray:
        """Float32 probabilities of `x` (or of its mirror images: flipped left to right)."""
        n = len(x)
        batches = (self._batch(x, i) for i in range(0, n, self.batch))
        if self.jax:
            program = self._compiled()
            trainable = [v.value for v in self.model.trainable_variables]
            non_trainable = [v.value for v in self.model.non_trainable_variables]
            flag = np.bool_(mirrored)
            pending: deque = deque()
            parts = []
            for images in batches:
                pending.append(program(trainable, non_trainable, images, flag))
                if len(pending) > IN_FLIGHT:
                    parts.append(np.asarray(pending.popleft()))
            parts += [np.asarray(p) for p in pending]
        else:
            # predict_on_batch reuses the compiled step without building a data pipeline per call,
            # which costs tens of milliseconds per epoch on TensorFlow.
            # As floats: TensorFlow's oneDNN takes no uint8 on CPUs without AVX-512 in an ensemble's
            # mirrored member, and says so on stderr (an "E" line in the ensemble step).
            parts = [np.asarray(self.model.predict_on_batch(np.ascontiguousarray(b[:, :, ::-1] if mirrored else b,
                                                                                 dtype=np.float32)))
                     for b in batches]
        return np.concatenate(parts)[:n].astype(np.float32)

    def _batch(self, x: np.ndarray, start: int) -> np.ndarray:
        """Rows start.. of one batch; the last one padded with zeros (one shape, one program)."""
        rows = x[start:start + self.batch]
        if len(rows) == self.batch:
            return rows
        return np.concatenate([rows, np.zeros((self.batch - len(rows), *x.shape[1:]), x.dtype)])

    def _compiled(self) -> Any:
        self.close()
        if self._program is None:
            self._program = self._compile()
        return self._program

    def _compile_quietly(self) -> None:
        try:
            self._program = self._compile()
        except Exception:
            pass

    def _compile(self) -> Any:
        import jax
        import jax.numpy as jnp

        model = self.model

        def probabilities(trainable: list, non_trainable: list, images: Any, mirrored: Any) -> Any:
            images = jnp.where(mirrored, images[:, :, ::-1], images)
            return model.stateless_call(trainable, non_trainable, images, training=False)[0]

        def specs(variables: list) -> list:
            return [jax.ShapeDtypeStruct(tuple(v.shape), v.dtype) for v in variables]

        return jax.jit(probabilities).lower(
            specs(model.trainable_variables), specs(model.non_trainable_variables),
            jax.ShapeDtypeStruct(self.batch_shape, self.dtype), jax.ShapeDtypeStruct((), np.bool_)).compile()


def predict_padded(model: keras.Model, x: np.ndarray, tta_flip: bool = False) -> np.ndarray:
    """Class probabilities of `x`, averaged with its mirror images' with `tta_flip`."""
    predictor = Predictor(model, x.shape, x.dtype)
    probs = predictor(x)
    return (probs + predictor(x, mirrored=True)) / 2 if tta_flip else probs
