"""``python -m experiments.reproduce``: cache keys, cache hits, report cells, the t-test,
difficulty classes and the Figure 5 logit gradients, on hand-made metrics and tiny generated
data; the paper's data files; the parity and tuning sections; and the committed archive, which
must still restore every run and regenerate the committed report."""

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml
from scipy import stats

from benchmarks import timing as bench_timing
from experiments import figures, reproduce, runs, tables
from experiments import report as reporting
from experiments.runs import DATA_ID_FILE, Study
from pipelines.training.rundir import RECORD_FILES, RunDir
from tests.conftest import generated_criteo_dataset


@pytest.fixture
def study(tmp_path):
    # Config resolution does not read the data: any path names the study's data.
    return Study("frappe", str(tmp_path / "frappe-data"), tmp_path / "runs")


def _fake_run(study, s, seed, auc, gauc=None, logloss=0.15, epochs=10, **more):
    """A finished run in the cache: the CLI's config.yaml and a hand-made metrics.json (with
    ``more`` keys, e.g. ``train_seconds_per_epoch``)."""
    run_dir = study.run_dir(s, seed)
    run_dir.mkdir(parents=True)
    run = RunDir(run_dir)
    run.write_config(study.config(s, seed))
    test = {"auc": auc, "logloss": logloss, "gauc": auc - 0.005 if gauc is None else gauc}
    metrics = {
        "test": test,
        "valid": test,
        "epochs": epochs,
        "best_epoch": epochs - 2,
        "seed": seed,
        "trainable_params": 1000,
        "loss": s.loss,
        "model": s.model,
        **more,
    }
    run.write_metrics(metrics)
    run.write_history([])
    (run_dir / DATA_ID_FILE).write_text(study.data_id + "\n")  # as Study.train writes it
    return run_dir


# -- cache keys ---------------------------------------------------------------------------------
def test_shared_configs_are_one_run_and_distinct_configs_distinct_runs(study):
    t2, t3, t4, t5 = (
        tables.table2_specs("frappe"),
        tables.table3_specs(),
        tables.table4_specs(),
        tables.table5_specs(),
    )
    same = [
        (t2[("dualmlp", "bce")], t4["dualmlp"]),
        (t2[("deepfm", "bce")], t4["deepfm"]),
        (t2[("dcnv2", "bce")], t4["dcnv2"]),
        (t3[("ser", "wsf")], t4["tf4ctr"]),
        (t5[("xdeepfm", False)], t4["xdeepfm"]),
    ]
    for a, b in same:
        assert study.run_dir(a, 2023) == study.run_dir(b, 2023)
    every = [*t2.values(), *t3.values(), *t4.values(), *t5.values()]
    dirs = {study.run_dir(s, 2023) for s in every}
    assert len(dirs) == 12 + 20 + 13 + 6 - 3 - 1 - 3  # II: 3 bce runs, III: SER+WSF, V: 3 bases
    # DualMLP + TF loss is TF4CTR Share + WSF: with the config's simple tower Table III's cell,
    # with the Frappe log's [400] its own
    assert study.run_dir(tables.table2_specs()[("dualmlp", "tf")], 2023) == study.run_dir(
        t3[("shared", "wsf")], 2023
    )
    assert study.run_dir(t4["tf4ctr"], 2024) != study.run_dir(t4["tf4ctr"], 2023)
    assert study.cell(t4["tf4ctr"]) == study.cell(t3[("ser", "wsf")])
    config = study.config(t4["tf4ctr"], 2023)
    assert study.run_dir(t4["tf4ctr"], 2023).name.startswith("tf4ctr-")
    assert config.loss_name == "tf" and config.model.fusion == "wsf"
    assert study.config(t2[("dcnv2", "focal")], 2023).loss_name == "focal"


def test_cell_key_ignores_only_the_seed(study):
    s = tables.table4_specs()["dnn"]
    a, b = study.config(s, 2023).to_dict(), study.config(s, 2025).to_dict()
    assert runs.cell_key(a) == runs.cell_key(b)
    b["model"]["dropout"] = 0.3
    assert runs.cell_key(a) != runs.cell_key(b)


def test_cache_keys_follow_the_data_content_not_its_path_or_times(tmp_path):
    a = tmp_path / "a" / "frappe"
    (a / "raw").mkdir(parents=True)
    (a / "train.libfm").write_text("1 0:1 1:1\n")
    (a / "raw" / "meta.csv").write_text("item,name\n")
    b = tmp_path / "b" / "frappe"
    shutil.copytree(a, b)
    os.utime(b / "train.libfm", (1, 1))  # other file times: the same data
    (b / ".DS_Store").write_text("x")  # hidden files are not data
    c = tmp_path / "c" / "frappe"
    shutil.copytree(a, c)
    (c / "train.libfm").write_text("0 0:1 1:1\n")  # same size, other content
    studies = [Study("frappe", str(d), tmp_path / "runs") for d in (a, b, c)]
    assert studies[0].data_id == studies[1].data_id != studies[2].data_id
    s = tables.table4_specs()["tf4ctr"]
    names = [st.run_dir(s, 2023).name for st in studies]
    assert names[0] == names[1] != names[2]
    assert studies[0].cell(s) == studies[1].cell(s) != studies[2].cell(s)
    assert studies[0].config(s, 2023).data.path != studies[1].config(s, 2023).data.path


def test_data_identity_of_a_prepared_directory_is_its_shards(tmp_path):
    from pipelines.data.manifest import MANIFEST_NAME

    shard = {"file": "train-00000.tfrecord.gz", "rows": 10, "sha256": "ab" * 32}
    manifest = {
        "dataset": "frappe",
        "created": "2026-01-01",
        "splits": {"train": {"shards": [shard]}},
    }
    for name, created in (("p1", "2026-01-01"), ("p2", "2026-02-02")):
        (tmp_path / name).mkdir()
        manifest["created"] = created  # re-prepared: same shards, same data
        (tmp_path / name / MANIFEST_NAME).write_text(json.dumps(manifest))
    shard["sha256"] = "cd" * 32
    (tmp_path / "p3").mkdir()
    (tmp_path / "p3" / MANIFEST_NAME).write_text(json.dumps(manifest))
    ids = [runs.data_identity(str(tmp_path / n)) for n in ("p1", "p2", "p3")]
    assert ids[0] == ids[1] != ids[2] and ids[0].startswith("prepared:")
    assert runs.data_identity(str(tmp_path / "none")) == f"path:{tmp_path / 'none'}"


