"""Specifications of vggcourse.data: where Fashion-MNIST comes from, and the pipeline."""

import gzip
import hashlib
import importlib.util
import pathlib
import struct
import time

import numpy as np
import pytest
import tensorflow as tf

from vggcourse import data
from vggcourse.errors import InvalidArgument

REPO = pathlib.Path(__file__).resolve().parents[1]
REAL_DEBIAN_DIR = data.DEBIAN_DIR
HAVE_DEBIAN_FILES = all((REAL_DEBIAN_DIR / spec.filename).is_file() for spec in data._FILES.values())
needs_debian = pytest.mark.skipif(
    not HAVE_DEBIAN_FILES, reason="needs `apt-get install dataset-fashion-mnist` (CI installs it)"
)


# ---------------------------------------------------------------------------
# A miniature "official release": four idx files in the official format, with
# the checksum table patched to match them. Tests of the source order then run
# in milliseconds and touch nothing outside their temporary directory.


def _idx(array):
    if array.ndim == 3:
        header = struct.pack(">IIII", 2051, len(array), 28, 28)
    else:
        header = struct.pack(">II", 2049, len(array))
    return header + array.tobytes()


@pytest.fixture
def release(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(30) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8),
        "y_test": np.arange(10, dtype=np.uint8),
    }
    folder = tmp_path / "release"
    folder.mkdir()
    specs = {}
    for key, spec in data._FILES.items():
        content = _idx(arrays[key])
        (folder / spec.filename).write_bytes(gzip.compress(content, mtime=0))
        specs[key] = spec._replace(num_bytes=len(content), sha256=hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(data, "_FILES", specs)
    return folder, arrays


@pytest.fixture(autouse=True)
def hermetic(tmp_path, monkeypatch):
    """No Debian files, an empty Keras home, and a download that cannot succeed."""
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(data, "KERAS_ORIGIN", (tmp_path / "offline").as_uri() + "/")
    monkeypatch.delenv(data.DATA_DIR_VARIABLE, raising=False)


def _copy(folder, destination):
    destination.mkdir(parents=True)
    for spec in data._FILES.values():
        (destination / spec.filename).write_bytes((folder / spec.filename).read_bytes())
    return destination


def _assert_same(loaded, arrays):
    (x_train, y_train), (x_test, y_test) = loaded
    for key, value in zip(("x_train", "y_train", "x_test", "y_test"), (x_train, y_train, x_test, y_test)):
        assert value.dtype == np.uint8
        np.testing.assert_array_equal(value, arrays[key])


# ---------------------------------------------------------------------------
# The source order of source="auto".


def _unwrapped(capsys):
    """What was printed, with the line breaks that fit it to the column undone."""
    return " ".join(capsys.readouterr().out.split())


def test_auto_uses_data_dir_argument_before_environment_and_debian(release, tmp_path, monkeypatch, capsys):
    folder, arrays = release
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(_copy(folder, tmp_path / "env")))
    monkeypatch.setattr(data, "DEBIAN_DIR", _copy(folder, tmp_path / "debian"))
    _assert_same(data.load_fashion_mnist(data_dir=folder), arrays)
    assert f"from data_dir {folder}:" in _unwrapped(capsys)


def test_auto_uses_environment_variable_before_debian(release, tmp_path, monkeypatch, capsys):
    folder, arrays = release
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(folder))
    monkeypatch.setattr(data, "DEBIAN_DIR", _copy(folder, tmp_path / "debian"))
    _assert_same(data.load_fashion_mnist(), arrays)
    assert f"from {data.DATA_DIR_VARIABLE} {folder}:" in _unwrapped(capsys)


def test_auto_uses_debian_files_before_keras(release, monkeypatch, capsys):
    folder, arrays = release
    monkeypatch.setattr(data, "DEBIAN_DIR", folder)
    monkeypatch.setattr(data, "_from_keras", lambda: pytest.fail("Keras was tried before Debian"))
    _assert_same(data.load_fashion_mnist(), arrays)
    assert "Debian's dataset-fashion-mnist" in _unwrapped(capsys)


