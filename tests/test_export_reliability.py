"""`python -m export` refuses names that escape --model-base-path, cleans what killed exports
left and refuses a second export of the same model while one runs. None of these needs a
trained run: ``read_run`` is replaced where the export must get past it."""

import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

import export.exporter as exporter
from export.__main__ import main
from export.exporter import (
    LOCK_FILE,
    ExportBusyError,
    check_model_name,
    export_lock,
    export_run,
    remove_stale_versions,
)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _fake_run(monkeypatch):
    """``read_run`` answering at once, so export_run reaches the lock and the version check."""
    manifest = SimpleNamespace(dataset="frappe")
    monkeypatch.setattr(exporter, "read_run", lambda run_dir: (object(), manifest, {"model": "x"}))


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    "name, message",
    [
        ("../../escaped", "one path component"),
        ("a/b", "one path component"),
        ("a\\b", "one path component"),
        ("..", "must not start with `.`"),
        (".", "must not start with `.`"),
        (".hidden", "must not start with `.`"),
        ("", "non-empty"),
    ],
)
def test_model_names_that_are_not_one_path_component_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        check_model_name(name)


@pytest.mark.parametrize("name", ["tf4ctr_criteo", "deepfm-frappe.v2", "m"])
def test_plain_model_names_are_accepted(name):
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["../../escaped", "..", "sub/dir", ""])
def test_cli_refuses_an_escaping_name_with_exit_2_and_writes_nothing(tmp_path, name, caplog):
    base = tmp_path / "deep" / "models"
    argv = ["--run-dir", str(tmp_path / "run"), "--model-base-path", str(base)]
    with caplog.at_level(logging.ERROR):
        assert main([*argv, "--model-name", name]) == 2
    assert "model name" in caplog.text
    assert _files(tmp_path) == []  # neither base nor ../../escaped was created


def test_export_run_checks_the_name_before_reading_the_run(tmp_path):
    # the run does not exist: a FileNotFoundError here would mean the run was read first
    with pytest.raises(ValueError, match="one path component"):
        export_run(tmp_path / "absent-run", tmp_path / "models", model_name="../escaped")
    assert _files(tmp_path) == []


def test_stale_temp_versions_of_dead_processes_are_removed_at_export_start(tmp_path, monkeypatch):
    _fake_run(monkeypatch)
    model_dir = tmp_path / "models" / "m"
    dead, live = _dead_pid(), os.getpid()
    for name in (f"2.tmp-{dead}", f"7.tmp-{dead}", f"3.tmp-{live}", "1"):
        (model_dir / name).mkdir(parents=True)
        (model_dir / name / "saved_model.pb").write_bytes(b"half")
    # version 1 exists, so the export stops after the clean-up, before writing anything
    with pytest.raises(FileExistsError, match="immutable"):
        export_run(tmp_path / "run", tmp_path / "models", model_name="m", version=1)
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", f"3.tmp-{live}"]


def test_remove_stale_versions_keeps_other_names(tmp_path):
    dead = _dead_pid()
    for name in (f"4.tmp-{dead}", f"notaversion.tmp-{dead}", "5", ".export.lock.d"):
        (tmp_path / name).mkdir()
    remove_stale_versions(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".export.lock.d",
        "5",
        f"notaversion.tmp-{dead}",
    ]
    remove_stale_versions(tmp_path / "absent")  # no model directory yet: nothing to do


def test_lock_holds_the_pid_and_is_removed_on_release(tmp_path):
    with export_lock(tmp_path / "m") as path:
        assert path == tmp_path / "m" / LOCK_FILE
        assert path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(ExportBusyError, match=f"PID {os.getpid()}"), export_lock(path.parent):
            pass
    assert not path.exists()
    with export_lock(tmp_path / "m"):  # free again
        pass


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_concurrent_export_exits_2_naming_the_holder(tmp_path, monkeypatch, caplog):
    _fake_run(monkeypatch)
    model_dir = tmp_path / "models" / "m"
    model_dir.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(model_dir / LOCK_FILE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = ["--run-dir", str(tmp_path / "run"), "--model-base-path", str(tmp_path / "models")]
        with caplog.at_level(logging.ERROR):
            assert main([*argv, "--model-name", "m", "--version", "1"]) == 2
        assert f"being exported by another process (PID {holder.pid}" in caplog.text
        assert sorted(p.name for p in model_dir.iterdir()) == [LOCK_FILE]  # nothing written
    finally:
        holder.kill()  # a killed exporter: the kernel drops its flock
        holder.wait()
    with export_lock(model_dir) as path:
        assert path.read_text() == f"{os.getpid()}\n"