# -- cache hits ---------------------------------------------------------------------------------
def test_second_invocation_trains_nothing_and_extra_seeds_go_to_the_best(tmp_path, monkeypatch):
    aucs = {"tf4ctr": 0.987, "dcnv2": 0.9855, "dualmlp": 0.9852}  # others 0.984
    trained = []

    def fake_train(self, s, seed):
        trained.append((s.model, seed))
        return _fake_run(self, s, seed, aucs.get(s.model, 0.984) + 1e-4 * (seed - 2023))

    monkeypatch.setattr(Study, "train", fake_train)
    argv = ["--dataset", "frappe", "--data", str(tmp_path / "d"), "--runs", str(tmp_path / "r")]
    argv += ["--results", str(tmp_path / "frappe.md"), "--tables", "4"]
    assert reproduce.main(argv) == 0
    assert len(trained) == 13  # TF4CTR and the 12 baselines
    trained.clear()
    assert reproduce.main(argv) == 0
    assert trained == []
    assert reproduce.main([*argv, "--table4-seeds", "3"]) == 0
    # DualMLP is within --table4-margin (0.0005 AUC) of the best baseline: it gets them too.
    assert sorted(trained) == [
        (m, seed) for m in ("dcnv2", "dualmlp", "tf4ctr") for seed in (2024, 2025)
    ]
    report = (tmp_path / "frappe.md").read_text()
    assert "98.710 ± 0.010 (n=3)" in report  # TF4CTR, three seeds
    assert "Best baseline by mean test AUC: DCNv2" in report


def test_archive_restores_finished_runs_into_a_fresh_cache(tmp_path, monkeypatch):
    trained = []

    def fake_train(self, s, seed):
        trained.append((s.model, seed))
        return _fake_run(self, s, seed, 0.984)

    monkeypatch.setattr(Study, "train", fake_train)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "frappe.train.libfm").write_text("1 0:1\n")
    argv = ["--dataset", "frappe", "--data", str(tmp_path / "d"), "--tables", "4"]
    argv += ["--results", str(tmp_path / "frappe.md"), "--archive", str(tmp_path / "archive")]
    assert reproduce.main([*argv, "--runs", str(tmp_path / "r1")]) == 0
    assert len(trained) == 13 and len(list((tmp_path / "archive").iterdir())) == 13
    trained.clear()
    # A fresh checkout: empty cache, the archive restores every finished run.
    assert reproduce.main([*argv, "--runs", str(tmp_path / "r2")]) == 0
    assert trained == []
    # Another checkout whose copy of the data lies elsewhere: still nothing to train, and the
    # report shows the archived runs.
    shutil.copytree(tmp_path / "d", tmp_path / "elsewhere" / "d")
    moved = ["--dataset", "frappe", "--data", str(tmp_path / "elsewhere" / "d"), "--tables", "4"]
    moved += ["--results", str(tmp_path / "moved.md"), "--archive", str(tmp_path / "archive")]
    assert reproduce.main([*moved, "--runs", str(tmp_path / "r3")]) == 0
    assert trained == []
    assert "| TF4CTR | 98.400 (n=1)" in (tmp_path / "moved.md").read_text()
    assert reproduce.build_parser().parse_args(["--dataset", "x", "--runs", "r"]).archive is None


@pytest.mark.slow
def test_cached_cli_run_is_not_retrained(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    data = generated_criteo_dataset(tmp_path / "data", 1500, seed=2, min_count=1)
    small = (
        "model.simple_units=[8]",
        "model.complex_units=[8]",
        "train.max_epochs=1",
        "train.batch_size=512",
    )
    study = Study("criteo", str(data), tmp_path / "runs", small)
    s = tables.table4_specs()["dualmlp"]
    run_dir = study.train(s, 2023)
    assert study.cached(s, 2023)
    mtimes = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    assert (run_dir / DATA_ID_FILE).read_text().strip() == study.data_id
    assert study.data_id.startswith("prepared:")
    monkeypatch.setattr(subprocess, "run", None)  # a second training would fail
    assert study.train(s, 2023) == run_dir
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()} == mtimes
    assert [m["seed"] for m in study.index()[study.cell(s)]] == [2023]


# -- report -------------------------------------------------------------------------------------
def test_cells_show_mean_sample_std_and_n():
    assert reporting.fmt_cell([]) == "not run"
    assert reporting.fmt_cell([0.98]) == "98.000 (n=1)"
    assert reporting.fmt_cell([0.98, 0.982]) == "98.100 ± 0.141 (n=2)"  # sample std
    assert reporting.fmt_delta([0.9835], [0.98, 0.982]) == "+0.250"
    assert reporting.fmt_delta([0.9835], []) == "-"


def test_report_from_hand_made_runs(study, tmp_path):
    t2, t3, t5 = tables.table2_specs("frappe"), tables.table3_specs(), tables.table5_specs()
    _fake_run(study, t2[("dualmlp", "bce")], 2023, 0.980)
    _fake_run(study, t2[("dualmlp", "bce")], 2024, 0.982)
    _fake_run(study, t2[("dualmlp", "tf")], 2023, 0.9835)
    _fake_run(study, t3[("ser", "wsf")], 2023, 0.9870, gauc=0.9810)
    _fake_run(study, t3[("gate", "sum")], 2023, 0.9875, gauc=0.9820)
    _fake_run(study, t3[("shared", "sum")], 2023, 0.9860)
    _fake_run(study, t5[("deepfm", True)], 2023, 0.9850)
    _fake_run(study, tables.table4_specs()["deepfm"], 2023, 0.9840)
    args = reproduce.build_parser().parse_args(["--dataset", "frappe"])
    path = tmp_path / "frappe.md"
    path.write_text("# Frappe results\n\n<!-- parity:begin -->\nkept\n<!-- parity:end -->\n")
    reporting.write_report(study, path, args)
    text = path.read_text()
    assert "<!-- parity:begin -->\nkept\n<!-- parity:end -->" in text
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in text.splitlines()}
    base = rows[("DualMLP", "Log loss (base)")]
    assert "98.100 ± 0.141 (n=2)" in base and "| 98.37 |" in base
    tf_row = rows[("DualMLP", "TF loss")]
    assert "98.350 (n=1) | +0.250 |" in tf_row and "| 98.55 | +0.18 |" in tf_row
    assert "| DualMLP | Focal | not run | - |" in text
    t3_rows = [line for line in text.splitlines() if line.startswith("| GM |")]
    assert "**98.750** | **98.200**" in t3_rows[0]  # best cell bold
    assert "**" not in [line for line in text.splitlines() if line.startswith("| SER |")][0]
    assert "gain over Share + Sum: +0.150" in text
    assert "| DeepFM | 98.400 (n=1) | 98.500 (n=1) | +0.100 | 98.37 | 98.54 | +0.17 |" in text
    assert "Two-tailed Welch t-test: not possible with n < 2" in text
    assert "not run: `python -m experiments.reproduce --dataset frappe --tables 6`" in text
    missing = re.search(r"(\d+) cell\(s\) are not run yet", text)
    assert missing and int(missing.group(1)) > 10
    # the noise is computed: Table IV's DualMLP (its cell is Table II's DualMLP + log loss) has
    # seeds 0.980, 0.982, sd 0.1414 points; sqrt(2) x 0.1414 = 0.2
    assert "TF loss +0.250 (paper +0.18). Differences below 0.2 points are within single-" in text
    assert "(no per-model tuning), with 1-2 seeds per cell." in text  # no test with n = 1
    _fake_run(study, t2[("dualmlp", "tf")], 2024, 0.9837)  # a second seed: a t-test
    reporting.write_report(study, path, args)
    text = path.read_text()
    p = stats.ttest_ind([0.9835, 0.9837], [0.980, 0.982], equal_var=False).pvalue
    assert "TF loss +0.260 (paper +0.18). Means over 2 seeds per cell." in text
    assert (
        "with 2 seeds per cell; two-tailed Welch t-test of the TF loss against log loss: "
        f"DualMLP p = {p:.2g}." in text
    )


