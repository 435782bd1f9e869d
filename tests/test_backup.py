"""Training never loses a learner's files or work: real `smoke` runs of the command line in a temporary folder.

Each run trains a sliver of the embedded sample for two or three epochs, in seconds.
"""

import errno
import os
import pathlib
import socket
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
from runs import InterruptAfterEpoch, with_callbacks
from runs import run_cli as run

import vggcourse
from vggcourse import backup, train

# Two steps of 32 images per epoch: enough to back up, resume and diverge.
SMOKE = ["train", "--preset", "smoke", "--source", "sample", "--train-examples", "64", "--val-examples", "32",
         "--verbose", "0"]


def one_line(capsys):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def interrupted_after(monkeypatch):
    """Makes the next CLI run stop after the given epoch (0-based), then restores train_vgg."""
    train_vgg = train.train_vgg

    def interrupt(epoch):
        monkeypatch.setattr(train, "train_vgg", with_callbacks(train_vgg, InterruptAfterEpoch(epoch)))

    yield interrupt
    monkeypatch.setattr(train, "train_vgg", train_vgg)


def run_folder(backup_dir, name):
    """Where a run named ``name`` keeps its backup inside ``backup_dir``."""
    return backup.backup_folder(backup_dir, train.PRESETS["smoke"].replace(name=name))


# ---------------------------------------------------------------------------
# The backup folder belongs to the course, and to one configuration.


def test_a_finished_run_deletes_its_own_backup_and_nothing_else(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "notes.txt").write_text("notes")
    argv = [*SMOKE, "--epochs", "2", "--backup-dir", str(runs), "--name", "smoke",
            "--history", str(runs / "smoke.csv"), "--checkpoint", str(runs / "smoke.keras")]
    assert run(argv) == 0
    assert sorted(path.name for path in runs.iterdir()) == ["notes.txt", "smoke.csv", "smoke.keras"]
    assert "Model saved to" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["..", ".", "../escape"])
def test_a_configuration_name_never_leads_the_backup_out_of_its_own_folder(tmp_path, name):
    parent = tmp_path / "parent"
    backups = parent / "backups"
    backups.mkdir(parents=True)
    (parent / "keep.txt").write_text("keep")
    (backups / "other-config").mkdir()
    (backups / "other-config" / backup.BACKUP_MARKER).write_text("{}")
    assert run([*SMOKE, "--epochs", "2", "--backup-dir", str(backups), "--name", name]) == 0
    assert (parent / "keep.txt").exists() and (backups / "other-config" / backup.BACKUP_MARKER).exists()
    assert sorted(path.name for path in backups.iterdir()) == ["other-config"]


def test_the_working_directory_as_backup_folder_keeps_its_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("notes")
    assert run([*SMOKE, "--epochs", "2", "--backup-dir", "."]) == 0
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_a_folder_that_is_not_the_courses_is_neither_used_nor_deleted(tmp_path, capsys):
    folder = run_folder(tmp_path, "mine")
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    assert run([*SMOKE, "--backup-dir", str(tmp_path), "--name", "mine", "--restart"]) == 1
    assert "is not a vggcourse backup" in one_line(capsys)
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_resuming_with_other_settings_is_refused_before_any_work(tmp_path, interrupted_after, capsys):
    argv = [*SMOKE, "--backup-dir", str(tmp_path), "--name", "lr", "--history", str(tmp_path / "h.csv")]
    interrupted_after(0)
    assert run([*argv, "--lr", "0.02"]) == 130
    capsys.readouterr()
    assert run([*argv, "--lr", "0.5"]) == 1
    err = one_line(capsys)
    assert str(tmp_path / "lr") in err and "learning_rate: 0.02 in the backup, 0.5 now" in err
    assert "--restart" in err and "another backup folder" in err
    assert len(pd.read_csv(tmp_path / "h.csv")) == 1, "the refused run wrote nothing"


