"""The backup of a training run: a folder the course owns, one configuration per folder, safe writes.

``train_vgg(config, data, backup_dir=F)`` never writes into ``F`` itself. It
backs the run up in a folder of its own inside it, ``backup_folder(F, config)``,
named after the configuration, and marks that folder as the course's with a
file, ``vggcourse-backup.json``, that holds the configuration's fingerprint:

- a folder without that file is never used as a backup, and never deleted; a
  finished run deletes its own folder, and nothing else;
- a backup resumes only the configuration that made it: another fingerprint
  is refused before any work, with the fields that differ;
- a lock file keeps a second run from using the same backup at once;
- each epoch is written to a temporary folder, ``epoch-0003.tmp``, that is
  renamed ``epoch-0003`` once complete; only then is the previous epoch's
  removed. A crash or a full disk loses at most the epoch in progress.

Taught in: *Training VGG (on a GPU, or a CPU)*, "Running it anywhere"; this docstring is the full account.
"""

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import pathlib
import re
import shutil
import socket
import tempfile

import keras
import numpy as np

from vggcourse._checks import check_path
from vggcourse.errors import CourseError, InvalidArgument

__all__ = [
    "BACKUP_LOCK",
    "BACKUP_MARKER",
    "BackupError",
    "BackupInUseError",
    "BackupMismatchError",
    "backup_folder",
    "default_backup_dir",
    "epochs_backed_up",
]

BACKUP_MARKER = "vggcourse-backup.json"
BACKUP_LOCK = "lock"
_EPOCH = re.compile(r"^epoch-(\d+)$")
_WEIGHTS = "weights.weights.h5"
# Fields of a TrainConfig that do not change what a run computes: its label,
# and how long it goes on (a longer run continues a shorter one, unless the
# learning rate's schedule depends on the length; see fingerprint()).
_NOT_FINGERPRINTED = ("name", "epochs")


class BackupError(CourseError):
    """A backup that cannot be used as it is: damaged, or a folder that is not the course's."""


class BackupMismatchError(BackupError):
    """A backup made by another configuration, or on other data."""


class BackupInUseError(BackupError):
    """A backup that another run is using right now."""


def default_backup_dir():
    """Where ``train_vgg()`` keeps its backups unless told otherwise: a folder in the temporary directory."""
    return os.path.join(tempfile.gettempdir(), "vggcourse-backup")


def _folder_name(name):
    """A configuration's name as one safe path component: never '.', '..', hidden, or with a separator."""
    safe = re.sub(r"[^A-Za-z0-9._=+-]", "_", name)
    return safe if safe.strip(".") and not safe.startswith(".") else f"run-{safe}"


def backup_folder(backup_dir, config):
    """The folder, inside ``backup_dir``, where ``config``'s run is backed up.

    Args:
        backup_dir: the folder the user names (or ``default_backup_dir()``).
        config: a ``TrainConfig``; its ``name`` names the folder.

    Returns:
        A ``pathlib.Path``, ``backup_dir / <name>``, with any character of the
        name that is not safe in a file name replaced.
    """
    return pathlib.Path(check_path("backup_dir", backup_dir)) / _folder_name(config.name)


def fingerprint(config, data):
    """What makes a run the same run: every field of ``config`` that changes it, and the data.

    ``epochs`` counts only with a cosine learning rate, whose decay lasts the
    whole run. The data are counted and hashed as ``train_vgg`` uses them.
    """
    fields = dataclasses.asdict(config)
    for name in _NOT_FINGERPRINTED:
        fields.pop(name)
    if config.lr_schedule == "cosine":
        fields["epochs"] = config.epochs
    digest = hashlib.sha256()
    for array in (*data[0], *data[1]):
        digest.update(np.ascontiguousarray(array).tobytes())
    fields["data"] = {
        "train_examples": len(data[0][0]),
        "test_examples": len(data[1][0]),
        "sha256": digest.hexdigest(),
    }
    return fields


def epochs_backed_up(folder):
    """How many epochs the newest complete backup in ``folder`` holds; 0 if none."""
    epochs = [int(match[1]) for path in pathlib.Path(folder).glob("epoch-*") if (match := _EPOCH.match(path.name))]
    return max(epochs, default=0)


def _differences(saved, current):
    keys = sorted(set(saved) | set(current), key=lambda key: (key == "data", key))
    return [f"{key}: {saved.get(key)!r} in the backup, {current.get(key)!r} now"
            for key in keys if saved.get(key) != current.get(key)]


