import keras
import numpy as np
import pytest

from pipelines.training.evaluation import monitor_value
from pipelines.training.schedule import ReferenceSchedule, read_state
from tf4ctr_keras import build_model


class Scripted:
    """An evaluate function that replays scripted validation AUCs."""

    def __init__(self, aucs):
        self.aucs = list(aucs)
        self.calls = 0

    def __call__(self, model):
        value = self.aucs[self.calls]
        self.calls += 1
        return {"auc": value, "gauc": value - 0.1, "logloss": 0.5}


class WeightRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.snapshots = []

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots.append([np.array(w) for w in self.model.weights])


def _model_and_data():
    model = build_model("dnn", {"a": 5, "b": 4}, complex_units=[4], embedding_dim=2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss={"ctr": "binary_crossentropy"})
    rng = np.random.default_rng(0)
    x = {"a": rng.integers(0, 5, 64), "b": rng.integers(0, 4, 64)}
    y = (x["a"] > 2).astype("float32")
    return model, x, {"ctr": y}


def test_monitor_is_sum_of_named_metrics():
    assert monitor_value({"auc": 0.9, "gauc": 0.8, "logloss": 0.3}, "auc+gauc") == pytest.approx(
        1.7
    )
    assert monitor_value({"auc": 0.9, "logloss": 0.3}, "auc") == 0.9


def test_lr_drops_on_every_bad_epoch_and_training_stops_after_two_in_a_row(tmp_path):
    model, x, y = _model_and_data()
    scripted = Scripted([0.5, 0.6, 0.6, 0.65, 0.65 + 5e-7, 0.63])
    schedule = ReferenceSchedule(scripted, monitor="auc", checkpoint_dir=tmp_path)
    recorder = WeightRecorder()
    # The recorder runs before the schedule, so it snapshots the weights the schedule judges.
    model.fit(x, y, batch_size=16, epochs=20, verbose=0, callbacks=[recorder, schedule])
    lrs = [h["learning_rate"] for h in schedule.history]
    # epochs 1,2 improve; 3 ties (lr->1e-4); 4 improves; 5 gains < 1e-6 (lr->1e-5); 6 worse: stop
    np.testing.assert_allclose(lrs, [1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-5], rtol=1e-5)
    assert len(schedule.history) == 6 and schedule.best_epoch == 4
    np.testing.assert_allclose(float(np.array(model.optimizer.learning_rate)), 1e-6, rtol=1e-5)
    for restored, best in zip(model.weights, recorder.snapshots[3], strict=True):
        np.testing.assert_array_equal(np.array(restored), best)
    state = read_state(tmp_path)
    assert state["epochs_done"] == 6 and state["stopped"] and state["best_epoch"] == 4


def test_lr_floor_is_respected():
    model, x, y = _model_and_data()
    schedule = ReferenceSchedule(
        Scripted([0.5, 0.4, 0.4, 0.4]), monitor="auc", patience=4, factor=0.001, min_lr=1e-5
    )
    model.fit(x, y, batch_size=64, epochs=4, verbose=0, callbacks=[schedule])
    assert [h["learning_rate"] for h in schedule.history][1:] == pytest.approx([1e-3, 1e-5, 1e-5])


def test_restore_resumes_weights_optimizer_and_schedule_state(tmp_path):
    model, x, y = _model_and_data()
    first = ReferenceSchedule(Scripted([0.5, 0.6, 0.55]), monitor="auc", checkpoint_dir=tmp_path)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[first])
    # state on disk is after epoch 3 (lr dropped once), but on_train_end restored epoch 2
    fresh, _, _ = _model_and_data()
    second = ReferenceSchedule(Scripted([0.7]), monitor="auc", checkpoint_dir=tmp_path)
    fresh.build()
    assert second.restore(fresh) == 3
    assert (second.best_epoch, second.wait) == (2, 1)
    np.testing.assert_allclose(float(np.array(fresh.optimizer.learning_rate)), 1e-4, rtol=1e-5)
    assert int(fresh.optimizer.iterations) == int(model.optimizer.iterations) == 12
    for a, b in zip(fresh.weights, second._best_weights, strict=True):
        assert a.shape == b.shape


