"""Timing for the benchmarks: a Keras callback that reads the clocks at the first and the last
batch of a ``fit`` epoch or a ``predict``."""

from __future__ import annotations

import time


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def batch_timer():
    """A callback that times the batches of a ``fit`` epoch and of a ``predict``: wall clock and
    the process's CPU time (all threads; a stall of a shared machine lengthens the first only).

    Timing the whole ``fit``/``predict`` call instead picks up a stall of tf.data (TF 2.21)
    when it deletes the call's iterator: deleting an iterator whose pipeline has AUTOTUNE
    parameters waits for the autotuning thread, which wakes 10 ms, 30 ms, 70 ms, ... after the
    iterator was created (its period doubles from 10 ms), so a 7 s epoch ended at 10.23 s
    (10 ms x (2^10 - 1)) and a 15 s one at 20.47 s, at random. The stall falls after the last
    batch (after ``on_epoch_end``); the trainer's own per-epoch times exclude it the same way.
    """
    import keras

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = clocks()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = tuple(b - a for a, b in zip(self.start, clocks(), strict=True))

        on_predict_begin = on_epoch_begin

        def on_predict_end(self, logs=None):
            self.on_epoch_end(0)

    return Timer()