def test_auto_uses_keras_cache_without_downloading(release, tmp_path, capsys):
    folder, arrays = release
    cache = _copy(folder, tmp_path / "keras-home" / "datasets" / "fashion-mnist")
    # The origin in `hermetic` does not exist, so any download would fail.
    _assert_same(data.load_fashion_mnist(), arrays)
    assert f"from the Keras cache {cache}:" in _unwrapped(capsys)


def test_auto_downloads_through_keras_into_its_cache(release, tmp_path, monkeypatch):
    folder, arrays = release
    monkeypatch.setattr(data, "KERAS_ORIGIN", folder.as_uri() + "/")
    _assert_same(data.load_fashion_mnist(), arrays)
    cache = tmp_path / "keras-home" / "datasets" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(s.filename for s in data._FILES.values())


def test_failed_download_leaves_no_cache_and_falls_back_to_the_sample(tmp_path, capsys):
    start = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()
    assert time.perf_counter() - start < 10
    assert (len(x_train), len(x_test)) == (2_500, 500)
    out = capsys.readouterr().out
    assert "the download failed" in out
    assert "SAMPLE" in out and "NOT the full data set" in out and "apt-get install" in out
    # Keras leaves an empty folder behind after a failed download; it must be
    # gone, with the folders made for it.
    assert not (tmp_path / "keras-home").exists()


# ---------------------------------------------------------------------------
# Integrity: a damaged file is named, and never returned.


def _truncate(path):
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def _replace_payload(path):
    # A valid gzip stream, but not the release's bytes: only the checksum can tell.
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[-1] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(content)))


def _garble(path):
    path.write_bytes(b"<html>404 Not Found</html>")


@pytest.mark.parametrize("damage", [_truncate, _replace_payload, _garble])
@pytest.mark.parametrize("key", ["x_train", "y_test"])
def test_damaged_file_raises_an_error_naming_it(release, damage, key):
    folder, _ = release
    path = folder / data._FILES[key].filename
    damage(path)
    with pytest.raises(data.DataIntegrityError, match=str(path)):
        data.load_fashion_mnist(data_dir=folder)


def test_damaged_debian_file_is_an_error_not_a_fallback(release, monkeypatch):
    folder, _ = release
    monkeypatch.setattr(data, "DEBIAN_DIR", folder)
    _truncate(folder / data._FILES["x_test"].filename)
    with pytest.raises(data.DataIntegrityError, match="t10k-images-idx3-ubyte.gz"):
        data.load_fashion_mnist()


def test_damaged_keras_cache_file_is_reported_and_removed(release, tmp_path):
    folder, arrays = release
    cache = _copy(folder, tmp_path / "keras-home" / "datasets" / "fashion-mnist")
    bad = cache / data._FILES["x_train"].filename
    _truncate(bad)
    with pytest.raises(data.DataIntegrityError, match=str(bad)):
        data.load_fashion_mnist(source="keras")
    assert not bad.exists()
    assert (cache / data._FILES["y_train"].filename).exists()


def test_a_keras_cache_file_that_cannot_be_read_is_kept(release, tmp_path, monkeypatch):
    # Only a wrong checksum (or a broken gzip stream) makes a file worth deleting;
    # a permission error says nothing about its content.
    folder, _ = release
    cache = _copy(folder, tmp_path / "keras-home" / "datasets" / "fashion-mnist")
    locked = cache / data._FILES["x_train"].filename
    gzip_open = data.gzip.open

    def refused(path, *args, **kwargs):
        if pathlib.Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return gzip_open(path, *args, **kwargs)

    monkeypatch.setattr(data.gzip, "open", refused)
    with pytest.raises(PermissionError):
        data.load_fashion_mnist(source="keras")
    assert sorted(path.name for path in cache.iterdir()) == sorted(spec.filename for spec in data._FILES.values())


def test_missing_file_in_data_dir_is_named(release):
    folder, _ = release
    (folder / data._FILES["y_train"].filename).unlink()
    with pytest.raises(data.DataNotFoundError, match="train-labels-idx1-ubyte.gz"):
        data.load_fashion_mnist(data_dir=folder)


