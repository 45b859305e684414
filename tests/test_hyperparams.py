"""``python -m experiments.hyperparams``: the sweep plan and its cache keys, the cost estimate,
resuming, the computed reading, Figs. 2 and 4 and the dry run, on hand-made runs and tiny
generated data; and the committed archive, whose reference runs every sweep shares."""

import math
import re
import statistics

import numpy as np
import pytest
from scipy import stats

from experiments import RESULTS, figures, hyperparams, reproduce, runs, tables
from experiments.runs import Study, archive_runs
from tests.conftest import generated_criteo_dataset
from tests.test_experiments import ARCHIVED, _archived_data_id, _fake_run

GRID_SIZES = {"alpha": 6, "c": 6, "gamma": 5, "simple": 5}


@pytest.fixture
def study(tmp_path):
    return Study("frappe", str(tmp_path / "frappe-data"), tmp_path / "runs")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _main(caplog, argv) -> tuple[int, list[str]]:
    caplog.clear()
    caplog.set_level("INFO")
    rc = hyperparams.main(argv)
    names = ("experiments.hyperparams", "experiments.reproduce")
    return rc, [r.getMessage() for r in caplog.records if r.name in names]


# -- the plan -----------------------------------------------------------------------------------
def test_sweep_grids_are_the_papers():
    assert list(tables.SWEEPS) == ["alpha", "c", "gamma", "simple"]
    assert list(tables.sweep_points("alpha")) == ["0.15", "0.25", "0.35", "0.45", "0.55", "0.65"]
    assert list(tables.sweep_points("gamma").values()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert tables.sweep_points("simple") == {
        "A": (400,),
        "B": (800,),
        "C": (200, 200),
        "D": (400, 400),
        "E": (800, 800),
    }
    assert [hyperparams.sweep(n)["figure"] for n in tables.SWEEPS] == [6, 7, 8, 9]
    # the paper's text: no plotted value is legible, so none is recorded
    for name in tables.SWEEPS:
        assert all(v is None for v in hyperparams.sweep(name)["values"].values())
    assert hyperparams.paper_best("alpha", "frappe") == "0.45"
    assert hyperparams.paper_best("simple", "ml-1m") == "A"
    assert hyperparams.paper_best("c", "movielenslatest") is None  # "rises with c"


@pytest.mark.parametrize("name", ["alpha", "c", "gamma", "simple"])
def test_sweep_plan_is_points_times_seeds_differing_only_in_the_swept_key(study, name):
    items = hyperparams.plan(name, 3)
    points = tables.sweep_points(name)
    assert [seed for _, _, seed in items] == [s for s in (2023, 2024, 2025) for _ in points]
    key = hyperparams.sweep(name)["key"]
    reference = _flat(study.key_config(tables.table4_specs()["tf4ctr"]))
    for label, s, seed in items:
        config = _flat(study.key_config(s, seed))
        differ = {k for k in config if config[k] != reference[k]}
        assert differ <= {key, "train.seed"}, (label, differ)
        value = points[label.split()[1]]
        assert config[key] == (list(value) if isinstance(value, tuple) else value)
        assert config["train.seed"] == seed
    assert len({study.run_dir(s, seed) for _, s, seed in items}) == len(points) * 3


def test_the_reference_point_of_every_sweep_is_the_table4_run(study):
    t4 = tables.table4_specs()["tf4ctr"]
    for name, label in (("alpha", "0.25"), ("c", "0.7"), ("gamma", "1"), ("simple", "D")):
        s = tables.sweep_specs(name)[label]
        for seed in (2023, 2024, 2025):
            assert study.run_dir(s, seed) == study.run_dir(t4, seed), (name, seed)
    other = tables.sweep_specs("gamma")["2"]
    assert study.run_dir(other, 2023) != study.run_dir(t4, 2023)
    # ML-1M's reference: simple [400], c 0.8, gamma 2
    ml = Study("ml-1m", "/nowhere/ml-1m", study.runs)
    ref = ml.run_dir(tables.table4_specs()["tf4ctr"], 2023)
    for name, label in (("alpha", "0.25"), ("c", "0.8"), ("gamma", "2"), ("simple", "A")):
        assert ml.run_dir(tables.sweep_specs(name)[label], 2023) == ref


# -- the cost -----------------------------------------------------------------------------------
def test_cost_estimate_on_a_hand_made_archive(tmp_path, caplog):
    scratch = Study("frappe", str(tmp_path / "d"), tmp_path / "made")
    (tmp_path / "d").mkdir()
    t4 = tables.table4_specs()
    # two TF4CTR runs: 10 s x 20 epochs and 14 s x 30 epochs (mean 12 s x 25); one DNN 8 s x 18
    _fake_run(scratch, t4["tf4ctr"], 2023, 0.987, epochs=20, train_seconds_per_epoch=10.0)
    _fake_run(scratch, tables.sweep_specs("alpha")["0.45"], 2023, 0.986, epochs=30,
              train_seconds_per_epoch=14.0)  # fmt: skip
    _fake_run(scratch, t4["dnn"], 2023, 0.985, epochs=18, train_seconds_per_epoch=8.0)
    archive = tmp_path / "archive"
    assert len(archive_runs(scratch.runs, archive)) == 3
    pace = reproduce.measured_pace(scratch.index())
    assert pace == {"dnn": (8.0, 18.0, 1), "tf4ctr": (12.0, 25.0, 2)}
    # four gamma points to run (gamma 1 is the archived reference run) at 300 s each, and
    # Fig. 2's 3 DNN epochs at 8 s: 1224 s
    todo = [("tf4ctr", None)] * 4 + [("dnn", 3)]
    assert reproduce.estimate_seconds(todo, pace) == 4 * 12.0 * 25.0 + 3 * 8.0
    # a model without runs: the mean of every run (32 / 3 s x 68 / 3 epochs)
    assert reproduce.estimate_seconds([("dcnv2", None)], pace) == pytest.approx(32 / 3 * 68 / 3)
    assert reproduce.estimate_seconds(todo, {}) is None
    argv = ["--dataset", "frappe", "--data", str(tmp_path / "d"), "--dry-run", "--seeds", "1"]
    argv += ["--runs", str(tmp_path / "fresh"), "--archive", str(archive)]
    rc, lines = _main(caplog, [*argv, "--sweeps", "gamma", "fig2"])
    assert rc == 0 and lines[0] == "restored 3 archived result(s) from " + str(archive)
    assert lines[1] == (
        "cost: 4 training run(s) (tf4ctr 4) and 3 epoch(s) of in-process experiments, about "
        "20 min of training at the pace of the finished runs (dnn 8.0 s/epoch x 18.0 epochs "
        "(1 run); tf4ctr 12.0 s/epoch x 25.0 epochs (2 runs); training time per epoch only: "
        "evaluation, start-up and a slower or busier machine add to it)"
    )
    rc, lines = _main(caplog, [*argv, "--sweeps", "alpha", "--seeds", "3"])
    assert lines[0].startswith("cost: 16 training run(s) (tf4ctr 16), about 1.3 h of training")
    assert reproduce.cost_text([], pace) == "nothing to train (every run is cached)"


# -- resume -------------------------------------------------------------------------------------
def test_a_cached_point_is_not_retrained_and_a_second_invocation_trains_nothing(
    tmp_path, monkeypatch, caplog
):
    trained = []
    aucs = {"1": 0.9870, "2": 0.9875, "3": 0.9868, "4": 0.9860, "5": 0.9850}

    def fake_train(self, s, seed):
        gamma = f"{dict(s.overrides).get('loss.gamma', 1.0):g}"
        trained.append((gamma, seed))
        return _fake_run(self, s, seed, aucs[gamma] + 1e-4 * (seed - 2023))

    monkeypatch.setattr(Study, "train", fake_train)
    (tmp_path / "d").mkdir()
    study = Study("frappe", str((tmp_path / "d").resolve()), (tmp_path / "r").resolve())
    _fake_run(study, tables.sweep_specs("gamma")["3"], 2023, aucs["3"])  # already cached
    argv = ["--dataset", "frappe", "--data", str(tmp_path / "d"), "--runs", str(tmp_path / "r")]
    argv += ["--results", str(tmp_path / "out" / "frappe-hyperparams.md"), "--sweeps", "gamma"]
    rc, lines = _main(caplog, [*argv, "--seeds", "1"])
    assert rc == 0 and sorted(trained) == [(g, 2023) for g in ("1", "2", "4", "5")]
    assert lines[0].startswith("cost: 4 training run(s) (tf4ctr 4); no finished run")
    trained.clear()
    assert _main(caplog, [*argv, "--seeds", "1"])[0] == 0
    assert trained == []
    _main(caplog, [*argv, "--seeds", "2"])
    assert sorted(trained) == [(g, 2024) for g in ("1", "2", "3", "4", "5")]
    text = (tmp_path / "out" / "frappe-hyperparams.md").read_text()
    assert "| 2 | **98.755 ± 0.007 (n=2)** |" in text
    assert "| 1 (reference) | 98.705 ± 0.007 (n=2) |" in text
    assert "| 3 | 98.685 ± 0.007 (n=2) |" in text
    assert "Our optimum: gamma = 2 (98.755 ± 0.007)." in text
    assert "ours is in it." in text
    assert "| alpha | test AUC (%)" in text and "| 0.15 | not run |" in text
    for png in ("fig6-alpha", "fig7-c", "fig8-gamma", "fig9-simple", "fig4-tf-loss"):
        assert (tmp_path / "out" / f"frappe-hyperparams-{png}.png").is_file(), png
    assert "Figure 2" in text.split("## Missing points")[1]


# -- the reading --------------------------------------------------------------------------------
def _rows(name: str, aucs: dict[str, list[float]]) -> list[dict]:
    rows = []
    for label, value in tables.sweep_points(name).items():
        rows.append(
            {
                "label": label,
                "x": None if isinstance(value, tuple) else value,
                "value": value,
                "auc": aucs.get(label, []),
            }
        )
    return rows


def _p(a, b) -> str:
    return f"{stats.ttest_ind(a, b, equal_var=False).pvalue:.2g}"


def test_reading_of_a_falling_alpha_curve_whose_optimum_is_not_the_papers():
    means = dict(zip(["0.15", "0.25", "0.35", "0.45", "0.55", "0.65"],
                     [0.9880, 0.9878, 0.9875, 0.9870, 0.9865, 0.9860], strict=True))  # fmt: skip
    aucs = {k: [m - 1e-4, m, m + 1e-4] for k, m in means.items()}
    text = hyperparams.reading("alpha", _rows("alpha", aucs), "frappe")
    assert text.startswith(
        "Fig. 6 (alpha) on Frappe, test AUC (%), 6 of 6 points run with 3 seed(s) each. Our "
        "optimum: alpha = 0.15 (98.800 ± 0.010)."
    )
    assert (
        "The paper's optimum (text) is alpha = 0.45, where we get 98.700 ± 0.010: ours is higher "
        f"by 0.100 AUC points, exceeds the seed noise (Welch p = {_p(aucs['0.15'], aucs['0.45'])}, "
        "n = 3 vs 3)."
    ) in text
    assert (
        "Shape: our AUC falls as alpha grows (Spearman rho = -1.00 over 6 points); the paper's "
        "is decreasing: the same shape."
    ) in text
    assert "Best − worst point (0.15 − 0.65): 0.200 AUC points, exceeds the seed noise" in text


def test_reading_of_a_c_peak_at_the_papers_optimum_within_the_noise():
    means = {"0.5": 0.9860, "0.6": 0.9868, "0.7": 0.9874, "0.8": 0.9873, "0.9": 0.9865,
             "1": 0.9855}  # fmt: skip
    aucs = {k: [m - 3e-4, m, m + 3e-4] for k, m in means.items()}
    text = hyperparams.reading("c", _rows("c", aucs), "frappe")
    assert (
        "It is the paper's optimum (text: c = 0.7); its lead over the runner-up (0.8) is 0.010 "
        f"AUC points, within the seed noise (Welch p = {_p(aucs['0.7'], aucs['0.8'])}, n = 3 "
        "vs 3)."
    ) in text
    assert (
        ", with an interior optimum; the paper describes a peak inside the grid: the same " in text
    )
    # ML-tag: the paper's c rises, with no stated optimum
    ml = hyperparams.reading("c", _rows("c", aucs), "movielenslatest")
    assert "The paper's text gives no optimum on ML-tag." in ml
    assert "the paper's is increasing: not its shape." in ml


def test_reading_with_one_seed_a_point_and_the_papers_further_claims():
    gamma = {"1": [0.9870], "2": [0.9875], "3": [0.9868], "4": [0.9862], "5": [0.9850]}
    text = hyperparams.reading("gamma", _rows("gamma", gamma), "frappe")
    assert "5 of 5 points run with 1 seed(s) each. Our optimum: gamma = 2 (98.750)." in text
    assert "The paper's text gives no optimum on Frappe." in text
    assert "Spearman rho = -0.90 over 5 points); the paper's is decreasing: the same shape." in text
    assert "too few seeds to tell it from the seed noise (Welch needs n >= 2 on both sides)" in text
    assert "The paper finds the best gamma in {1, 2, 3}: ours is in it." in text
    simple = {"A": [0.9870], "B": [0.9871], "C": [0.9872], "E": [0.9880]}
    text = hyperparams.reading("simple", _rows("simple", simple), "frappe")
    assert "4 of 5 points run with 1 seed(s) each (not run: D). Our optimum: " in text
    assert "The paper's optimum (text) is simple_units = C, where we get 98.720" in text
    assert "The paper finds E not good on any dataset: ours ranks 1 of 4." in text
    assert "Shape" not in text  # structures have no order
    assert (
        hyperparams.reading("alpha", _rows("alpha", {}), "frappe") == "Fig. 6 on Frappe: not run."
    )
    other = hyperparams.reading("alpha", _rows("alpha", {"0.25": [0.8]}), "criteo")
    assert "The paper has no Fig. 6 on Criteo." in other


# -- Figure 4 -----------------------------------------------------------------------------------
def test_fig4_values_are_the_loss_class_outputs_at_hand_computed_points():
    from tf4ctr_keras.losses import TwinFocusLoss

    curves = figures.fig4_curves(pairs=[(0.7, 2.0), (0.5, 1.0)], points=199)
    p = curves["p"]
    assert (len(p), p[0], p[-1]) == (199, 0.005, 0.995)
    half, tenth = p.index(0.5), p.index(0.1)
    ln2, ln10 = math.log(2.0), math.log(10.0)
    c07, c05 = curves["curves"]
    assert curves["log_loss"][half] == pytest.approx(ln2, rel=1e-6)
    assert c07["simple"][half] == pytest.approx(1.2**2 * ln2, rel=1e-6)  # (c + p)^gamma BCE
    assert c07["complex"][half] == pytest.approx(0.8**2 * ln2, rel=1e-6)  # (2 - c - p)^gamma BCE
    assert c05["simple"][tenth] == pytest.approx(0.6 * ln10, rel=1e-6)
    assert c05["complex"][tenth] == pytest.approx(1.4 * ln10, rel=1e-6)
    # the class's own alpha-weighted per-sample loss is the same two terms
    z = np.float32(math.log(0.1 / 0.9))
    mixed = TwinFocusLoss(0.25, 0.5, 1.0, reduction=None)(np.ones(1), np.array([[z, z]]))
    assert float(mixed[0]) == pytest.approx(0.25 * c05["simple"][tenth] + 0.75 * c05["complex"][tenth], rel=1e-6)  # fmt: skip
    # both terms cross the log loss where c + p = 1
    assert figures.crossings(p, c07["simple"], curves["log_loss"]) == [pytest.approx(0.3)]
    assert figures.crossings(p, c05["complex"], curves["log_loss"]) == [pytest.approx(0.5)]
    assert figures.crossings([0, 1, 2], [0, 2, 2], [1, 1, 1]) == [0.5]


def test_fig4_reading_of_the_default_pairs_is_the_papers_description():
    text = hyperparams.fig4_reading(figures.fig4_curves())
    assert text.startswith("each term crosses the log loss once, at p = 1 − c (L_simple / ")
    assert "c 0.5, gamma 2: 0.500 / 0.500; c 0.7, gamma 2: 0.300 / 0.300; c 0.9" in text
    assert text.endswith(
        "at c = 0.7, as gamma grows (1, 2, 3) L_simple falls at p = 0.15 and rises at p = 0.65, "
        "L_complex rises and falls: as the paper describes."
    )


# -- Figure 2 -----------------------------------------------------------------------------------
def test_fig2_histograms_bin_each_label_by_class():
    labels = [1, 1, 1, 0, 0]
    probs = [0.1, 0.45, 0.95, 0.2, 0.8]  # p_t: 0.1, 0.45, 0.95 | 0.8, 0.2
    hist = figures.difficulty_histogram(labels, probs, bins=4)
    assert hist == {
        "positive": {"misclassified": [1, 0, 0, 0], "poorly": [0, 1, 0, 0], "well": [0, 0, 0, 1]},
        "negative": {"misclassified": [0, 0, 0, 1], "poorly": [0, 0, 0, 0], "well": [1, 0, 0, 0]},
    }
    counts = figures.difficulty_counts(labels, probs)
    assert {lab: {c: sum(v) for c, v in h.items()} for lab, h in hist.items()} == counts


def _fig2_result(epochs: int) -> dict:
    def entry(mis, poor, well):
        counts = {lab: {"misclassified": mis, "poorly": poor, "well": well}
                  for lab in ("positive", "negative")}  # fmt: skip
        hist = {lab: {c: [n, 0] for c, n in v.items()} for lab, v in counts.items()}
        return {"counts": counts, "histogram": hist, "auc": 0.93}

    return {
        "model": "dnn",
        "epochs": epochs,
        "bins": 2,
        "thresholds": [0.3, 0.6],
        "splits": {
            "train": [entry(10, 20, 300)] * epochs,
            "valid": [entry(5, 10, 100), entry(4, 8, 103)][:epochs],
        },
    }


def test_fig2_reading_and_plot_from_a_hand_made_result(tmp_path):
    text = hyperparams.fig2_reading(_fig2_result(2))
    assert text == (
        "after epoch 1 the train split has 600 well classified samples against 60 poorly or "
        "misclassified (positives 300 against 30; negatives 300 against 30); the paper: "
        '"significantly more easy samples than hard samples": so for both labels. Valid, epoch '
        "1 -> 2: misclassified 10 -> 8, poorly 20 -> 16, well 200 -> 206."
    )
    figures.plot_fig2(_fig2_result(2), tmp_path / "f2.png")
    assert (tmp_path / "f2.png").stat().st_size > 0
    section = hyperparams.fig2_section(_fig2_result(1), "f2.png", "cmd")
    assert "| 1 | train | positive | 10 | 20 | 300 | 90.9% | 93.000 |" in section
    assert hyperparams.fig2_section(None, "f2.png", "cmd").endswith("not run: `cmd --sweeps fig2`.")


@pytest.mark.slow
def test_fig2_trains_the_dnn_and_reads_every_split_in_file_order(tmp_path, monkeypatch):
    from pipelines.data import reader

    (tmp_path / "data").mkdir()
    data = generated_criteo_dataset(tmp_path / "data", 1200, seed=3, min_count=1)
    small = ("model.complex_units=[8]", "train.batch_size=400", "train.eval_batch_size=500")
    study = Study("criteo", str(data), tmp_path / "runs", small)
    calls = []
    make = reader.make_dataset

    def recording(path, split, batch_size, **kw):
        calls.append((split, kw.get("shuffle")))
        return make(path, split, batch_size, **kw)

    monkeypatch.setattr(reader, "make_dataset", recording)
    result = figures.run_fig2(study, 2)
    assert (result["model"], result["epochs"], result["bins"]) == ("dnn", 2, 20)
    # the evaluated splits are read unshuffled, so labels and predictions stay aligned
    assert ("train", False) in calls and ("valid", False) in calls
    rows = {s: sum(1 for _ in make(data, s, 10_000).unbatch()) for s in ("train", "valid")}
    for split, epochs in result["splits"].items():
        assert len(epochs) == 2
        for e in epochs:
            total = sum(sum(v) for h in e["histogram"].values() for v in h.values())
            assert total == sum(sum(c.values()) for c in e["counts"].values()) == rows[split]


# -- the dry run and the committed archive -------------------------------------------------------
def test_dry_run_lists_every_point_and_states_the_cost(tmp_path, caplog):
    (tmp_path / "d").mkdir()
    argv = ["--dataset", "frappe", "--data", str(tmp_path / "d"), "--dry-run"]
    rc, lines = _main(caplog, [*argv, "--runs", str(tmp_path / "r"), "--no-archive"])
    assert rc == 0
    assert lines[0] == (
        "cost: 57 training run(s) (tf4ctr 57) and 3 epoch(s) of in-process experiments; no "
        "finished run in the cache or its archive recorded its epoch time, so no estimate"
    )
    planned = lines[1:]
    assert len(planned) == 3 * sum(GRID_SIZES.values()) + 1
    assert planned[0].startswith("[fig 6] alpha 0.15 seed 2023: tf4ctr-") and planned[0].endswith(
        " to run"
    )
    assert re.match(r"\[fig 9\] simple C \[200, 200\] seed 2025: tf4ctr-\w+ to run$", planned[-4])
    shared = [line for line in planned if line.endswith("(shared)")]
    assert len(shared) == 3 * 3  # the reference point, in the c, gamma and simple sweeps
    assert planned[-1].startswith("[fig2] fig2-") and planned[-1].endswith(".json: to run")
    assert not any((tmp_path / "r").iterdir())  # nothing trained


def test_committed_archive_holds_the_reference_point_of_every_sweep(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(runs, "data_identity", lambda path: _archived_data_id())
    (tmp_path / "frappe").mkdir()
    argv = ["--dataset", "frappe", "--data", str(tmp_path / "frappe"), "--dry-run"]
    argv += ["--runs", str(tmp_path / "runs"), "--archive", str(ARCHIVED)]
    rc, lines = _main(caplog, argv)
    assert rc == 0 and lines[0].startswith("restored ")
    planned = [line for line in lines if line.startswith("[fig ")]
    to_run = [line for line in planned if line.endswith(" to run")]  # shared ones not again
    assert lines[1].startswith(f"cost: {len(to_run)} training run(s)")
    # the reference point of each sweep, 3 seeds: Table IV's TF4CTR runs, archived
    reference = [
        line
        for line in planned
        if re.search(r"(alpha 0\.25|c 0\.7|gamma 1|simple D \[400, 400\]) seed", line)
    ]
    assert len(reference) == 4 * 3 and all(" cached" in line for line in reference)
    names = {re.search(r"(tf4ctr-\w+) cached", line).group(1) for line in reference}
    study = Study("frappe", str(tmp_path / "frappe"), tmp_path / "runs")
    t4 = tables.table4_specs()["tf4ctr"]
    assert names == {study.run_dir(t4, seed).name for seed in (2023, 2024, 2025)}
    assert all((ARCHIVED / name).is_dir() for name in names)


def test_committed_report_is_regenerated_from_the_archive(tmp_path):
    study = Study("frappe", str(tmp_path / "frappe"), tmp_path / "runs")
    study._data_id = _archived_data_id()
    runs.restore_runs(ARCHIVED, study.runs)
    committed = RESULTS / "frappe-hyperparams.md"
    path = tmp_path / committed.name
    args = hyperparams.build_parser().parse_args(["--dataset", "frappe"])
    hyperparams.write_report(study, path, args)
    assert path.read_text() == committed.read_text()
    for png in sorted(RESULTS.glob("frappe-hyperparams-*.png")):
        assert (tmp_path / png.name).read_bytes() == png.read_bytes(), png.name
    assert {p.name for p in tmp_path.glob("*.png")} == {
        p.name for p in RESULTS.glob("frappe-hyperparams-*.png")
    }


def test_ml1m_without_data_plans_and_reports_but_does_not_train(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(reproduce, "default_data", lambda dataset: None)
    out = tmp_path / "ml-1m-hyperparams.md"
    argv = ["--dataset", "ml-1m", "--runs", str(tmp_path / "r"), "--results", str(out)]
    rc, lines = _main(caplog, [*argv, "--dry-run"])
    assert rc == 0 and lines[0].startswith("no ml-1m data at ")
    assert lines[1].startswith("cost: 57 training run(s) (tf4ctr 57)")
    assert any(line.startswith("[fig 9] simple A [400] seed 2023: tf4ctr-") for line in lines)
    with pytest.raises(SystemExit, match="No data for ml-1m: pass --data"):
        hyperparams.main(argv)
    assert hyperparams.main([*argv, "--report-only", "--sweeps", "alpha"]) == 0
    text = out.read_text()
    assert text.startswith("# ML-1M: the hyperparameter study")
    assert "**The ML-1M data was not available to this study** (no `--data` given, and " in text
    assert "| A [400] (reference) | not run |" in text
    assert "Fig. 9 on ML-1M: not run." in text
    # with data given, the ML-1M layout plans the same sweeps
    (tmp_path / "ml").mkdir()
    rc, lines = _main(caplog, ["--dataset", "ml-1m", "--data", str(tmp_path / "ml"), "--dry-run",
                               "--runs", str(tmp_path / "r2"), "--sweeps", "simple"])  # fmt: skip
    assert rc == 0 and len(lines) == 1 + 5 * 3


def test_cell_means_in_the_reading_are_the_table_means():
    aucs = {"0.25": [0.9877, 0.9880, 0.9874]}
    text = hyperparams.reading("alpha", _rows("alpha", aucs), "frappe")
    mean = statistics.fmean(aucs["0.25"]) * 100
    std = statistics.stdev(aucs["0.25"]) * 100
    assert f"alpha = 0.25 ({mean:.3f} ± {std:.3f})" in text
