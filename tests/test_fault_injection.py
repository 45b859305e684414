"""Fault injection: prepare, train, tune and export killed with SIGKILL at their commit points.

Every output a command makes visible is renamed into place by the one atomic writer
(``pipelines.data.fileio._commit``); its hook ``TF4CTR_FAULT_KILL=before:N`` / ``after:N``
kills the process just before / after its N-th commit, and ``TF4CTR_FAULT_LOG`` lists the
commits of an uninterrupted run. For each command the uninterrupted run is done once; then,
for every chosen commit point, a fresh copy of the command is killed there and the same
command run again must end with what the uninterrupted run made: datasets with the same
shards and vocabularies, training with the same ``metrics.json`` and ``history.json`` (timings
aside), tuning with the same trials and best config, export with one complete version. The
kill at a point between commits (mid-epoch) is tests/test_train_cli.py's exact-resume test.

Points run two at a time (2 cores: one process computes while the other starts up).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipelines.data.fileio import FAULT_KILL_ENV, FAULT_LOG_ENV
from tests.fault_child import timeless

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--set",
    "model.simple_units=[16]",
    "--set",
    "model.complex_units=[32]",
    "--set",
    "train.batch_size=1024",
    "--set",
    "train.eval_batch_size=8192",
]


def _run(cmd: list[str], kill: str | None = None, log: Path | None = None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop(FAULT_KILL_ENV, None)
    env.pop(FAULT_LOG_ENV, None)
    if kill:
        env[FAULT_KILL_ENV] = kill
    if log:
        env[FAULT_LOG_ENV] = str(log)
    return subprocess.run(
        [sys.executable, "-m", *cmd], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def _commits(cmd: list[str], tmp: Path) -> list[str]:
    """The destinations of an uninterrupted run's commits, in order (commit n = item n-1)."""
    log = tmp / "commits.log"
    done = _run(cmd, log=log)
    assert done.returncode == 0, done.stderr[-3000:]
    return [line.split("\t", 1)[1] for line in log.read_text().splitlines()]


def _kill_and_rerun(points: list[str], make_cmd, check) -> None:
    """For each point: kill a fresh run there, check it died there, rerun, ``check`` the
    result; two at a time; fails listing every point that went wrong."""

    def one(point: str) -> str | None:
        cmd, where = make_cmd(point)
        killed = _run(cmd, kill=point)
        if killed.returncode != -signal.SIGKILL:
            return f"{point}: not killed (exit {killed.returncode}): {killed.stderr[-1500:]}"
        rerun = _run(cmd)
        if rerun.returncode != 0:
            return f"{point}: the rerun failed (exit {rerun.returncode}): {rerun.stderr[-3000:]}"
        try:
            check(where)
        except AssertionError as error:
            return f"{point}: {error}"
        return None

    with ThreadPoolExecutor(2) as pool:
        problems = [p for p in pool.map(one, points) if p]
    assert not problems, "\n".join(problems)


def _points(commits: list[str], chosen=None) -> list[str]:
    indices = chosen if chosen is not None else range(1, len(commits) + 1)
    return [f"before:{n}" for n in indices] + [f"after:{len(commits)}"]