def test_an_unreadable_latest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
    from pipelines.training.schedule import LAST_WEIGHTS, latest_checkpoint

    model, x, y = _model_and_data()
    first = ReferenceSchedule(Scripted([0.5, 0.6, 0.55]), monitor="auc", checkpoint_dir=tmp_path)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[first])
    # one unit per epoch, the newest two kept, LATEST names the newest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LATEST", "epoch-0002", "epoch-0003"]
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch-0003"
    assert read_state(tmp_path)["epochs_done"] == 3
    (tmp_path / "epoch-0003" / LAST_WEIGHTS).write_bytes(b"not an h5 file")
    fresh, _, _ = _model_and_data()
    fresh.build()
    second = ReferenceSchedule(Scripted([0.7]), monitor="auc", checkpoint_dir=tmp_path)
    assert second.restore(fresh) == 2  # epoch 2's state, consistent with its weights
    assert f"checkpoint {tmp_path / 'epoch-0003'} is unreadable" in caplog.text
    assert (second.best_epoch, second.wait) == (2, 0)
    assert int(fresh.optimizer.iterations) == 8  # 4 steps per epoch, 2 epochs


def test_temporaries_a_killed_run_left_are_removed_on_start(tmp_path):
    import os

    dead = 2**22 + 12345  # above the default pid_max: no such process
    (tmp_path / f".tmp-{dead}-last.weights.h5").write_bytes(b"x" * 1000)
    (tmp_path / f"epoch-0004.tmp-{dead}").mkdir()
    live = tmp_path / f".tmp-{os.getpid()}-state.json"
    live.write_text("{}")
    schedule = ReferenceSchedule(Scripted([0.5]), monitor="auc", checkpoint_dir=tmp_path)
    schedule.on_train_begin()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]


def test_weights_bytes_load_back_as_the_model_and_optimizer_state(tmp_path):
    from pipelines.training.schedule import weights_bytes

    model, x, y = _model_and_data()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    path = tmp_path / "w.weights.h5"
    path.write_bytes(weights_bytes(model))
    fresh, _, _ = _model_and_data()
    fresh.build()
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(path)
    for a, b in zip(
        fresh.weights + fresh.optimizer.variables,
        model.weights + model.optimizer.variables,
        strict=True,
    ):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    assert int(fresh.optimizer.iterations) == 8


def _dropout_model_and_data():
    model = build_model(
        "dnn", {"a": 5, "b": 4}, complex_units=[8], embedding_dim=2, dropout=0.5, seed=0
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss={"ctr": "binary_crossentropy"})
    rng = np.random.default_rng(0)
    x = {"a": rng.integers(0, 5, 64), "b": rng.integers(0, 4, 64)}
    return model, x, {"ctr": (x["a"] > 2).astype("float32")}


def test_the_checkpoint_keeps_the_dropout_generators_so_a_resumed_epoch_is_the_same(tmp_path):
    """Dropout draws from SeedGenerator variables that save_weights leaves out: restored from
    the checkpoint, epoch 3 after a restore is epoch 3 of the uninterrupted run, bit for bit;
    without them it would draw epoch 1's masks again."""
    from pipelines.training.schedule import random_variables

    keras.utils.set_random_seed(1)
    model, x, y = _dropout_model_and_data()
    model.build()
    assert random_variables(model)  # the dropout layers' generators
    uninterrupted = ReferenceSchedule(Scripted([0.5, 0.6, 0.7]), monitor="auc")
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[uninterrupted])
    want = [np.array(w) for w in model.weights]

    keras.utils.set_random_seed(1)
    first, _, _ = _dropout_model_and_data()
    schedule = ReferenceSchedule(Scripted([0.5, 0.6]), monitor="auc", checkpoint_dir=tmp_path)
    first.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[schedule])
    state = read_state(tmp_path)
    assert [v for _, v in state["random_state"]] == [
        np.array(v).tolist() for v in random_variables(first)
    ]
    keras.utils.set_random_seed(1)  # a new process: generators at their initial state
    fresh, _, _ = _dropout_model_and_data()
    fresh.build()
    resumed = ReferenceSchedule(Scripted([0.7]), monitor="auc", checkpoint_dir=tmp_path)
    assert resumed.restore(fresh) == 2
    fresh.fit(
        x, y, batch_size=16, epochs=3, initial_epoch=2, shuffle=False, verbose=0,
        callbacks=[resumed],
    )  # fmt: skip
    for got, expected in zip(fresh.weights, want, strict=True):
        np.testing.assert_array_equal(np.array(got), expected)