def test_restart_starts_afresh_from_a_backup_of_other_settings(tmp_path, interrupted_after):
    argv = [*SMOKE, "--backup-dir", str(tmp_path), "--name", "lr", "--history", str(tmp_path / "h.csv")]
    interrupted_after(0)
    assert run([*argv, "--lr", "0.02"]) == 130
    interrupted_after(99)
    assert run([*argv, "--lr", "0.5", "--restart"]) == 0
    assert pd.read_csv(tmp_path / "h.csv").epoch.tolist() == [0, 1, 2]


def test_a_backup_of_other_data_is_refused(tmp_path):
    sample = vggcourse.load_fashion_mnist(source="sample")
    (x_train, y_train), test = sample
    config = train.PRESETS["smoke"].replace(train_examples=64, val_examples=32, epochs=2)
    with pytest.raises(KeyboardInterrupt):
        train.train_vgg(config, sample, backup_dir=tmp_path, verbose=0, callbacks=[InterruptAfterEpoch(0)])
    other = ((x_train[::-1], y_train[::-1]), test)
    with pytest.raises(backup.BackupMismatchError, match=r"data: .* in the backup, .* now"):
        train.train_vgg(config, other, backup_dir=tmp_path, verbose=0)


def test_a_second_run_on_the_same_backup_fails_at_once(tmp_path, capsys):
    folder = run_folder(tmp_path, "busy")
    folder.mkdir()
    (folder / backup.BACKUP_MARKER).write_text('{"fingerprint": {}}')
    other_run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (folder / backup.BACKUP_LOCK).write_text(f"{socket.gethostname()} {other_run.pid}\n")
        assert run([*SMOKE, "--epochs", "1", "--backup-dir", str(tmp_path), "--name", "busy"]) == 1
        assert f"Another run (process {other_run.pid}" in one_line(capsys)
    finally:
        other_run.kill()
        other_run.wait()