def _no_temporaries(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


# -- prepare ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    from pipelines.data.generate import generate_criteo

    path = tmp_path_factory.mktemp("raw") / "train.txt.gz"
    generate_criteo(str(path), 3000, seed=4)
    return path


def _prepared_contents(directory: Path) -> dict:
    """Every file's bytes (the manifest without its creation time)."""
    out = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            if path.name == "manifest.json":
                manifest = json.loads(path.read_text())
                manifest.pop("created")
                out[path.name] = manifest
            else:
                out[str(path.relative_to(directory))] = path.read_bytes()
    return out


def test_prepare_killed_at_each_commit_reruns_to_the_same_dataset(raw, tmp_path):
    def cmd(out: Path) -> list[str]:
        return ["pipelines.prepare", "--dataset", "criteo", "--raw", str(raw), "--out", str(out),
                "--min-count", "2", "--shards", "2"]  # fmt: skip

    commits = _commits(cmd(tmp_path / "reference"), tmp_path)
    assert [Path(c).name for c in commits] == ["criteo"]  # the dataset appears as one unit
    want = _prepared_contents(tmp_path / "reference" / "criteo")
    assert any(name.startswith("train-") for name in want)

    def make(point):
        out = tmp_path / point.replace(":", "-")
        return cmd(out), out

    def check(out: Path):
        assert _prepared_contents(out / "criteo") == want, "another dataset"
        assert not _no_temporaries(out), _no_temporaries(out)

    _kill_and_rerun(_points(commits), make, check)
    # Killed before its commit, a run leaves nothing that looks prepared.
    killed = _run(cmd(tmp_path / "killed"), kill="before:1")
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "criteo" / "manifest.json").exists()


# -- train --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(raw, tmp_path_factory) -> Path:
    from pipelines.data.prepare import prepare

    return prepare("criteo", str(raw), tmp_path_factory.mktemp("data"), min_count=2, shards=2)


def _train_cmd(dataset: Path, run_dir: Path) -> list[str]:
    return ["pipelines.train", "--dataset", "criteo", "--data", str(dataset), "--run-dir",
            str(run_dir), "--epochs", "2", "--dropout", "0.1", "--quiet", *TINY]  # fmt: skip


def _run_result(run_dir: Path) -> dict:
    return {
        name: timeless(json.loads((run_dir / name).read_text()))
        for name in ("metrics.json", "history.json")
    }


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """An uninterrupted training run and its commits."""
    tmp = tmp_path_factory.mktemp("train")
    commits = _commits(_train_cmd(dataset, tmp / "reference"), tmp)
    return tmp / "reference", commits


def test_train_killed_at_each_commit_reruns_to_the_same_metrics(dataset, trained, tmp_path):
    reference, commits = trained
    names = [Path(c).name for c in commits]
    assert names == ["config.yaml", "data", "epoch-0001", "LATEST", "epoch-0002", "LATEST",
                     "model.keras", "history.json", "metrics.json"]  # fmt: skip
    want = _run_result(reference)

    def make(point):
        run_dir = tmp_path / point.replace(":", "-")
        return _train_cmd(dataset, run_dir), run_dir

    def check(run_dir: Path):
        assert _run_result(run_dir) == want, "other metrics"
        assert not _no_temporaries(run_dir), _no_temporaries(run_dir)

    # Every point but the second epoch's two (the first epoch's again) and history.json (a
    # file written like metrics.json, just before it): CI's time is the limit.
    _kill_and_rerun(_points(commits, [1, 2, 3, 4, 7, 9]), make, check)


def test_a_full_disk_at_the_first_checkpoint_fails_clearly_and_the_rerun_finishes(
    dataset, trained, tmp_path
):
    """A real write error in the checkpoint write (RLIMIT_FSIZE: files may not grow past 64
    KiB, below the weights' size, so the write fails with EFBIG as a full disk fails with
    ENOSPC): exit 2 and a message naming the directory, no crash (h5py writing to the disk
    directly crashed the interpreter at exit, 139), nothing of the checkpoint left; once
    writes succeed again the same command ends with the uninterrupted run's metrics."""
    import resource

    reference, _ = trained
    run_dir = tmp_path / "run"

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    full = subprocess.run(
        [sys.executable, "-m", *_train_cmd(dataset, run_dir)],
        cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=small_files,
    )
    assert full.returncode == 2, full.stderr[-3000:]
    assert (
        f"cannot write the checkpoint of epoch 1 to {run_dir / 'checkpoints' / 'epoch-0001'}"
        in (full.stderr)
    )
    assert "Traceback" not in full.stderr
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == []
    rerun = _run(_train_cmd(dataset, run_dir))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _run_result(run_dir) == _run_result(reference)