# ---------------------------------------------------------------------------
# Explicit sources and argument errors.


def test_explicit_source_uses_only_that_source(release, monkeypatch):
    folder, arrays = release
    monkeypatch.setattr(data, "DEBIAN_DIR", folder)
    _assert_same(data.load_fashion_mnist(source="debian"), arrays)
    _assert_same(data.load_fashion_mnist(source="dir", data_dir=folder), arrays)
    (x_train, _), _ = data.load_fashion_mnist(source="sample")
    assert len(x_train) == 2_500


def test_explicit_source_that_is_unavailable_raises(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="'debian'"):
        data.load_fashion_mnist(source="debian")
    with pytest.raises(data.DataNotFoundError, match="'keras'"):
        data.load_fashion_mnist(source="keras")
    assert not (tmp_path / "keras-home" / "datasets" / "fashion-mnist").exists()
    with pytest.raises(InvalidArgument, match="VGGCOURSE_DATA_DIR"):
        data.load_fashion_mnist(source="dir")


def test_bad_arguments_raise_keras_style_errors(tmp_path):
    with pytest.raises(InvalidArgument, match=r"Received: source='kaggle'"):
        data.load_fashion_mnist(source="kaggle")
    with pytest.raises(InvalidArgument, match=r"Received: source=3"):
        data.load_fashion_mnist(source=3)
    with pytest.raises(InvalidArgument, match=r"Received: data_dir=42"):
        data.load_fashion_mnist(data_dir=42)
    with pytest.raises(InvalidArgument, match=r"Received: source='sample', data_dir="):
        data.load_fashion_mnist(source="sample", data_dir=tmp_path)


# ---------------------------------------------------------------------------
# The embedded sample.


def test_sample_is_small_balanced_and_matches_its_checksum():
    content = data.SAMPLE_PATH.read_bytes()
    assert len(content) <= 1.5 * 2**20
    assert hashlib.sha256(content).hexdigest() == data.SAMPLE_SHA256
    (x_train, y_train), (x_test, y_test) = data._load_sample()
    assert x_train.shape == (2_500, 28, 28) and x_test.shape == (500, 28, 28)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), np.full(10, 250))
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), np.full(10, 50))
    assert (data.SAMPLE_PATH.parent / "LICENSE").read_text().count("Zalando SE") == 1


def test_corrupt_sample_is_detected(tmp_path, monkeypatch):
    damaged = bytearray(data.SAMPLE_PATH.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    path = tmp_path / "sample.npz"
    path.write_bytes(bytes(damaged))
    monkeypatch.setattr(data, "SAMPLE_PATH", path)
    with pytest.raises(data.DataIntegrityError, match="sample.npz"):
        data.load_fashion_mnist(source="sample")


@needs_debian
def test_sample_is_made_of_official_images_by_the_repository_script(tmp_path):
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "scripts" / "make_sample.py")
    make_sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_sample)
    rebuilt = tmp_path / "rebuilt.npz"
    rebuilt.write_bytes(make_sample.build_sample(REAL_DEBIAN_DIR))
    # Arrays, not bytes: another zlib may compress the same arrays differently.
    with np.load(rebuilt, allow_pickle=False) as ours, np.load(data.SAMPLE_PATH, allow_pickle=False) as shipped:
        assert sorted(ours.files) == sorted(shipped.files)
        for name in ours.files:
            np.testing.assert_array_equal(ours[name], shipped[name])


# ---------------------------------------------------------------------------
# The real files, where Debian's package is installed.


