"""``python -m pipelines.tune``: 3 trials on small generated data, a kill and a resume, and a
training run from the best YAML."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner
import pytest
import yaml

from pipelines.training.config import ConfigError
from pipelines.training.tune import (
    SIMPLE_TOWERS,
    SPACE,
    atomic_tuner_state,
    check_tuner_state,
    declare,
    load_space,
    overrides_for,
)
from tests.conftest import generated_criteo_dataset

REPO = Path(__file__).resolve().parents[1]


def test_space_declares_every_dimension_of_the_paper():
    hp = keras_tuner.HyperParameters()
    values = declare(hp, load_space(None))
    assert list(values) == list(SPACE) == [
        "alpha", "c", "gamma", "selector", "fusion", "simple_tower", "dropout",
        "embedding_l2", "learning_rate",
    ]  # fmt: skip
    assert hp._hps["simple_tower"][0].values == ["A", "B", "C", "D", "E"]
    assert SIMPLE_TOWERS["C"] == [200, 200] and SIMPLE_TOWERS["E"] == [800, 800]


def test_yaml_narrows_the_space(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        yaml.safe_dump(
            {"gamma": [1, 2], "fusion": "wsf", "alpha": {"min": 0.2, "max": 0.4, "step": 0.1}}
        )
    )
    hp = keras_tuner.HyperParameters()
    values = declare(hp, load_space(str(path)))
    assert values["fusion"] == "wsf" and values["gamma"] in (1, 2)
    assert 0.2 <= values["alpha"] <= 0.4
    overrides = overrides_for({"simple_tower": "C", "alpha": 0.30000000000000004})
    assert overrides == {"model.simple_units": [200, 200], "loss.alpha": 0.3}


def test_search_state_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    from keras_tuner.src import utils as kt_utils
    from keras_tuner.src.engine import trial as trial_module

    from pipelines.data import fileio

    atomic_tuner_state()
    path = tmp_path / "trial.json"
    kt_utils.save_json(str(path), {"status": "RUNNING"})

    def killed(*args, **kwargs):  # the process dies after writing, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio, "_commit", killed)  # the one atomic writer's commit point
    with pytest.raises(KeyboardInterrupt):
        kt_utils.save_json(str(path), {"status": "COMPLETED"})
    assert json.loads(path.read_text()) == {"status": "RUNNING"}  # the old state, whole
    monkeypatch.undo()
    # keras-tuner's own writers go through it: a Trial saved and loaded back.
    trial = trial_module.Trial(keras_tuner.HyperParameters(), trial_id="07", status="COMPLETED")
    trial.save(str(path))
    assert trial_module.Trial.load(str(path)).trial_id == "07"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trial.json"]  # no temp file left


def test_unreadable_search_state_is_refused_naming_the_file(tmp_path):
    (tmp_path / "trial_00").mkdir()
    (tmp_path / "oracle.json").write_text("{}")
    (tmp_path / "trial_00" / "trial.json").write_text("")  # killed mid-write (keras-tuner 1.4.8)
    with pytest.raises(ConfigError, match=r"trial_00/trial.json: the saved search state"):
        check_tuner_state(tmp_path)
    (tmp_path / "trial_00" / "trial.json").write_text('{"trial_id": "00"}')
    check_tuner_state(tmp_path)  # readable: accepted


def test_unknown_dimension_is_refused(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("alpha_: [0.1]\n")
    with pytest.raises(ConfigError, match=r"unknown search dimension\(s\) \['alpha_'\]"):
        load_space(str(path))
    assert "alpha" in SPACE


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return generated_criteo_dataset(
        tmp_path_factory.mktemp("tune-data"), 20000, seed=11, min_count=3
    )


def _command(prepared, tune_dir, space):
    return [
        sys.executable,
        "-m",
        "pipelines.tune",
        "--dataset",
        "criteo",
        "--data",
        str(prepared),
        "--tuner",
        "random",
        "--max-trials",
        "3",
        "--tune-dir",
        str(tune_dir),
        "--space",
        str(space),
        "--set",
        "model.complex_units=[32, 32]",
        "--set",
        "train.batch_size=2048",
        "--set",
        "train.max_epochs=3",
        "--set",
        "train.eval_batch_size=8192",
    ]


def _completed(tune_dir):
    out = []
    for path in tune_dir.glob("trial_*/trial.json"):
        trial = json.loads(path.read_text())
        if trial["status"] == "COMPLETED":
            out.append(trial["trial_id"])
    return sorted(out)


def _edit_state(path, **changes):
    state = json.loads(path.read_text())
    state.update(changes)
    path.write_text(json.dumps(state))


def test_restart_never_trains_a_finished_trial_again_and_refuses_other_settings(
    prepared, tmp_path, caplog
):
    """The states a kill can leave behind, written by hand: keras-tuner saves ``oracle.json``
    with the trial still "ongoing" after the trial is COMPLETED (and only rewrites it when the
    next trial starts), and a kill after ``metrics.json`` but before keras-tuner records the
    trial leaves it RUNNING. Neither may train the trial again."""
    from pipelines.tune import main

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"simple_tower": "A", "fusion": ["wsf", "sum", "cf"]}))
    tune_dir = tmp_path / "search"
    one = _command(prepared, tune_dir, space)[3:]
    one[one.index("--max-trials") + 1] = "1"
    two = [*one]
    two[two.index("--max-trials") + 1] = "2"
    caplog.set_level(logging.INFO)
    assert main(one) == 0 and _completed(tune_dir) == ["0"]
    score = json.loads((tune_dir / "trial_0" / "trial.json").read_text())["score"]
    stamp = (tune_dir / "runs" / "0" / "metrics.json").stat().st_mtime_ns
    # Killed after trial 0's trial.json was written as COMPLETED, before the oracle forgot it.
    _edit_state(tune_dir / "oracle.json", ongoing_trials={"tuner0": "0"}, end_order=[])
    caplog.clear()
    assert main(two) == 0 and _completed(tune_dir) == ["0", "1"]
    assert "trial 0 had finished before the restart; not run again" in caplog.text
    assert "trial 0 finished" not in caplog.text and "trial 1 finished" in caplog.text
    assert (tune_dir / "runs" / "0" / "metrics.json").stat().st_mtime_ns == stamp
    assert json.loads((tune_dir / "trial_0" / "trial.json").read_text())["score"] == score
    assert json.loads((tune_dir / "oracle.json").read_text())["end_order"] == ["0", "1"]

    # Killed after trial 1's run wrote metrics.json, before keras-tuner recorded the trial.
    _edit_state(tune_dir / "trial_1" / "trial.json", status="RUNNING", score=None)
    _edit_state(tune_dir / "oracle.json", ongoing_trials={"tuner0": "1"}, end_order=["0"])
    want = json.loads((tune_dir / "runs" / "1" / "metrics.json").read_text())["valid"]["auc"]
    stamp = (tune_dir / "runs" / "1" / "metrics.json").stat().st_mtime_ns
    caplog.clear()
    assert main(two) == 0 and _completed(tune_dir) == ["0", "1"]
    assert "trial 1 had finished before the restart:" in caplog.text
    assert "trial 1 finished" not in caplog.text
    assert (tune_dir / "runs" / "1" / "metrics.json").stat().st_mtime_ns == stamp
    assert json.loads((tune_dir / "trial_1" / "trial.json").read_text())["score"] == want

    # Another base config on the same search directory is refused before any work.
    caplog.clear()
    changed = [*two, "--set", "train.batch_size=1024"]
    assert main(changed) == 2
    assert "search.yaml: this search was started with other settings; changed: " in caplog.text
    assert "config.train.batch_size (2048 -> 1024)" in caplog.text


def test_trial_killed_before_the_oracle_saved_it_runs_after_a_restart(
    prepared, tmp_path, monkeypatch, caplog
):
    """keras-tuner writes a new trial's ``trial.json`` before ``oracle.json``; killed in between,
    the oracle reloads a RUNNING trial it never started. It must run, not be lost."""
    from keras_tuner.src.engine import oracle as oracle_module

    from pipelines.tune import main

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"simple_tower": "A", "fusion": ["wsf", "sum", "cf"]}))
    tune_dir = tmp_path / "search"
    argv = _command(prepared, tune_dir, space)[3:]
    argv[argv.index("--max-trials") + 1] = "2"
    real_save = oracle_module.Oracle.save

    def save(self):
        if len(self.trials) == 2 and (tune_dir / "trial_1" / "trial.json").exists():
            raise KeyboardInterrupt  # the kill: trial 1's file is written, oracle.json is not
        real_save(self)

    monkeypatch.setattr(oracle_module.Oracle, "save", save)
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    monkeypatch.undo()
    saved = json.loads((tune_dir / "oracle.json").read_text())
    assert saved["start_order"] == ["0"] and _completed(tune_dir) == ["0"]
    status = json.loads((tune_dir / "trial_1" / "trial.json").read_text())["status"]
    assert status == "RUNNING"
    caplog.set_level(logging.INFO)
    assert main(argv) == 0
    assert "trial 1 had started before the restart; running it" in caplog.text
    assert "trial 0 finished" not in caplog.text and "trial 1 finished" in caplog.text
    assert _completed(tune_dir) == ["0", "1"]
    assert len((tune_dir / "results.md").read_text().splitlines()) == 2 + 2


@pytest.mark.slow
def test_search_resumes_after_a_kill_without_repeating_trials_and_best_yaml_trains(
    prepared, tmp_path
):
    space = tmp_path / "space.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                "simple_tower": "A",
                "selector": ["ser", "shared"],
                "fusion": ["wsf", "sum", "cf"],
                "dropout": [0.0, 0.1],
                "embedding_l2": [1e-5],
                "learning_rate": [1e-3],
            }
        )
    )
    tune_dir = tmp_path / "search"
    cmd = _command(prepared, tune_dir, space)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline and not _completed(tune_dir):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = _completed(tune_dir)
    assert 1 <= len(first) < 3, first
    stamps = {t: (tune_dir / "runs" / t / "metrics.json").stat().st_mtime for t in first}

    resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(_completed(tune_dir)) == 3
    for trial, stamp in stamps.items():  # finished trials were not trained again
        assert (tune_dir / "runs" / trial / "metrics.json").stat().st_mtime == stamp
        assert f"trial {trial} finished" not in resumed.stderr

    table = (tune_dir / "results.md").read_text().splitlines()
    assert table[0].startswith("| trial |") and len(table) == 2 + 3
    best = yaml.safe_load((tune_dir / "best.yaml").read_text())
    assert best["dataset"] == "criteo" and "data" not in best
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert best["model"]["fusion"] == summary["params"]["fusion"]

    run_dir = tmp_path / "from-best"
    trained = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.train",
            "--config",
            str(tune_dir / "best.yaml"),
            "--data",
            str(prepared),
            "--epochs",
            "1",
            "--quiet",
            "--run-dir",
            str(run_dir),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["fusion"] == best["model"]["fusion"]
    assert config["model"]["selector"] == best["model"]["selector"]