# -- export -------------------------------------------------------------------------------------
def test_export_killed_at_its_commit_reruns_to_one_complete_version(trained, tmp_path):
    reference, _ = trained

    def cmd(base: Path) -> list[str]:
        return ["export", "--run-dir", str(reference), "--model-base-path", str(base)]

    commits = _commits(cmd(tmp_path / "reference"), tmp_path)
    assert [Path(c).name for c in commits] == ["1"]  # the version appears as one unit
    want = json.loads((Path(commits[0]) / "assets.extra" / "metrics.json").read_text())

    def make(point):
        base = tmp_path / point.replace(":", "-")
        return cmd(base), base

    def check(base: Path):
        versions = sorted(p.name for p in (base / "tf4ctr_criteo").iterdir())
        assert versions == ["1"], versions  # no partial one, and no second copy
        version = base / "tf4ctr_criteo" / "1"
        assert (version / "saved_model.pb").is_file()
        assert json.loads((version / "assets.extra" / "metrics.json").read_text()) == want

    _kill_and_rerun(_points(commits), make, check)


# -- tune ---------------------------------------------------------------------------------------
def _tune_cmd(dataset: Path, space: Path, tune_dir: Path) -> list[str]:
    return ["pipelines.tune", "--dataset", "criteo", "--data", str(dataset), "--tuner",
            "random", "--max-trials", "2", "--tune-dir", str(tune_dir), "--space", str(space),
            "--set", "train.max_epochs=1", *TINY]  # fmt: skip


def _search_result(tune_dir: Path) -> dict:
    """The trials (status, hyperparameters, metrics), the best config and the results table,
    with the search directory's own path taken out."""
    trials = {}
    for path in sorted(tune_dir.glob("trial_*/trial.json")):
        trial = json.loads(path.read_text())
        trials[trial["trial_id"]] = (
            trial["status"],
            trial["hyperparameters"]["values"],
            trial["metrics"],
        )
    text = {n: (tune_dir / n).read_text().replace(str(tune_dir), "<dir>")
            for n in ("best.yaml", "results.md")}  # fmt: skip
    runs = {p.name: _run_result(p) for p in sorted((tune_dir / "runs").iterdir())}
    return {"trials": trials, **text, "runs": runs}


def test_tune_killed_at_its_commit_points_reruns_to_the_same_search(dataset, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("simple_tower: A\nselector: [ser, shared]\nfusion: [wsf, sum]\n"
                     "dropout: [0.0, 0.1]\nembedding_l2: [1.0e-5]\nlearning_rate: [1.0e-3]\n")  # fmt: skip
    commits = _commits(_tune_cmd(dataset, space, tmp_path / "reference"), tmp_path)
    want = _search_result(tmp_path / "reference")
    assert [t[0] for t in want["trials"].values()] == ["COMPLETED", "COMPLETED"]
    rel = [str(Path(c).relative_to(tmp_path / "reference")) for c in commits]
    # The search's own commit points; those inside a trial's run are the train test's: all of
    # them from the end of trial 0's run to the start of trial 1's (keras-tuner's window, where
    # a kill once made a finished trial train again), and the end.
    first = rel.index("runs/0/metrics.json")
    chosen = [2, 3, first + 1]  # trial 0 created; first + 1: the trial run's metrics.json
    chosen += list(range(first + 2, rel.index("runs/1/config.yaml") + 1))
    # (after the last commit, results.md: the finished search run again)
    assert rel[:3] == ["search.yaml", "trial_0/trial.json", "oracle.json"], rel

    def make(point):
        tune_dir = tmp_path / point.replace(":", "-")
        return _tune_cmd(dataset, space, tune_dir), tune_dir

    def check(tune_dir: Path):
        got = _search_result(tune_dir)
        assert got == want, "another search result"
        assert not _no_temporaries(tune_dir), _no_temporaries(tune_dir)

    _kill_and_rerun(_points(commits, chosen), make, check)