def test_the_lock_of_a_run_that_no_longer_exists_is_taken_over(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = backup.backup_folder(tmp_path, train.PRESETS["smoke"])
    folder.mkdir()
    (folder / backup.BACKUP_LOCK).write_text(f"{socket.gethostname()} {finished.stdout.strip()}\n")
    lock = backup.acquire_lock(folder)
    assert lock.read_text().split()[1] == str(os.getpid())


# ---------------------------------------------------------------------------
# Backups survive faults.


def _disk_fills_up_at(epoch, monkeypatch):
    """From the backup of ``epoch`` (1-based) on, every write of weights stops half-way: no space left."""
    save_weights = keras.Model.save_weights
    calls = []

    def full_disk(self, filepath, *args, **kwargs):
        calls.append(filepath)
        if len(calls) >= epoch:
            pathlib.Path(filepath).write_bytes(b"\x89HDF\r\n half a file")
            raise OSError(errno.ENOSPC, "No space left on device", str(filepath))
        return save_weights(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", full_disk)
    return lambda: monkeypatch.setattr(keras.Model, "save_weights", save_weights)


def test_a_full_disk_loses_only_the_epoch_in_progress(tmp_path, monkeypatch):
    sample = vggcourse.load_fashion_mnist(source="sample")
    config = train.PRESETS["smoke"].replace(train_examples=64, val_examples=32, epochs=3)
    folder = backup.backup_folder(tmp_path, config)
    disk_freed = _disk_fills_up_at(2, monkeypatch)
    with pytest.raises(backup.BackupError, match=r"backup of epoch 2 .*No space left.*backup of epoch 1 is kept"):
        train.train_vgg(config, sample, backup_dir=tmp_path, verbose=0)
    assert sorted(path.name for path in folder.iterdir()) == ["epoch-0001", backup.BACKUP_MARKER]
    disk_freed()
    resumed = train.train_vgg(config, sample, backup_dir=tmp_path, verbose=0)
    assert resumed.epoch == [1, 2]
    assert not folder.exists()


def test_a_damaged_backup_gives_one_line_that_names_the_file_and_the_way_to_start_over(
    tmp_path, interrupted_after, capsys
):
    argv = [*SMOKE, "--backup-dir", str(tmp_path), "--name", "damaged"]
    interrupted_after(0)
    assert run(argv) == 130
    weights = run_folder(tmp_path, "damaged") / "epoch-0001" / "weights.weights.h5"
    weights.write_bytes(weights.read_bytes()[:1000])
    interrupted_after(99)
    capsys.readouterr()
    assert run(argv) == 1
    err = one_line(capsys)
    assert str(weights) in err and "damaged" in err and "--restart" in err
    assert run([*argv, "--restart"]) == 0


def test_a_damaged_marker_names_the_file_and_restart_starts_over(tmp_path):
    sample = vggcourse.load_fashion_mnist(source="sample")
    config = train.PRESETS["smoke"].replace(train_examples=64, val_examples=32, epochs=1)
    folder = backup.backup_folder(tmp_path, config)
    folder.mkdir()
    (folder / backup.BACKUP_MARKER).write_text("")  # What a write cut short leaves.
    with pytest.raises(backup.BackupError, match=rf"{backup.BACKUP_MARKER} cannot be read.*--restart"):
        train.train_vgg(config, sample, backup_dir=tmp_path, verbose=0)
    assert train.train_vgg(config, sample, backup_dir=tmp_path, verbose=0, restart=True).epoch == [0]


# ---------------------------------------------------------------------------
# A failure is a failure.


def test_a_diverged_run_exits_non_zero_and_saves_no_weights(tmp_path, capsys):
    checkpoint = tmp_path / "ckn.keras"
    argv = [*SMOKE, "--epochs", "3", "--lr", "1e6", "--checkpoint", str(checkpoint),
            "--backup-dir", str(tmp_path / "backup")]
    assert run(argv) == 1
    err = one_line(capsys)
    assert "diverged" in err and "lower learning rate" in err
    assert "Model saved" not in capsys.readouterr().out
    assert not checkpoint.exists()


class _PoisonWeightsAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            for weight in self.model.trainable_weights:
                weight.assign(np.full(weight.shape, np.nan, weight.dtype))


def test_a_diverged_run_keeps_the_last_good_backup(tmp_path):
    sample = vggcourse.load_fashion_mnist(source="sample")
    config = train.PRESETS["smoke"].replace(train_examples=64, val_examples=32, epochs=3)
    with pytest.raises(vggcourse.TrainingDiverged, match=r"epoch 2.*backup of epoch 1"):
        train.train_vgg(config, sample, backup_dir=tmp_path, verbose=0, callbacks=[_PoisonWeightsAtEpoch(1)])
    folder = backup.backup_folder(tmp_path, config)
    assert backup.epochs_backed_up(folder) == 1
    restored = train.train_vgg(config.replace(epochs=1), sample, backup_dir=tmp_path, verbose=0)
    assert all(np.isfinite(weight.numpy()).all() for weight in restored.model.weights)


def test_resuming_with_nothing_left_to_do_says_so_and_saves_the_restored_model(
    tmp_path, interrupted_after, capsys
):
    checkpoint = tmp_path / "model.keras"
    argv = [*SMOKE, "--backup-dir", str(tmp_path), "--name", "done"]
    interrupted_after(1)
    assert run([*argv, "--epochs", "3"]) == 130
    interrupted_after(99)
    capsys.readouterr()
    assert run([*argv, "--epochs", "2", "--checkpoint", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "Nothing left to train" in out and "already holds 2 epoch(s)" in out
    assert f"Model saved to {checkpoint}" in out
    assert keras.models.load_model(checkpoint).output_shape == (None, 10)
    assert backup.epochs_backed_up(tmp_path / "done") == 2, "the work is kept"


# ---------------------------------------------------------------------------
# Output paths are checked before the first step.


@pytest.mark.parametrize(
    "option, make, says",
    [
        ("--checkpoint", lambda path: path.mkdir(), "is a folder"),
        ("--checkpoint", lambda path: None, "cannot be written"),
        ("--history", lambda path: path.mkdir(), "is a folder"),
        ("--backup-dir", lambda path: path.write_text("a file"), "a file"),
    ],
)
def test_a_bad_output_path_is_refused_before_any_data_is_loaded(tmp_path, capsys, option, make, says):
    suffix = {"--checkpoint": "m.keras", "--history": "h.csv", "--backup-dir": "runs"}[option]
    path = tmp_path / suffix
    make(path)
    if says == "cannot be written":
        (tmp_path / "file").write_text("a file, not a folder")
        path = tmp_path / "file" / suffix
    assert run([*SMOKE, option, str(path)]) == 2
    err = one_line(capsys)
    assert option in err and says in err
    assert "Fashion-MNIST" not in capsys.readouterr().out


# ---------------------------------------------------------------------------
# Labels, numbers and sizes at the door.


@pytest.mark.parametrize(
    "labels, says",
    [
        (np.array([0, 1, 10, 2]), "from 0 to 10"),
        (np.array([0, -1, 3, 2]), "from -1 to 3"),
        (np.array([0.0, 1.0, 2.9, 2.0]), "dtype float64"),
        (np.array([True, False, True, False]), "dtype bool"),
    ],
)
def test_labels_outside_the_classes_are_refused_at_the_door(labels, says, tmp_path):
    images = np.zeros((4, 28, 28), np.uint8)
    with pytest.raises(vggcourse.InvalidArgument, match=says):
        vggcourse.make_dataset(images, labels, 2)
    data = ((images, labels), (images, np.zeros(4, np.uint8)))
    with pytest.raises(vggcourse.InvalidArgument, match=says):
        train.train_vgg(train.PRESETS["smoke"], data, backup_dir=tmp_path, verbose=0)
    assert not any(tmp_path.iterdir()), "refused before any work"


def test_plots_refuse_labels_outside_the_classes():
    from vggcourse import plots

    with pytest.raises(vggcourse.InvalidArgument, match="y_true"):
        plots.plot_confusion_matrix([0, -1], [0, 9])
    with pytest.raises(vggcourse.InvalidArgument, match="y_pred"):
        plots.plot_confusion_matrix([0, 1], [2.9, 2])
    with pytest.raises(vggcourse.InvalidArgument, match="labels"):
        plots.show_images(np.zeros((2, 28, 28), np.uint8), [0, 10])


def test_numpy_numbers_become_plain_numbers_in_a_config():
    config = train.TrainConfig("x", seed=np.int64(1), learning_rate=np.float32(0.5), jit_compile=np.bool_(False))
    assert type(config.seed) is int and type(config.learning_rate) is float and type(config.jit_compile) is bool
    assert config == train.TrainConfig("x", seed=1, learning_rate=0.5)


def test_seeds_and_image_sizes_out_of_range_are_refused():
    with pytest.raises(vggcourse.InvalidArgument, match=r"seed.*Received: seed=4294967296"):
        train.TrainConfig("x", seed=2**32)
    with pytest.raises(vggcourse.InvalidArgument, match=r"image_size.*Received: image_size=100000"):
        train.TrainConfig("x", image_size=100_000)


def test_a_run_that_cannot_fit_in_memory_is_refused_with_the_estimate(tmp_path):
    config = train.PRESETS["smoke"].replace(ratio=1, image_size=1024, batch_size=4096)
    with pytest.raises(vggcourse.InvalidArgument, match=r"about [\d,.]+ GB .* GB of memory"):
        train.train_vgg(config, vggcourse.load_fashion_mnist(source="sample"), backup_dir=tmp_path, verbose=0)


def test_a_batch_of_zero_images_is_refused_by_the_network():
    net = vggcourse.vgg(vggcourse.scale_arch(vggcourse.VGG_ARCHS["vgg11"], 16), dense_units=8)
    with pytest.raises(vggcourse.InvalidArgument, match=r"at least one image.*\(0, 32, 32, 1\)"):
        net(np.zeros((0, 32, 32, 1), np.float32))