@needs_debian
def test_debian_files_give_the_full_verified_data_set(monkeypatch, capsys):
    monkeypatch.setattr(data, "DEBIAN_DIR", REAL_DEBIAN_DIR)
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()
    assert "Debian's dataset-fashion-mnist" in _unwrapped(capsys)
    assert x_train.shape == (60_000, 28, 28) and x_test.shape == (10_000, 28, 28)
    # Facts from the release: the first labels, 6,000 + 1,000 images per
    # class, and the pixel mean and standard deviation on the 0-1 scale.
    np.testing.assert_array_equal(y_train[:10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
    np.testing.assert_array_equal(np.bincount(y_train), np.full(10, 6_000))
    np.testing.assert_array_equal(np.bincount(y_test), np.full(10, 1_000))
    assert x_train.mean() / 255 == pytest.approx(0.2860, abs=5e-5)
    assert (x_train / 255).std() == pytest.approx(0.3530, abs=5e-5)


# ---------------------------------------------------------------------------
# The pipeline.


def test_pipeline_yields_uint8_batches_of_28x28x1_images():
    x = np.zeros((300, 28, 28), np.uint8)
    y = np.arange(300, dtype=np.uint8) % 10
    ds = data.make_dataset(x, y, batch_size=128, shuffle=True, epoch=0)
    assert int(ds.cardinality()) == 3
    sizes = []
    for images, labels in ds:
        assert images.dtype == tf.uint8 and labels.dtype == tf.uint8
        assert images.shape[1:] == (28, 28, 1)
        sizes.append(len(labels))
    assert sizes == [128, 128, 44]


def test_pipeline_shuffles_across_batches_not_within_them():
    n = 1_000
    x = np.zeros((n, 28, 28), np.uint8)
    y = np.arange(n, dtype=np.int32)
    batches = [labels.numpy() for _, labels in data.make_dataset(x, y, 100, shuffle=True, epoch=0, num_classes=n)]
    # Every example once per epoch...
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), y)
    # ...and the first batch draws from the whole data set, not from its first
    # hundred examples as a shuffle after batching (or a small buffer) would.
    assert batches[0].min() < 100 < 900 < batches[0].max()
    assert len(set(batches[0] // 100)) >= 8


def test_pipeline_without_shuffle_keeps_the_order():
    x = np.zeros((10, 28, 28, 1), np.uint8)
    y = np.arange(10, dtype=np.uint8)
    labels = np.concatenate([b.numpy() for _, b in data.make_dataset(x, y, 4)])
    np.testing.assert_array_equal(labels, y)


def _first_labels(ds):
    return next(iter(ds))[1].numpy()


def test_epoch_order_is_a_function_of_seed_and_epoch_only():
    x = np.zeros((500, 28, 28), np.uint8)
    y = np.arange(500, dtype=np.int32)
    epoch = tf.Variable(0, dtype=tf.int64)
    ds = data.make_dataset(x, y, 50, shuffle=True, seed=7, epoch=epoch, num_classes=500)
    epoch0 = _first_labels(ds)
    # Keras makes the next epoch's iterator before `on_epoch_begin` sets the
    # variable: the order must be read when the first batch is drawn.
    iterator = iter(ds)
    epoch.assign(1)
    epoch1 = next(iterator)[1].numpy()
    assert not np.array_equal(epoch0, epoch1)
    epoch.assign(0)
    np.testing.assert_array_equal(_first_labels(ds), epoch0)
    np.testing.assert_array_equal(
        _first_labels(data.make_dataset(x, y, 50, shuffle=True, seed=7, epoch=1, num_classes=500)), epoch1
    )
    assert not np.array_equal(
        _first_labels(data.make_dataset(x, y, 50, shuffle=True, seed=8, epoch=0, num_classes=500)), epoch0
    )


def _augmented(x, epoch, **augment):
    y = np.arange(len(x), dtype=np.uint8) % 10
    dataset = data.make_dataset(x, y, 8, shuffle=True, seed=3, epoch=epoch, **augment)
    return np.concatenate([images.numpy() for images, _ in dataset])


def test_flips_and_shifts_move_each_training_image_as_a_function_of_seed_epoch_and_batch():
    # One bright pixel per image, at a place of its own: where it lands says how the image moved.
    x = np.zeros((16, 28, 28), np.uint8)
    x[np.arange(16), np.arange(16) + 6, np.arange(16) % 4 + 12] = 255
    where = lambda images: np.argwhere(images[..., 0] > 0)[:, 1:]  # noqa: E731

    def moves(epoch, **augment):
        images = _augmented(x, epoch, **augment)  # In the order of the epoch, as without augmentation.
        assert images.dtype == np.uint8 and images.shape == (16, 28, 28, 1)
        # Each image keeps its one bright pixel: nothing is lost, nothing invented.
        assert ((images > 0).sum(axis=(1, 2, 3)) == 1).all()
        return where(images), where(_augmented(x, epoch))

    flipped, start = moves(0, flip=True)
    mirrored = flipped[:, 1] == 27 - start[:, 1]
    assert (mirrored | (flipped == start).all(axis=1)).all() and 3 < mirrored.sum() < 13
    shifted, start = moves(0, shift=2)
    assert np.abs(shifted - start).max() <= 2 and (shifted != start).any()
    # The same seed and epoch give the same moves; another epoch, others.
    np.testing.assert_array_equal(_augmented(x, 0, flip=True, shift=2), _augmented(x, 0, flip=True, shift=2))
    later, start_later = moves(1, shift=2)
    assert not np.array_equal(shifted - start, later - start_later)


def test_pipeline_rejects_what_belongs_in_the_model_or_the_loop():
    y = np.zeros(4, np.uint8)
    with pytest.raises(InvalidArgument, match=r"Received: x with shape \(4, 28, 28\) and dtype float32"):
        data.make_dataset(np.zeros((4, 28, 28), np.float32), y, 2)
    with pytest.raises(InvalidArgument, match=r"Received: x with shape \(4, 32, 32\)"):
        data.make_dataset(np.zeros((4, 32, 32), np.uint8), y, 2)
    with pytest.raises(InvalidArgument, match=r"Received: epoch=None"):
        data.make_dataset(np.zeros((4, 28, 28), np.uint8), y, 2, shuffle=True)
    with pytest.raises(InvalidArgument, match=r"Received: batch_size=0"):
        data.make_dataset(np.zeros((4, 28, 28), np.uint8), y, 0)
    with pytest.raises(InvalidArgument, match=r"only training data is augmented.*Received: flip=True"):
        data.make_dataset(np.zeros((4, 28, 28), np.uint8), y, 2, flip=True)
    with pytest.raises(InvalidArgument, match=r"Received: shift=9"):
        data.make_dataset(np.zeros((4, 28, 28), np.uint8), y, 2, shuffle=True, epoch=0, shift=9)


def test_validation_split_is_stratified_seeded_and_disjoint_from_what_it_keeps():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 2000)
    x = rng.integers(0, 256, (2000, 28, 28), dtype=np.uint8)
    x[:, 0, 0] = np.arange(2000) % 256  # tell the images apart
    x[:, 0, 1] = np.arange(2000) // 256
    (x_train, y_train), (x_val, y_val) = data.validation_split(x, y, 500, seed=1)
    assert len(x_val) == 500 and len(x_train) == 1500
    assert np.bincount(y_val, minlength=10).tolist() == [50] * 10
    ids = lambda images: set((images[:, 0, 1].astype(int) * 256 + images[:, 0, 0]).tolist())  # noqa: E731
    assert ids(x_train).isdisjoint(ids(x_val)) and len(ids(x_train) | ids(x_val)) == 2000
    again = data.validation_split(x, y, 500, seed=1)[1][1]
    other = data.validation_split(x, y, 500, seed=2)[1][1]
    assert np.array_equal(again, y_val) and not np.array_equal(
        data.validation_split(x, y, 500, seed=2)[1][0], x_val
    )
    assert len(other) == 500


def test_the_validation_split_of_the_training_images_shares_no_image_with_the_test_set():
    (x_train, y_train), (x_test, _) = data.load_fashion_mnist()
    _, (x_val, _) = data.validation_split(x_train, y_train, 500)
    test_images = {image.tobytes() for image in x_test}
    assert not any(image.tobytes() in test_images for image in x_val)


@pytest.mark.parametrize(
    "num_val, says",
    [(55, r"multiple of 10 .*Received: num_val=55"), (0, r"Received: num_val=0"), (20000, "rarest class")],
)
def test_validation_split_refuses_sizes_it_cannot_stratify(num_val, says):
    y = np.arange(1000) % 10
    with pytest.raises(InvalidArgument, match=says):
        data.validation_split(np.zeros((1000, 28, 28), np.uint8), y, num_val)