def test_report_on_a_dataset_without_user_key_or_paper_table3(tmp_path, monkeypatch):
    """Criteo: no gAUC ("-", not "not run") and no paper Table III (said, not Frappe's)."""
    study = Study("criteo", str(tmp_path / "criteo-data"), tmp_path / "runs")
    t3, t4 = tables.table3_specs(), tables.table4_specs()
    for s, auc in ((t4["tf4ctr"], 0.8105), (t4["dnn"], 0.8090), (t3[("shared", "sum")], 0.8100)):
        run = RunDir(_fake_run(study, s, 2023, auc))
        metrics = run.read_metrics()
        del metrics["test"]["gauc"]
        run.write_metrics(metrics)
    path = tmp_path / "criteo.md"
    args = reproduce.build_parser().parse_args(["--dataset", "criteo"])
    reporting.write_report(study, path, args)
    text = path.read_text()
    assert "| TF4CTR | 81.050 (n=1) | - | 0.15000 (n=1) |" in text
    assert "| DCN | not run | not run |" in text
    assert "| 81.50 |" in text  # the paper's Criteo column of Table IV
    assert "SER + WSF; its gain over Share + Sum: +0.050 AUC points." in text
    assert "The paper has no Table III on Criteo." in text
    assert "Frappe grid" not in text


def test_table6_ratios_to_dnn_wall_and_cpu(study):
    def t(train, cpu, infer, infer_cpu):
        return {
            "train_s": train,
            "train_cpu_s": cpu,
            "infer_s": infer,
            "infer_cpu_s": infer_cpu,
            "train_all": [train],
        }

    timing = {
        "epochs": 1,
        "batch_size": 10000,
        "cores": 2,
        "models": {"dnn": t(2.0, 4.0, 0.5, 1.0), "tf4ctr": t(3.0, 6.2, 0.6, 1.5)},
    }
    text = reporting.Report(study, {}).table6(timing)
    assert "| TF4CTR | 3.00 | 1.50x | 6.20 | 1.55x | 0.60 | 1.20x | 1.50 | 1.50x | - | - |" in text
    assert "| DNN | 2.00 | 1.00x | 4.00 | 1.00x |" in text
    assert "whole `fit()` call" not in text  # a timing from before the callback clocks
    for name in ("dnn", "tf4ctr"):
        timing["models"][name]["train_call_all"] = [10.23]
    text = reporting.Report(study, {}).table6(timing)
    assert "from the first batch to the last (a Keras callback)" in text
    assert "The whole `fit()` call of those epochs: DNN 10.23; TF4CTR 10.23. " in text
    del timing["models"]["tf4ctr"]["train_cpu_s"]  # a timing from before CPU time was kept
    assert "| TF4CTR | 3.00 | 1.50x | - | - | 0.60 | 1.20x |" in reporting.Report(study, {}).table6(
        timing
    )


def test_table6_timer_reads_the_clocks_at_the_first_and_last_batch(monkeypatch):
    import keras

    ticks = iter([(10.0, 1.0), (13.5, 2.5), (20.0, 4.0), (20.25, 4.75)])
    monkeypatch.setattr(bench_timing, "clocks", lambda: next(ticks))
    timer = bench_timing.batch_timer()
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((8, 1), "float32")
    model.fit(x, x, batch_size=4, epochs=1, verbose=0, callbacks=[timer])
    assert timer.seconds == (3.5, 1.5)  # one epoch: read once at its start, once at its end
    model.predict(x, batch_size=4, verbose=0, callbacks=[timer])
    assert timer.seconds == (0.25, 0.75)
    with pytest.raises(StopIteration):  # nothing else read the clocks
        next(ticks)


def test_welch_t_test_equals_scipy():
    a, b = [0.9877, 0.9875, 0.9880], [0.9859, 0.9862, 0.9855]
    ours = reporting.welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert math.isclose(ours["t"], ref.statistic) and math.isclose(ours["p"], ref.pvalue)
    assert ours["n"] == (3, 3)
    assert reporting.welch([0.98], b) is None


def test_t_test_text_in_table4(study):
    t4 = tables.table4_specs()
    for seed, (ours, theirs) in zip(
        (2023, 2024, 2025), ((0.9877, 0.9859), (0.9875, 0.9862), (0.9880, 0.9855)), strict=True
    ):
        _fake_run(study, t4["tf4ctr"], seed, ours)
        _fake_run(study, t4["dualmlp"], seed, theirs)
    _fake_run(study, t4["dnn"], 2023, 0.9850)
    report = reporting.Report(study, study.index())
    text = report.ttest_text(report.table4_data())
    p = stats.ttest_ind([0.9877, 0.9875, 0.9880], [0.9859, 0.9862, 0.9855], equal_var=False)
    assert f"p = {p.pvalue:.3g} (n = 3 vs 3)" in text
    assert "Best baseline by mean test AUC: DualMLP" in text
    # A single-seed baseline on top: no test against it, and the test against the best
    # baseline with several seeds beside.
    _fake_run(study, t4["widedeep"], 2023, 0.9866)
    report = reporting.Report(study, study.index())
    text = report.ttest_text(report.table4_data())
    assert "Best baseline by mean test AUC: WideDeep" in text
    assert "not possible with n < 2" in text
    assert "Best baseline with n ≥ 2: DualMLP" in text and f"p = {p.pvalue:.3g}" in text


