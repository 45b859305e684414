"""Packaging: the command-line parsers answer without TensorFlow, the console scripts named in
pyproject.toml resolve, the declared dependencies cover what CI installs, and the wheel holds
the four packages with their YAML data and entry points (and nothing else)."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]
PACKAGES = ("tf4ctr_keras", "pipelines", "export", "serving")
HEAVY = ("tensorflow", "keras", "tf4ctr_keras")

# Prints the heavy modules that running ``CALL`` with --help left in sys.modules.
PROBE = """
import json, sys
{call}
print(json.dumps({{"code": code, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""
SCRIPT_CALL = """
from {module} import {attr}
try:
    code = {attr}(["--help"])
except SystemExit as stop:
    code = stop.code
"""
MODULE_CALL = """
import runpy
sys.argv = ["{module}", "--help"]
try:
    runpy.run_module("{module}", run_name="__main__", alter_sys=True)
    code = None
except SystemExit as stop:
    code = stop.code
"""


def _probe(call: str) -> tuple[dict, str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(call=call, heavy=HEAVY)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    *help_lines, last = out.stdout.strip().splitlines()
    return json.loads(last), "\n".join(help_lines)


def test_the_five_console_scripts_are_declared():
    assert sorted(SCRIPTS) == [
        "tf4ctr-export",
        "tf4ctr-generate",
        "tf4ctr-prepare",
        "tf4ctr-train",
        "tf4ctr-tune",
    ]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_target_is_a_callable(script):
    module, _, attr = SCRIPTS[script].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_help_imports_no_tensorflow(script):
    module, _, attr = SCRIPTS[script].partition(":")
    result, text = _probe(SCRIPT_CALL.format(module=module, attr=attr))
    assert result == {"code": 0, "heavy": []}
    assert text.startswith("usage: ")


@pytest.mark.parametrize(
    "module",
    ["pipelines.train", "pipelines.tune", "pipelines.prepare", "pipelines.generate", "export"],
)
def test_python_m_help_imports_no_tensorflow(module):
    result, text = _probe(MODULE_CALL.format(module=module))
    assert result == {"code": 0, "heavy": []}
    assert text.startswith("usage: ")


@pytest.mark.parametrize("module", ["pipelines.training.cli", "pipelines.tune"])
def test_train_and_tune_take_a_schema_and_a_free_dataset_name(module):
    args = importlib.import_module(module).build_parser().parse_args(["--schema", "s.yaml"])
    assert args.schema == "s.yaml" and args.dataset is None
    args = importlib.import_module(module).build_parser().parse_args(["--dataset", "clicks"])
    assert args.dataset == "clicks"  # validated by the config, which lists the valid names


def test_the_schema_flag_is_the_data_schema_key():
    from pipelines.training.cli import FLAG_KEYS

    assert FLAG_KEYS["schema"] == "data.schema"


def test_tune_parser_defaults():
    from pipelines import tune

    args = tune.build_parser().parse_args(["--dataset", "frappe", "--tuner", "random"])
    assert (args.tuner, args.max_trials, args.seed) == ("random", 12, 2023)


def test_lazy_export_names_resolve():
    import export

    assert sorted(export.__all__) == sorted(export._EXPORTS)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        export.nope  # noqa: B018


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            pins[req.name.lower()] = Version(next(iter(req.specifier)).version)
    return pins


def test_dependencies_are_ranges_that_hold_the_pins_and_no_dev_tools():
    pins = _pins()
    deps = [Requirement(d) for d in PYPROJECT["project"]["dependencies"]]
    names = {d.name.lower() for d in deps}
    assert not names & {"pytest", "ruff", "matplotlib"}
    assert {"tensorflow", "keras", "keras-tuner", "numpy", "pandas", "pyyaml"} <= names
    for dep in deps:
        assert dep.specifier, f"{dep.name}: a range, not a bare name"
        installed = Version(importlib.metadata.version(dep.name))
        assert installed in dep.specifier, (dep.name, installed)
        if dep.name.lower() in pins:
            assert pins[dep.name.lower()] in dep.specifier, (dep.name, pins[dep.name.lower()])


def _source_tree(dest: Path) -> Path:
    """What a fresh clone (plus the uncommitted work) holds: git's tracked and untracked files,
    without the ignored ones (data/, runs/, caches), copied so that the build's build/ and
    egg-info never land in the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _offline_build() -> bool:
    """Whether this environment's setuptools can build the wheel without build isolation (no
    download): pyproject asks setuptools>=64, and before 70.1 bdist_wheel needs `wheel`."""
    try:
        setuptools = Version(importlib.metadata.version("setuptools"))
    except importlib.metadata.PackageNotFoundError:
        return False
    if setuptools < Version("64"):
        return False
    if setuptools >= Version("70.1"):
        return True
    try:
        importlib.metadata.version("wheel")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_wheel_holds_the_four_packages_their_data_and_the_scripts(tmp_path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to list the sources")
    src = _source_tree(tmp_path / "src")
    isolation = ["--no-build-isolation"] if _offline_build() else []  # else pip downloads it
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
         *isolation, "-w", str(tmp_path / "wheel"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "wheel").glob("tf4ctr_keras-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == set(PACKAGES)
    for name in (
        "tf4ctr_keras/__init__.py",
        "tf4ctr_keras/layers/__init__.py",
        "pipelines/training/cli.py",
        "pipelines/training/choices.py",
        "export/__init__.py",
        "serving/__init__.py",
        "serving/client.py",
    ):
        assert name in names
    for dataset in ("criteo", "frappe", "kkbox", "ml-1m", "movielenslatest"):
        assert f"pipelines/training/configs/{dataset}.yaml" in names
    schemas = sorted(p.name for p in (REPO / "pipelines/data/schemas").glob("*.yaml"))
    assert [n for n in schemas if f"pipelines/data/schemas/{n}" not in names] == []
    assert not [n for n in names if n.startswith(("tests/", "experiments/", "benchmarks/"))]
    for script, target in SCRIPTS.items():
        assert f"{script} = {target}" in scripts


@pytest.mark.parametrize(
    "argv, listed",
    [
        (["--dataset", "avazu"], "Bundled datasets: criteo, frappe, kkbox, ml-1m, movielenslatest"),
        (
            ["--dataset", "frappe", "--model", "nope"],
            "Valid choices: afn, autoint, cl4ctr, dcn, dcnv2, deepfm",
        ),
        (["--dataset", "frappe", "--loss", "nope"], "must be one of ['auto', 'tf', 'bce'"),
        (["--dataset", "frappe", "--selector", "nope"], "Unknown sample selector `nope`. Valid"),
        (["--dataset", "frappe", "--fusion", "nope"], "Unknown fusion `nope`. Valid choices: cf"),
        (["--dataset", "frappe", "--simple-encoder", "nope"], "Unknown simple encoder `nope`."),
    ],
)
def test_names_without_argparse_choices_are_refused_by_the_config(argv, listed, tmp_path, caplog):
    """--dataset, --model, --loss, --selector, --fusion and --simple-encoder take any string;
    the config validation refuses an unknown one with the valid names and exit code 2."""
    from pipelines.training.cli import main

    assert main([*argv, "--run-dir", str(tmp_path / "never")]) == 2
    assert listed in caplog.text
    assert not (tmp_path / "never").exists()


def test_tune_refuses_an_unknown_dataset_and_a_missing_one(caplog):
    from pipelines.tune import main

    assert main(["--dataset", "avazu"]) == 2
    assert "Unknown dataset `avazu`. Bundled datasets: criteo, frappe" in caplog.text
    assert main([]) == 2
    assert "No dataset given: pass --dataset NAME, --schema PATH" in caplog.text


STARTUP_PROBE = """
import json, sys
import pandas  # imported before: left as it is
from pipelines.training.startup import KERAS_EXTRAS, keras_without_extras
with keras_without_extras():
    import tf4ctr_keras
during = sorted(m for m in ("sklearn", "matplotlib", "IPython") if m in sys.modules)
blocked = [m for m in KERAS_EXTRAS if sys.modules.get(m, 0) is None]
import keras
import matplotlib.pyplot  # the process can still import every package itself
from keras.src.trainers.data_adapters import array_slicing
from keras.src.wrappers import fixes
print(json.dumps({
    "during": during, "blocked": blocked, "pandas_kept": array_slicing.pandas is pandas,
    "sklearn_off": fixes.sklearn is None, "matplotlib": "matplotlib" in sys.modules,
    "sum": float(keras.ops.sum(keras.ops.ones((2, 3)))),
}))
"""


def test_the_training_process_imports_keras_without_its_unused_integrations():
    """``pipelines.training.startup``: sklearn, matplotlib and IPython stay out of Keras'
    import (about 2.5 s of start-up), a package imported before is kept, and afterwards the
    process imports them normally."""
    out = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {
        "during": [],
        "blocked": [],
        "pandas_kept": True,
        "sklearn_off": True,
        "matplotlib": True,
        "sum": 6.0,
    }