def _read_marker(folder):
    try:
        return json.loads((folder / BACKUP_MARKER).read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BackupError(
            f"The backup marker {folder / BACKUP_MARKER} cannot be read ({e}). Start over with --restart "
            f"(restart=True), which deletes {folder}, or choose another backup folder."
        ) from None


def _owned_folder(backup_dir, config, current):
    """``config``'s folder in ``backup_dir``, made and marked if new; refused if it is not the course's."""
    parent = pathlib.Path(check_path("backup_dir", backup_dir))
    if parent.exists() and not parent.is_dir():
        raise InvalidArgument(f"Expected `backup_dir` to be a folder. Received: backup_dir={str(parent)!r}, a file")
    folder = backup_folder(parent, config)
    if (folder / BACKUP_MARKER).is_file():
        return folder
    # A marker cut short by a crash (its temporary file alone) leaves the folder as good as empty.
    leftover = folder / (BACKUP_MARKER + ".tmp")
    if folder.exists() and (not folder.is_dir() or any(path != leftover for path in folder.iterdir())):
        raise BackupError(
            f"{folder} exists and is not a vggcourse backup (it has no {BACKUP_MARKER}), so it is neither "
            "used nor deleted. Choose another backup folder, or another configuration name."
        )
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomically(folder / BACKUP_MARKER, json.dumps({"fingerprint": current}, indent=1))
    return folder


@contextlib.contextmanager
def opened(backup_dir, config, data, *, restart=False):
    """The course's backup folder for ``config``, checked, locked for this run, and unlocked after it.

    Everything here happens before any training: the folder is made (or
    found and checked), the lock taken, and a backup of another configuration
    refused, or deleted if ``restart``.

    Raises:
        InvalidArgument: ``backup_dir`` is a file.
        BackupError: the folder exists, is not empty and is not the course's.
        BackupInUseError: another run holds the lock.
        BackupMismatchError: the backup is another configuration's (unless ``restart``).
    """
    current = fingerprint(config, data)
    folder = _owned_folder(backup_dir, config, current)
    lock = acquire_lock(folder)
    try:
        if restart:
            for path in folder.glob("epoch-*"):
                shutil.rmtree(path)
            _write_atomically(folder / BACKUP_MARKER, json.dumps({"fingerprint": current}, indent=1))
        differences = _differences(_read_marker(folder), current)
        if differences:
            raise BackupMismatchError(
                f"The backup in {folder} was made by another configuration ({'; '.join(differences)}). "
                "Either resume it with the settings it was made with, or start afresh: pass --restart "
                "(restart=True) to delete this backup, or choose another backup folder."
            )
        yield folder
    finally:
        lock.unlink(missing_ok=True)


def _write_atomically(path, text):
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


# ---------------------------------------------------------------------------
# One run at a time.


def _holder(lock):
    try:
        host, pid = lock.read_text(encoding="utf-8").split()
        return host, int(pid)
    except (OSError, ValueError):
        return None, None


def _alive(host, pid):
    if host != socket.gethostname():
        return True  # Another machine's run (a shared Drive): assume it is still going.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(folder):
    """Takes the backup's lock file, or refuses if a live run holds it. A dead run's lock is taken over."""
    lock = pathlib.Path(folder) / BACKUP_LOCK
    for _ in range(2):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            host, pid = _holder(lock)
            if pid is not None and _alive(host, pid):
                raise BackupInUseError(
                    f"Another run (process {pid} on {host}) is using the backup in {folder}. Wait for it "
                    f"to finish, or give this run another name or backup folder. If no such run exists, "
                    f"delete {lock}."
                ) from None
            lock.unlink(missing_ok=True)  # Left behind by a run that no longer exists.
            continue
        with os.fdopen(descriptor, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}\n")
        return lock
    raise BackupInUseError(f"Could not take the lock {lock}: another run took it at the same time.")


# ---------------------------------------------------------------------------
# The callback that saves and restores.


class SafeBackup(keras.callbacks.Callback):
    """Backs the run up after every epoch into ``folder``, and restores the newest backup at the start.

    Like ``keras.callbacks.BackupAndRestore`` it saves the weights, the
    optimizer's state and the epoch counter, but each epoch goes to a new
    folder that is renamed into place when complete, and the previous epoch's
    is deleted only then. A finished run deletes ``folder``; an interrupted or
    failed one leaves its last complete backup.
    """

    def __init__(self, folder, epochs):
        super().__init__()
        self.folder = pathlib.Path(folder)
        self.epochs = epochs
        self.restored_epochs = 0
        self.finished = False

    def on_train_begin(self, logs=None):
        self.restored_epochs = epochs_backed_up(self.folder)
        if not self.restored_epochs:
            return
        weights = self.folder / f"epoch-{self.restored_epochs:04d}" / _WEIGHTS
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # Its state is in the backup too.
        try:
            self.model.load_weights(weights)
        except Exception as e:  # h5py and Keras raise OSError, ValueError, KeyError... for a damaged file.
            raise BackupError(
                f"The backup {weights} is damaged and cannot be loaded ({type(e).__name__}: {e}). "
                f"Start over with --restart (restart=True), which deletes {self.folder}."
            ) from None
        self.model._initial_epoch = self.restored_epochs  # What keras.callbacks.BackupAndRestore sets.

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        complete = self.folder / f"epoch-{done:04d}"
        partial = complete.with_name(complete.name + ".tmp")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            partial.mkdir()
            self.model.save_weights(partial / _WEIGHTS)
            os.replace(partial, complete)
        except OSError as e:
            shutil.rmtree(partial, ignore_errors=True)
            kept = f"The backup of epoch {done - 1} is kept" if done > 1 else "No epoch was backed up yet"
            full = " The disk is full." if e.errno == errno.ENOSPC else ""
            raise BackupError(
                f"Could not write the backup of epoch {done} to {partial}: {e}.{full} {kept}; run the same "
                "command again to resume from it."
            ) from e
        # The new backup is complete: the previous one, and any folder a crash
        # left half-written, can go.
        for path in self.folder.glob("epoch-*"):
            if path != complete:
                shutil.rmtree(path)
        self.finished = done >= self.epochs

    def on_train_end(self, logs=None):
        if self.finished:
            shutil.rmtree(self.folder)