# -- Figure 10 ----------------------------------------------------------------------------------
def test_difficulty_classes_by_probability_of_the_true_label():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    probs = np.array([0.1, 0.3, 0.59, 0.95, 0.9, 0.69, 0.4, 0.2, 0.05])
    # positives p_t = p: 0.1 mis, 0.3 poorly, 0.59 poorly, 0.95 well
    # negatives p_t = 1 - p: 0.1 mis, 0.31 poorly, 0.6 well, 0.8 well, 0.95 well
    assert figures.difficulty_counts(labels, probs) == {
        "positive": {"misclassified": 1, "poorly": 2, "well": 1},
        "negative": {"misclassified": 1, "poorly": 1, "well": 3},
    }


# -- Figure 5 -----------------------------------------------------------------------------------
def _tiny_sum_model():
    from tf4ctr_keras import build_model

    model = build_model(
        "tf4ctr",
        {"a": 7, "b": 5, "c": 3},
        fusion="sum",
        simple_units=[4],
        complex_units=[6],
        embedding_dim=4,
        seed=3,
    )
    rng = np.random.default_rng(0)
    x = {k: tf.constant(rng.integers(0, v, size=8)) for k, v in (("a", 7), ("b", 5), ("c", 3))}
    y = tf.constant([1, 0, 0, 1, 0, 0, 1, 0], dtype=tf.float32)
    return model, x, y


def _tf_loss_np(y, z, alpha, c, gamma):
    """The TF loss written independently in float64 numpy (two-sided p_t, mean over batch)."""
    p = 1.0 / (1.0 + np.exp(-z))
    y2 = y[:, None]
    p_t = y2 * p + (1 - y2) * (1 - p)
    bce = -(y2 * np.log(p) + (1 - y2) * np.log(1 - p))
    simple = (c + p_t[:, 0]) ** gamma * bce[:, 0]
    complex_ = ((2 - c) - p_t[:, 1]) ** gamma * bce[:, 1]
    return np.mean(alpha * simple + (1 - alpha) * complex_)


def _bce_sum_np(y, z):
    p = 1.0 / (1.0 + np.exp(-z.sum(axis=1)))
    return np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_logit_gradients_of_log_loss_equal_the_analytic_ones():
    import keras

    model, x, y = _tiny_sum_model()
    out = model(x, training=False)
    twin = out["twin_logits"].numpy()
    # With sum fusion the model's ctr is sigmoid(z_s + z_c) of its twin logits.
    np.testing.assert_allclose(
        out["ctr"].numpy().ravel(), tf.sigmoid(twin.sum(1)).numpy(), rtol=1e-6
    )
    before = [w.numpy().copy() for w in model.trainable_weights]
    grads = figures.logit_gradient_step(
        model, keras.optimizers.Adam(1e-3), x, y, None, apply=False
    ).numpy()
    z = model(x, training=True)["twin_logits"].numpy()  # no dropout, BN: training stats
    expected = (1.0 / (1.0 + np.exp(-z.sum(1))) - y.numpy()) / len(z)
    np.testing.assert_allclose(grads[:, 0], expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(grads[:, 1], expected, rtol=1e-4, atol=1e-7)
    assert all(
        np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights, strict=True)
    )


def test_logit_gradients_with_tf_loss_equal_finite_differences():
    import keras

    from tf4ctr_keras.losses import TwinFocusLoss

    model, x, y = _tiny_sum_model()
    alpha, c, gamma = 0.25, 0.7, 1.0
    optimizer = keras.optimizers.Adam(1e-3)
    z = model(x, training=True)["twin_logits"].numpy().astype(np.float64)
    before = [w.numpy().copy() for w in model.trainable_weights]
    grads = figures.logit_gradient_step(
        model, optimizer, x, y, TwinFocusLoss(alpha, c, gamma)
    ).numpy()
    yn = y.numpy().astype(np.float64)

    def total(zz):
        return _bce_sum_np(yn, zz) + _tf_loss_np(yn, zz, alpha, c, gamma)

    numeric = np.zeros_like(z)
    eps = 1e-6
    for i in range(z.shape[0]):
        for j in range(2):
            up, down = z.copy(), z.copy()
            up[i, j] += eps
            down[i, j] -= eps
            numeric[i, j] = (total(up) - total(down)) / (2 * eps)
    np.testing.assert_allclose(grads, numeric, rtol=1e-3, atol=1e-6)
    assert not np.allclose(grads[:, 0], grads[:, 1])  # the TF loss splits the towers' signals
    assert any(
        not np.array_equal(a, w.numpy())
        for a, w in zip(before, model.trainable_weights, strict=True)
    )


