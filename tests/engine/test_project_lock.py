"""One writer at a time per project: the lock, who holds it, and its end with its process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from linnaeus.engine.cli import train as cli_train
from linnaeus.engine.cli.main import main
from linnaeus.engine.errors import ProjectBusyError
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.project import lock
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from tests.image_factory import write_class_folders
from tests.process_factory import dead_pid
from tests.process_factory import held_by_another_process

_BUSY = re.compile(
    r"This project is busy: (?P<what>.+) since \d\d:\d\d \(process (?P<pid>\d+) on this "
    r"computer\)\. Wait for it to finish or cancel it\."
)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return write_class_folders(tmp_path / "images", ("cat", "dog"), 8)


def test_a_second_writer_waits_then_says_who_holds_the_project(tmp_path: Path) -> None:
    with held_by_another_process(tmp_path, "training v4") as child:
        started = time.monotonic()
        with (
            pytest.raises(ProjectBusyError) as refused,
            lock.hold(tmp_path, "importing images", wait_s=0.5),
        ):
            pass
        assert time.monotonic() - started >= 0.5
        found = _BUSY.fullmatch(str(refused.value))
        assert found and found["what"] == "training v4" and int(found["pid"]) == child.pid
        assert lock.busy_message(tmp_path) == str(refused.value)


def test_the_lock_dies_with_its_process_and_its_holder_note_is_not_believed(
    tmp_path: Path,
) -> None:
    with held_by_another_process(tmp_path, "exporting v2") as child:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert (tmp_path / lock.HOLDER_FILE).is_file()  # a killed process cannot tidy up
        assert lock.holder(tmp_path) is None
        assert lock.busy_message(tmp_path) is None
        with lock.hold(tmp_path, "training", wait_s=2):
            assert lock.holder(tmp_path).what == "training"
    assert not (tmp_path / lock.HOLDER_FILE).exists()


def test_a_holder_note_of_a_dead_process_is_not_believed_while_the_lock_is_held(
    tmp_path: Path,
) -> None:
    with held_by_another_process(tmp_path, "training v4"):
        note = json.loads((tmp_path / lock.HOLDER_FILE).read_text())
        note["pid"] = dead_pid()
        (tmp_path / lock.HOLDER_FILE).write_text(json.dumps(note))
        assert lock.busy_message(tmp_path) == (
            "This project is busy: another Linnaeus process is writing to it. "
            "Wait for it to finish or cancel it."
        )


def test_another_thread_is_another_writer_and_one_thread_may_nest(tmp_path: Path) -> None:
    held, release = threading.Event(), threading.Event()

    def hold_in_thread() -> None:
        with lock.hold(tmp_path, "importing images"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold_in_thread)
    thread.start()
    try:
        assert held.wait(10)
        with (
            pytest.raises(ProjectBusyError, match="importing images since"),
            lock.hold(tmp_path, "training", wait_s=0.2),
        ):
            pass
    finally:
        release.set()
        thread.join()
    with lock.hold(tmp_path, "building the demo project"):
        with lock.hold(tmp_path, "training"):
            lock.doing(tmp_path, "training v2")
            assert lock.holder(tmp_path).what == "training v2"
            assert lock.busy_message(tmp_path) is None  # this thread holds it
        assert lock.holder(tmp_path).what == "building the demo project"


def test_two_creates_of_one_project_at_once_make_it_once(tmp_path: Path, images: Path) -> None:
    outcomes: list[object] = []

    def create() -> None:
        try:
            ProjectStore.create(tmp_path / "project", images).close()
            outcomes.append("made")
        except ProjectError as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=create) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str)[1] == "made"
    assert "already holds a Linnaeus project; open it instead" in str(sorted(outcomes, key=str)[0])


def test_two_imports_into_a_new_project_at_once(tmp_path: Path, images: Path) -> None:
    """The probe: before the lock, `UNIQUE constraint failed` and `table meta already exists`."""
    project = tmp_path / "project"
    command = [sys.executable, "-m", "linnaeus.engine.cli", "import", str(images),
               "--project", str(project), "--json"]  # fmt: skip
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    ended = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    for code, _out, err in ended:
        assert "Traceback" not in err
        assert code == 0 or (code == 1 and "This project is busy: importing images" in err)
    assert 0 in [code for code, _, _ in ended]
    with ProjectStore.open(project) as store:
        assert store.image_count() == 16
        assert store.label_split_counts().keys() == {"cat", "dog"}


def test_commands_that_write_refuse_a_busy_project_and_say_why(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """The probe's two `train --resume` at once, a re-import and an export."""
    monkeypatch.setattr(lock, "WAIT_S", 0.3)
    monkeypatch.setattr(cli_train, "_cancel_on_signals", CancelToken)  # pytest keeps Ctrl+C
    project = tmp_path / "project"
    assert main(["import", str(images), "--project", str(project)]) == 0
    with ProjectStore.open(project) as store:
        cancelled = versions.create_version(
            store, kind="seed-cnn", config={}, augmentation={}, classes=["cat", "dog"], labels={}
        )
        versions.update_version(store, cancelled.id, status="cancelled")
        cancelled.checkpoint_file.write_bytes(b"checkpoint")
        done = versions.create_version(
            store, kind="quick", config={}, augmentation={}, classes=["cat", "dog"], labels={}
        )
        versions.update_version(store, done.id, status="done")
        versions.set_active(store, done.id)
    capsys.readouterr()
    with held_by_another_process(project, "training v1") as child:
        commands = (
            ["train", "--resume"],
            ["import"],
            ["export", "--out", str(tmp_path / "model.onnx")],
        )
        for command in commands:
            assert main([*command, "--project", str(project)]) == 1
            error = capsys.readouterr().err.strip()
            found = _BUSY.fullmatch(error.removeprefix("linnaeus: error: "))
            assert found and found["what"] == "training v1" and int(found["pid"]) == child.pid
    assert not (tmp_path / "model.onnx").exists()


def test_a_busy_training_says_so_in_its_last_json_line(
    tmp_path: Path, images: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setattr(lock, "WAIT_S", 0.3)
    monkeypatch.setattr(cli_train, "_cancel_on_signals", CancelToken)
    project = tmp_path / "project"
    assert main(["import", str(images), "--project", str(project)]) == 0
    capsys.readouterr()
    with held_by_another_process(project, "importing images"):
        assert main(["train", "--project", str(project), "--json-progress"]) == 1
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert last["phase"] == "error" and last["busy"] is True
    assert last["message"].startswith("This project is busy: importing images since")