def test_a_full_disk_during_a_checkpoint_is_a_clear_error_and_keeps_the_last_one(
    tmp_path, monkeypatch
):
    """ENOSPC while writing epoch 2's weights: CheckpointError naming the directory, nothing of
    epoch 2 on disk, epoch 1 still LATEST; with space again, the run resumes after epoch 1."""
    import errno
    from pathlib import Path

    from pipelines.training.schedule import CheckpointError, latest_checkpoint

    model, x, y = _model_and_data()
    schedule = ReferenceSchedule(Scripted([0.5, 0.6]), monitor="auc", checkpoint_dir=tmp_path)
    write_bytes = Path.write_bytes

    def full_disk(self, data):
        if "epoch-0002" in str(self):
            write_bytes(self, data[: len(data) // 2])  # part of it reached the disk
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(CheckpointError) as caught:
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[schedule])
    message = str(caught.value)
    assert f"epoch 2 to {tmp_path / 'epoch-0002'}" in message
    assert "No space left on device" in message and "epoch-0001, is intact" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LATEST", "epoch-0001"]
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch-0001"
    monkeypatch.undo()
    fresh, _, _ = _model_and_data()
    fresh.build()
    again = ReferenceSchedule(Scripted([0.6]), monitor="auc", checkpoint_dir=tmp_path)
    assert again.restore(fresh) == 1


def test_a_directory_killed_while_being_replaced_is_put_back(tmp_path):
    """atomic_directory(replace=True) retires the old directory, then renames the new one:
    killed in between, the next start restores the old one (a live process's is left)."""
    from pipelines.data.fileio import atomic_directory, remove_stale_temporaries

    dead = 2**22 + 12345
    (tmp_path / f"data.old-{dead}").mkdir()
    (tmp_path / f"data.old-{dead}" / "manifest.json").write_text("{}")
    assert remove_stale_temporaries(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert (tmp_path / "data" / "manifest.json").read_text() == "{}"
    (tmp_path / f"data.old-{dead}").mkdir()  # retired, and the new one was renamed: stale
    with atomic_directory(tmp_path / "data", replace=True) as tmp:
        (tmp / "manifest.json").write_text('{"new": 1}')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert (tmp_path / "data" / "manifest.json").read_text() == '{"new": 1}'


def test_the_final_metrics_reuse_the_best_epochs_predictions_and_equal_a_fresh_pass(tmp_path):
    import tensorflow as tf

    from pipelines.training.evaluation import SplitEvaluator

    model, x, y = _model_and_data()
    valid_data = tf.data.Dataset.from_tensor_slices(
        ({k: v[:40] for k, v in x.items()}, y["ctr"][:40])
    ).batch(16)
    valid = SplitEvaluator(valid_data)
    calls = []
    predict = valid.predict
    valid.predict = lambda m, callbacks=None: calls.append(1) or predict(m, callbacks)
    schedule = ReferenceSchedule(valid, monitor="auc", patience=2, checkpoint_dir=tmp_path)
    model.fit(x, y, batch_size=16, epochs=6, verbose=0, callbacks=[schedule])
    epochs = len(schedule.history)
    assert len(calls) == epochs and schedule.best_predictions is not None
    # after the restore the model is the best epoch's: a fresh pass gives the same numbers
    fresh = predict(model)
    np.testing.assert_array_equal(schedule.best_predictions, fresh)
    best = schedule.history[schedule.best_epoch - 1]
    reused, calibration = valid.with_calibration(model, schedule.best_predictions)
    assert len(calls) == epochs  # no forward pass for the final metrics
    assert reused["auc"] == best["val_auc"]
    assert (reused, calibration) == valid.with_calibration(model)
    with pytest.raises(ValueError, match="Got 3 predictions for 40 labels"):
        valid.with_calibration(model, fresh[:3])
    # a resumed schedule has not seen the best epoch's predictions: finish_run predicts again
    resumed = ReferenceSchedule(valid, monitor="auc", checkpoint_dir=tmp_path)
    resumed.restore(model)
    assert resumed.best_epoch == schedule.best_epoch and resumed.best_predictions is None