def test_figures_are_drawn_from_cached_json(tmp_path):
    counts = {
        "epochs": 2,
        "thresholds": [0.3, 0.6],
        "models": {
            m: {
                split: [
                    {
                        lab: {"misclassified": 1, "poorly": 2, "well": 3}
                        for lab in ("positive", "negative")
                    }
                ]
                * 2
                for split in ("valid", "test")
            }
            for m in ("dualmlp", "tf4ctr")
        },
    }
    figures.plot_fig10(counts, tmp_path / "f10.png")
    norms = {
        "batch_size": 10,
        "runs": {k: {"z_s": [0.1, 0.2], "z_c": [0.3, 0.1]} for k in ("ctr", "ctr_tf")},
    }
    figures.plot_fig5(norms, tmp_path / "f5.png")
    for name in ("f10.png", "f5.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_archive_round_trip_keeps_finished_runs_only(tmp_path):
    from experiments.runs import archive_runs, restore_runs

    runs, archive = tmp_path / "runs", tmp_path / "archive"
    done, unfinished = runs / "tf4ctr-aaa", runs / "dnn-bbb"
    done.mkdir(parents=True)
    unfinished.mkdir()
    for name in RECORD_FILES:
        (done / name).write_text(f"{name} of tf4ctr")
    (done / "model.keras").write_text("big")
    RunDir(unfinished).config_path.write_text("only a config")
    (runs / "fig5-123.json").write_text("{}")
    assert archive_runs(runs, archive) == ["fig5-123.json", "tf4ctr-aaa"]
    assert archive_runs(runs, archive) == []  # nothing new
    assert sorted(p.name for p in (archive / "tf4ctr-aaa").iterdir()) == sorted(RECORD_FILES)
    assert not (archive / "dnn-bbb").exists()

    fresh = tmp_path / "fresh"
    assert restore_runs(archive, fresh) == ["fig5-123.json", "tf4ctr-aaa"]
    for name in RECORD_FILES:
        assert (fresh / "tf4ctr-aaa" / name).read_text() == f"{name} of tf4ctr"
    RunDir(fresh / "tf4ctr-aaa").metrics_path.write_text("newer")
    assert restore_runs(archive, fresh) == []  # an existing run is never overwritten
    assert RunDir(fresh / "tf4ctr-aaa").metrics_path.read_text() == "newer"


def test_restore_ignores_an_interrupted_restore(tmp_path):
    from experiments.runs import archive_runs, restore_runs

    runs, archive = tmp_path / "runs", tmp_path / "archive"
    for name in RECORD_FILES:
        (runs / "tf4ctr-aaa").mkdir(parents=True, exist_ok=True)
        (runs / "tf4ctr-aaa" / name).write_text(name)
    archive_runs(runs, archive)
    fresh = tmp_path / "fresh"
    (fresh / ".tmp-1-tf4ctr-aaa").mkdir(parents=True)  # a restore killed half-way
    for name in RECORD_FILES:
        (fresh / ".tmp-1-tf4ctr-aaa" / name).write_text(name)
    assert restore_runs(archive, fresh) == ["tf4ctr-aaa"]
    assert archive_runs(fresh, tmp_path / "archive2") == ["tf4ctr-aaa"]  # not the temp dir
    shutil.rmtree(fresh / "tf4ctr-aaa")
    assert Study("frappe", str(tmp_path / "d"), fresh).index() == {}  # nor read as a run


# -- the paper's data files -----------------------------------------------------------------------
def test_paper_data_files_load_and_hold_every_table():
    for name in tables.PAPER_FILES:
        assert (tables.PAPER_DIR / f"{name}.yaml").is_file(), name
        assert tables.load_paper(name), name
    t2, t3, t4, t5, t6 = tables.TABLE2, tables.TABLE3, tables.TABLE4, tables.TABLE5, tables.TABLE6
    for model in t2["models"]:
        assert list(t2["auc"][model]) == t2["losses"]
        datasets = {frozenset(v) for v in t2["auc"][model].values()}
        assert len(datasets) == 1  # every loss on the same datasets
    for ds, rows in t3["auc_gauc"].items():
        assert list(rows) == t3["selectors"], ds
        assert all(
            len(r) == len(t3["fusions"]) and all(len(p) == 2 for p in r) for r in rows.values()
        )
    assert len(tables.PAPER_T3) == len(t3["selectors"]) * len(t3["fusions"]) == 20
    for ds, row in t4["auc"].items():
        assert len(row) == len(t4["models"]) and ds in t4["p_value"]
        assert isinstance(t4["p_value"][ds], str)  # as printed: "7.26e-5"
    assert t4["proposed"] == t4["models"][-1]
    for model in t5["models"]:
        assert set(t5["auc"][model]) == {"with", "without"}
    assert t6["reference"] in t6["rows"] and set(t6["rows"]) <= set(t6["timed"])
    names = tables.NAMES
    every = [*t2["models"], *t2["losses"], *t3["selectors"], *t3["fusions"], *t4["models"]]
    every += [*t5["models"], *t6["timed"], *tables.T5_ENCODERS.values()]
    assert all(n in names for n in every), [n for n in every if n not in names]
    assert all(ds in tables.PAPER_COLUMN for ds in [*t3["auc_gauc"], *t4["auc"]])
    # spot checks against the paper
    assert tables.PAPER_T2[("dualmlp", "tf")]["frappe"] == 98.55
    assert tables.PAPER_T3[("ser", "wsf")]["frappe"] == (98.72, 98.17)
    assert tables.PAPER_T4["frappe"]["tf4ctr"] == 98.72
    assert tables.PAPER_T4["frappe"]["dualmlp"] == 98.37  # from Table II's log-loss row
    assert "dualmlp" not in tables.PAPER_T4["ml-1m"]  # Table II has no ML-1M column
    assert tables.PAPER_T5[("deepfm", True)]["frappe"] == 98.54
    assert tables.PAPER_T6["dualmlp"] == (25, "1.08x", 3, "1x")
    assert tables.AUTHORS["code"]["frappe"]["tf4ctr"]["auc"] == 0.987511


def test_table_variants_come_from_the_registries_in_the_paper_order():
    models, selectors, fusions, encoders, losses = tables._registries()
    assert tables.T2_MODELS == ("dualmlp", "deepfm", "dcnv2")
    assert tables.T2_LOSSES == ("bce", "focal", "rce", "tf")
    assert tables.T3_SELECTORS == ("ser", "gate", "mmoe", "shared")
    assert tables.T3_FUSIONS == ("wsf", "vf", "cf", "moef", "sum")
    assert tables.T4_BASELINES == (
        "widedeep", "deepfm", "dcn", "xdeepfm", "autoint", "afn", "dcnv2", "edcn", "cl4ctr",
        "eulernet", "dnn", "dualmlp",
    )  # fmt: skip
    assert tables.NOT_IMPLEMENTED == ()  # every model of the paper's Table IV is registered
    assert tables.T5_ENCODERS == {"deepfm": "fm", "widedeep": "linear", "xdeepfm": "cin"}
    for name in (*tables.T2_MODELS, *tables.T4_BASELINES, tables.PROPOSED):
        assert name in models
    assert all(s in selectors for s in tables.T3_SELECTORS)
    assert all(f in fusions for f in tables.T3_FUSIONS)
    assert all(e in encoders for e in tables.T5_ENCODERS.values())
    assert all(loss in tables._names(losses) for loss in tables.T2_LOSSES)
    assert tables.registered(["ser", "nonexistent", "gate"], selectors) == ("ser", "gate")
    assert list(tables.TIMING_MODELS) == tables.TABLE6["timed"]
    assert dict(tables.TIMING_MODELS["tf4ctr_moef"].overrides)["model.fusion"] == "moef"
    assert dict(tables.FIG5_SPEC.overrides)["model.fusion"] == "sum"


def _resolved(s, seed=2023, dataset="frappe"):
    from pipelines.training.cli import build_parser, config_from_args

    return config_from_args(build_parser().parse_args(s.argv(dataset, "/nowhere", seed)))


def test_table2_dualmlp_tf_cell_is_the_references_v1_model():
    # TF4CTR.py (v1): one shared table, two MLPs with logit heads, a 2x1 fusion at 0.5 (WSF);
    # the Frappe log's simple tower [400]; 539,732 parameters (tf4ctr_reference.md 1.5, 7).
    from tests.test_models import FRAPPE
    from tf4ctr_keras import build_model

    cell = tables.table2_specs("frappe")[("dualmlp", "tf")]
    config = _resolved(cell)
    assert (config.model.name, config.model.selector, config.model.fusion) == (
        "tf4ctr", "shared", "wsf"
    )  # fmt: skip
    assert config.model.simple_units == (400,) and config.loss_name == "tf"
    assert (config.loss.alpha, config.loss.c, config.loss.gamma) == (0.25, 0.7, 1.0)  # dataset's
    model = build_model(config.model.name, FRAPPE, **config.model_kwargs())
    model.build()
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 539_732
    # no log on a dataset: the config's tower; the other cells: the registered model
    assert dict(tables.table2_specs("ml-1m")[("dualmlp", "tf")].overrides).get(
        "model.simple_units"
    ) is None  # fmt: skip
    assert tables.table2_specs("frappe")[("deepfm", "tf")] == tables.spec("deepfm", loss__name="tf")


def test_table2_extra_rows_are_the_logged_setting_and_the_registered_model():
    extra = tables.table2_extra_specs("frappe")
    assert set(extra) == {("dualmlp", "tf", "logged"), ("dualmlp", "tf", "registered")}
    logged = _resolved(extra[("dualmlp", "tf", "logged")])
    assert (logged.loss.alpha, logged.loss.c, logged.loss.gamma) == (0.2, 0.7, 2.0)
    assert logged.model.simple_units == (400,) and logged.model.selector == "shared"
    assert logged.train.monitor == "auc"  # the v1 runs monitored AUC alone
    registered = _resolved(extra[("dualmlp", "tf", "registered")])
    assert (registered.model.name, registered.loss_name) == ("dualmlp", "tf")
    assert registered.model.simple_units == (400, 400)
    assert ("dualmlp", "tf", "logged") not in tables.table2_extra_specs("ml-1m")  # no log
    kkbox = _resolved(tables.table2_extra_specs("kkbox")[("dualmlp", "tf", "logged")], 2024,
                      "kkbox")  # fmt: skip
    assert (kkbox.model.fusion, kkbox.model.simple_units, kkbox.loss.c) == ("wsf", (400, 400), 1.0)
    # a list override reaches the train CLI as a YAML list
    argv = extra[("dualmlp", "tf", "logged")].argv("frappe", "/d", 2023)
    assert "model.simple_units=[400]" in argv


def test_superseded_results_are_neither_restored_nor_cached(tmp_path, study):
    s = tables.table4_specs()["autoint"]
    stale = _fake_run(study, s, 2023, 0.98)
    assert study.cached(s, 2023)
    digest = hashlib.sha256((stale / "metrics.json").read_bytes()).hexdigest()
    old = dict(runs.SUPERSEDED)
    try:
        runs.SUPERSEDED[stale.name] = (digest, "changed model code")
        assert runs.superseded(stale) == "changed model code"
        assert not study.cached(s, 2023) and not study.index()
        archive = tmp_path / "archive"
        runs.archive_runs(study.runs, archive)  # the archive keeps it ...
        fresh = tmp_path / "fresh"
        assert runs.restore_runs(archive, fresh) == []  # ... but does not restore it
        (stale / "metrics.json").write_text("{}")  # a rerun's metrics: another content
        assert runs.superseded(stale) is None
    finally:
        runs.SUPERSEDED.clear()
        runs.SUPERSEDED.update(old)


def test_the_superseded_archive_entries_match_the_archive():
    for name, (_digest, why) in runs.SUPERSEDED.items():
        path = ARCHIVED / name
        assert path.exists(), name
        assert runs.superseded(path) == why, name


# -- the layout -------------------------------------------------------------------------------------
_EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
# Each module may import only the ones before it (the CLI, parity and tuning sit on top).
_ORDER = ("tables", "runs", "figures", "report", "reproduce", "parity", "tuning", "hyperparams")


def _experiment_imports(name: str) -> set[str]:
    import ast

    found = set()
    for node in ast.walk(ast.parse((_EXPERIMENTS / f"{name}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "experiments":
                found |= {a.name for a in node.names if a.name in _ORDER}
            elif node.module.startswith("experiments."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("experiments.")}
    return found


@pytest.mark.parametrize("name", _ORDER)
def test_experiment_modules_import_one_way(name):
    allowed = set(_ORDER[: _ORDER.index(name)])
    assert _experiment_imports(name) <= allowed, (name, _experiment_imports(name) - allowed)


def test_experiments_code_has_no_prints_path_hacks_or_run_file_names():
    for path in sorted(_EXPERIMENTS.rglob("*.py")):
        text = path.read_text()
        assert "sys.path.insert" not in text, path
        assert not re.search(r"^\s*print\(", text, re.M), path
        for literal in ('"metrics.json"', '"config.yaml"', '"history.json"', "os.replace"):
            assert literal not in text, (path, literal)


# -- parity and tuning sections -----------------------------------------------------------------------
def _parity_metrics(auc, seed, loss="tf"):
    return {
        "test": {"auc": auc, "gauc": auc - 0.005, "logloss": 0.13},
        "epochs": 21,
        "best_epoch": 19,
        "train_seconds_per_epoch": 11.0,
        "trainable_params": 711444,
        "loss": loss,
        "seed": seed,
    }


def test_parity_section_takes_its_reference_points_from_the_data_files():
    from experiments import parity

    results = {
        "tf4ctr": [_parity_metrics(0.9877, s) for s in (2023, 2024)],
        "dualmlp": [_parity_metrics(0.9858, s, "bce") for s in (2023, 2024)],
        "dnn": [_parity_metrics(0.9852, s, "bce") for s in (2023, 2024)],
    }
    config = yaml.safe_load(
        (_EXPERIMENTS / "results/runs/frappe/tf4ctr-0d7e7c9a5d" / "config.yaml").read_text()
    )
    config["model"]["selector"] = "ser"
    text = parity.section(results, [2023, 2024], config)
    committed = (_EXPERIMENTS / "results" / "frappe.md").read_text()
    for line in (
        "| tf4ctr | AUC 0.987511, gAUC 0.982016, logloss 0.127451 | "
        "0.987228 (log 121, official train) | 98.72 |",
        "| dualmlp | - | - | 98.37 |",
        "| dnn | AUC 0.985475, gAUC 0.980655, logloss 0.142458 | - | - |",
        "with the dataset's reference config (SER + WSF, simple [400, 400], complex [400, 400, "
        "400], alpha 0.25, c 0.7, gamma 1, dropout 0.2, embedding L2 0.1, batch 10000, monitor "
        "AUC + gAUC). Mean",
    ):
        assert line in text and line in committed, line
    assert "TF4CTR − DualMLP test AUC: +0.001900 (paper: +0.0035)." in text
    assert "| tf4ctr | tf | 0.987700 ± 0.000000 |" in text


def test_parity_section_compares_the_two_gauc_groupings_seed_by_seed():
    from experiments import parity

    runs = [_parity_metrics(0.9877, s) for s in (2023, 2024)]
    runs[0]["test"]["gauc_by_id"] = runs[0]["test"]["gauc"] - 0.0004
    runs[1]["test"]["gauc_by_id"] = runs[1]["test"]["gauc"] + 0.0002
    text = parity.section({"tf4ctr": runs, "dnn": [_parity_metrics(0.9852, 2023, "bce")]}, [2023])
    # 0.9827 by raw user both seeds; by id 0.9823 and 0.9829: mean 0.9826, sd 0.000424
    assert "| tf4ctr | 0.982700 ± 0.000000 | 0.982600 ± 0.000424 | +0.000400, -0.000200 |" in text
    assert "| dnn |" not in text.split("by encoded id")[1].split("Reference points")[0]


def test_tuning_section_counts_trials_and_dimensions(tmp_path):
    from experiments import tuning

    names = list(tuning.SPACE)
    trial = {"trial_id": "00", "hyperparameters": {"values": {n: 0.25 for n in names}}}
    metrics = {
        "valid": {"auc": 0.98, "gauc": 0.97},
        "test": {"auc": 0.981, "gauc": 0.975},
        "epochs": 9,
        "seed": 2023,
    }
    ref = tmp_path / "tf4ctr-seed2023"
    ref.mkdir()
    config = yaml.safe_load(
        (_EXPERIMENTS / "results/runs/frappe/tf4ctr-0d7e7c9a5d" / "config.yaml").read_text()
    )
    RunDir(ref).write_metrics({"test": {"auc": 0.9877}})
    RunDir(ref).config_path.write_text(yaml.safe_dump(config))
    text = tuning.section([(trial, metrics)], "python -m pipelines.tune", tmp_path / "frappe-b",
                          tuning.reference_runs(tmp_path))  # fmt: skip
    assert "(one seed, 2023); its config: `experiments/results/frappe-b-best.yaml`." in text
    assert "Reference configuration (GM + WSF, alpha 0.25, c 0.7, gamma 1), 1 seed(s)" in text
    assert f"1 Bayesian trials over {len(names)} dimensions are few" in text


# -- the committed archive ------------------------------------------------------------------------------
ARCHIVED = _EXPERIMENTS / "results" / "runs" / "frappe"


def _archived_data_id() -> str:
    ids = {p.read_text().strip() for p in ARCHIVED.glob(f"*/{DATA_ID_FILE}")}
    assert len(ids) == 1
    return ids.pop()


@pytest.mark.parametrize(
    "argv", [["--table4-seeds", "3"], ["--seeds", "3", "--tables", "2"]], ids=["all", "table2"]
)
def test_committed_archive_leaves_nothing_to_train(tmp_path, monkeypatch, caplog, argv):
    # The archive's runs count wherever the data lies: only its content identity matters.
    monkeypatch.setattr(runs, "data_identity", lambda path: _archived_data_id())
    caplog.set_level("INFO", logger="experiments.reproduce")
    args = ["--dataset", "frappe", "--data", str(tmp_path / "frappe"), "--dry-run"]
    args += ["--runs", str(tmp_path / "runs"), "--archive", str(ARCHIVED), *argv]
    assert reproduce.main(args) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "experiments.reproduce"]
    stale = len(runs.SUPERSEDED)
    assert lines[0].startswith(f"restored {len(list(ARCHIVED.iterdir())) - stale} archived")
    costs = [line for line in lines if line.startswith("cost: ")]
    planned = [line for line in lines[1:] if not line.startswith("cost: ")]
    # What issue 17 added or made stale and is not archived yet, one seed each: AFN+ (whose
    # epochs take minutes on 2 cores), Table V's WideDeep in TF4CTR (its simple side changed)
    # and Table VI's timing; Table II's v1 rows and the other new baselines are archived.
    to_run = {re.sub(r":( \S+)? to run$", "", line) for line in planned if "to run" in line}
    if "--table4-seeds" in argv:
        expected = {"[table 4] afn seed 2023", "[table 5] widedeep in TF4CTR seed 2023"}
        expected |= {"[6] table6-53cb22f7d3.json"}
    else:
        expected = set()
    assert to_run == expected
    assert len(planned) == (62 if "--table4-seeds" in argv else 42)
    # the cost is stated once, before the runs: what is to run, at the archive's measured pace
    assert len(costs) == 1 and lines.index(costs[0]) == 1
    if "--table4-seeds" in argv:
        defaults = reproduce.build_parser().parse_args(["--dataset", "frappe"])
        timing = sum(e for _, e in figures.planned_epochs("6", defaults))  # Table VI's epochs
        head = "cost: 2 training run(s) (afn 1, tf4ctr 1)"
        assert costs[0].startswith(
            f"{head} and {timing} epoch(s) of in-process experiments, about "
        )
    else:
        assert costs[0] == "cost: nothing to train (every run is cached)"
        return
    restored = Study("frappe", str(tmp_path / "frappe"), tmp_path / "runs")
    restored._data_id = _archived_data_id()
    seconds, epochs, n = reproduce.measured_pace(restored.index())["tf4ctr"]  # the archive's pace
    assert f"tf4ctr {seconds:.1f} s/epoch x {epochs:.1f} epochs ({n} runs)" in costs[0]


def test_committed_report_is_regenerated_from_the_archive(tmp_path):
    study = Study("frappe", str(tmp_path / "frappe"), tmp_path / "runs")
    study._data_id = _archived_data_id()
    runs.restore_runs(ARCHIVED, study.runs)
    committed = (_EXPERIMENTS / "results" / "frappe.md").read_text()
    path = tmp_path / "frappe.md"
    path.write_text(committed)
    reporting.write_report(
        study, path, reproduce.build_parser().parse_args(["--dataset", "frappe"])
    )
    assert path.read_text() == committed
    for png in ("frappe-fig10-difficulty.png", "frappe-fig5-logit-grad-norms.png"):
        assert (tmp_path / png).read_bytes() == (_EXPERIMENTS / "results" / png).read_bytes()


# -- computed caveats and Table II calibration (issue 17) ---------------------------------------
def _calibrated(ratio, ece):
    return {"test": {"ratio": ratio, "ece": ece, "bins": {}}}


def test_caveats_compute_the_seed_noise_the_seed_counts_and_the_vintages(study):
    t4 = tables.table4_specs()
    for seed, (ours, theirs) in zip(
        (2023, 2024, 2025), ((0.9870, 0.9850), (0.9874, 0.9856), (0.9878, 0.9853)), strict=True
    ):
        _fake_run(study, t4["tf4ctr"], seed, ours, calibration=_calibrated(0.98, 0.015))
        _fake_run(study, t4["dualmlp"], seed, theirs)  # an older run: no calibration
    _fake_run(study, t4["dnn"], 2023, 0.9850)
    report = reporting.Report(study, study.index())
    t4_data = report.table4_data()
    text = report.caveats(t4_data, None)
    # sample sd of test AUC in points: TF4CTR 0.04, DualMLP 0.03; median 0.035
    assert "is 0.030-0.040 AUC points (DualMLP 0.030 (n=3) and TF4CTR 0.040 (n=3); median" in text
    assert f"{math.sqrt(2) * 0.035:.3f} points at the median" in text
    assert reporting.seed_noise(t4_data) == (round(math.sqrt(2) * 0.035, 3), True)
    # Table IV: tf4ctr, dualmlp (3 seeds) and dnn (1) run; the shared DualMLP + log loss cell is
    # Table II's too
    assert "Table IV: 3 of 13 cells run, 1 with one seed (n 1, 3)" in text
    assert "Table II: 1 of 12 cells run, 0 with one seed (n 3)" in text
    assert "4 of 7 cached runs predate the recorded calibration" in text
    assert "monitor AUC + gAUC on valid for Frappe" in text and "embedding (16)" in text
    assert reporting.seed_noise({"dnn": t4_data["dnn"]}) == (reporting.DEFAULT_NOISE, False)


def test_table2_calibration_compares_the_tf_loss_with_log_loss_over_seeds(study):
    t2 = tables.table2_specs("frappe")
    for seed, (b, t) in zip((2023, 2024), ((0.020, 0.014), (0.022, 0.016)), strict=True):
        _fake_run(study, t2[("deepfm", "bce")], seed, 0.98, calibration=_calibrated(1.01, b))
        _fake_run(study, t2[("deepfm", "tf")], seed, 0.98, calibration=_calibrated(0.98, t))
    _fake_run(study, t2[("dcnv2", "bce")], 2023, 0.98)  # archived before calibration
    text = reporting.Report(study, study.index()).table2_calibration()
    # ECE 0.021 +- 0.0014 vs 0.015 +- 0.0014: difference -0.006, se sqrt(2e-6/2 + 2e-6/2) = 0.0014
    assert (
        "| DeepFM | 1.0100 ± 0.0000 (n=2) | 0.9800 ± 0.0000 (n=2) | -0.0300 (se 0.0000; beyond "
        "the seed noise) | 0.0210 ± 0.0014 (n=2) | 0.0150 ± 0.0014 (n=2) | -0.0060 (se 0.0014; "
        "beyond the seed noise) |" in text
    )
    assert "| DualMLP | - | - | - | - | - | - |" in text
    assert (
        "no `calibration`; retrain them to fill the cells): DCNv2 + Log loss (base) (1 of 1)."
        in text
    )


def test_models_restricts_the_runs_to_those_models(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(runs, "data_identity", lambda path: _archived_data_id())
    caplog.set_level("INFO", logger="experiments.reproduce")
    args = ["--dataset", "frappe", "--data", str(tmp_path / "frappe"), "--dry-run"]
    args += ["--runs", str(tmp_path / "runs"), "--archive", str(ARCHIVED)]
    args += ["--seeds", "3", "--tables", "4", "--models", "afn", "edcn"]
    assert reproduce.main(args) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "experiments.reproduce"]
    planned = [line for line in lines if line.startswith("[table 4]")]
    assert {line.split()[2] for line in planned} == {"afn", "edcn"}
    assert len(planned) == 6  # 2 models x 3 seeds
    cost = next(line for line in lines if line.startswith("cost: "))
    done = sum(1 for line in planned if "cached" in line)
    assert cost.startswith(f"cost: {6 - done} training run(s)") or done == 6
    with pytest.raises(SystemExit):
        reproduce.main([*args[:-3], "--models", "nosuchmodel"])


def test_losses_restricts_the_runs_to_those_losses(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(runs, "data_identity", lambda path: _archived_data_id())
    caplog.set_level("INFO", logger="experiments.reproduce")
    args = ["--dataset", "frappe", "--data", str(tmp_path / "frappe"), "--dry-run"]
    args += ["--runs", str(tmp_path / "runs"), "--archive", str(ARCHIVED), "--seeds", "2"]
    args += ["--tables", "2", "--models", "deepfm", "dcnv2", "--losses", "bce", "tf"]
    assert reproduce.main(args) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "experiments.reproduce"]
    planned = [line.split()[2] for line in lines if line.startswith("[table 2]")]
    # 2 models x 2 losses x 2 seeds, in the table's order (models, then losses)
    assert planned == ["deepfm+bce", "deepfm+tf", "dcnv2+bce", "dcnv2+tf"] * 2
    with pytest.raises(SystemExit):
        reproduce.main([*args[:-2], "--losses", "nosuchloss"])


def test_rerun_uncalibrated_trains_only_runs_without_calibration_and_parks_the_old(study):
    t2 = tables.table2_specs("frappe")
    old_spec, new_spec = t2[("deepfm", "bce")], t2[("deepfm", "tf")]
    _fake_run(study, old_spec, 2023, 0.980)  # archived before calibration
    _fake_run(study, new_spec, 2023, 0.981, calibration=_calibrated(1.0, 0.01))
    trained = []

    def train(s, seed):  # the retrained run, now with calibration
        trained.append((s, seed))
        _fake_run(study, s, seed, 0.982, calibration=_calibrated(0.99, 0.02))

    study.train = train
    items = [("deepfm+bce", old_spec, 2023), ("deepfm+tf", new_spec, 2023)]
    args = reproduce.build_parser().parse_args(["--dataset", "frappe"])
    assert reproduce.pending(study, items, set(), args) == []  # without the flag: all cached
    args = reproduce.build_parser().parse_args(["--dataset", "frappe", "--rerun-uncalibrated"])
    assert reproduce.pending(study, items, set(), args) == [("deepfm", None)]
    reproduce.execute(study, "table 2", items, args, set(), [], rebuild=lambda *a: None)
    assert trained == [(old_spec, 2023)]
    parked = study.runs / ".older" / study.run_dir(old_spec, 2023).name
    assert RunDir(parked).read_metrics()["test"]["auc"] == 0.980
    assert RunDir(study.run_dir(old_spec, 2023)).read_metrics()["test"]["auc"] == 0.982
    # the parked run is neither indexed nor counted: the cell holds the new run only
    cell = Study.index(study)[study.cell(old_spec)]
    assert [r["test"]["auc"] for r in cell] == [0.982]
    assert reproduce.pending(study, items, set(), args) == []  # nothing left to rerun
