"""vggcourse.pretrained: the shipped trained VGG-11, verified by SHA-256, and how to regenerate it."""

import json
import pathlib
import re
import runpy
import sys
import warnings

import numpy as np
import pytest

import vggcourse
from vggcourse import pretrained
from vggcourse.data import DataIntegrityError

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "book" / "what_vgg_learns.ipynb"
GLUE_RECORD = "application/papermill.record/text/plain"


@pytest.fixture(scope="module")
def net():
    return pretrained.load_trained_vgg()


def test_the_shipped_file_matches_its_recorded_sha256_and_stays_small():
    assert pretrained.file_sha256(pretrained.WEIGHTS_PATH) == pretrained.WEIGHTS_SHA256
    assert pretrained.WEIGHTS_PATH.stat().st_size < 8 * 2**20
    assert pretrained.stored_dtypes(pretrained.WEIGHTS_PATH) == {"float16"}


def test_the_shipped_network_is_the_cpu_presets_network_in_float32(net):
    reference = vggcourse.build_model(vggcourse.PRESETS["cpu"])
    vggcourse.assert_same_architecture(net, reference, (1, 28, 28, 1))
    assert {w.dtype for w in net.weights} == {"float32"}
    assert net.count_params() == reference.count_params()


def corrupted_copy(tmp_path, change):
    content = bytearray(pretrained.WEIGHTS_PATH.read_bytes())
    path = tmp_path / "weights.keras"
    path.write_bytes(change(content))
    return path


@pytest.mark.parametrize("change", [
    lambda content: bytes(content[: len(content) // 2]),                        # truncated
    lambda content: bytes(content[:1000] + bytes([content[1000] ^ 1]) + content[1001:]),  # a bit flipped
])
def test_a_corrupt_or_truncated_file_is_refused_by_name(tmp_path, change):
    path = corrupted_copy(tmp_path, change)
    with pytest.raises(DataIntegrityError) as raised:
        pretrained.load_trained_vgg(path, sha256=pretrained.WEIGHTS_SHA256)
    assert str(path) in str(raised.value)
    assert "truncated or corrupt" in str(raised.value)


def test_a_file_that_keras_cannot_load_is_reported_by_name(tmp_path):
    path = tmp_path / "not-a-model.keras"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(DataIntegrityError) as raised:
        pretrained.load_trained_vgg(path, sha256=pretrained.file_sha256(path))
    assert str(path) in str(raised.value)


def test_another_network_is_refused_with_the_command_that_regenerates_the_file(tmp_path):
    path = tmp_path / "smoke.keras"
    vggcourse.build_model(vggcourse.PRESETS["smoke"]).save(path)
    with pytest.raises(ValueError) as raised:
        pretrained.load_trained_vgg(path, sha256=pretrained.file_sha256(path))
    assert "is not the 'cpu' preset's network" in str(raised.value)
    assert "python -m vggcourse.pretrained convert" in str(raised.value)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"path": "x.keras"}, TypeError, "Received: path='x.keras', sha256=None"),
    ({"sha256": "abc"}, ValueError, "Received: sha256='abc'"),
    ({"path": 3, "sha256": "0" * 64}, TypeError, "Received: path=3"),
    ({"path": "/nonexistent/x.keras", "sha256": "0" * 64}, FileNotFoundError, "/nonexistent/x.keras"),
])
def test_bad_arguments_are_refused(kwargs, error, message):
    with pytest.raises(error) as raised:
        pretrained.load_trained_vgg(**kwargs)
    assert message in str(raised.value)


def glued(notebook, name):
    """The value a chapter glued under ``name``, as its stored output holds it."""
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook", {})
            if scrapbook.get("name") == name:
                return output["data"][GLUE_RECORD]
    raise LookupError(f"{notebook.name} glues no value named {name!r}")


def test_the_full_test_set_accuracy_is_the_one_the_chapter_states(net):
    (_, _), (x_test, y_test) = vggcourse.load_fashion_mnist()
    if len(y_test) != 10_000:
        pytest.skip("the full Fashion-MNIST test set is not installed here, only the embedded "
                    "sample (apt-get install dataset-fashion-mnist, or go online)")
    accuracy = float((vggcourse.predict_labels(net, x_test) == y_test).mean())
    assert float(glued(CHAPTER, "test_accuracy")) == accuracy
    assert accuracy > 0.9


def test_the_documented_commands_regenerate_a_file_that_loads(tmp_path, monkeypatch, capsys):
    # The commands of pretrained.REGENERATE, on a sliver of the sample so that
    # they take seconds: train the cpu preset, then convert the checkpoint.
    from vggcourse import cli

    assert pretrained.REGENERATE.splitlines()[0].startswith(
        "python -m vggcourse train --preset cpu --checkpoint ")
    monkeypatch.delenv(vggcourse.train.SMOKE_VARIABLE, raising=False)
    checkpoint = tmp_path / "cpu.keras"
    # Two epochs: the preset warms up for one. The embedded sample has 250
    # images per class, too few for the preset's 5,000-image validation split.
    status = cli.main(["train", "--preset", "cpu", "--epochs", "2", "--train-examples", "256",
                       "--val-split", "100", "--source", "sample", "--verbose", "0",
                       "--backup-dir", str(tmp_path / "backup"), "--checkpoint", str(checkpoint)])
    assert status == 0
    output = tmp_path / "weights.keras"
    capsys.readouterr()
    assert pretrained.main(["convert", str(checkpoint), "--output", str(output),
                            "--source", "sample"]) == 0
    printed = capsys.readouterr().out
    digest = re.search(r'WEIGHTS_SHA256 = "([0-9a-f]{64})"', printed).group(1)
    assert digest == pretrained.file_sha256(output)
    loaded = pretrained.load_trained_vgg(output, sha256=digest)
    trained = pretrained._load(checkpoint)
    dtype = pretrained.stored_dtypes(output).pop()
    for ours, theirs in zip(loaded.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(ours, np.asarray(theirs).astype(dtype).astype("float32"))


def test_the_command_line_is_a_module_with_help(monkeypatch, capsys):
    # As `python -m vggcourse.pretrained --help` runs it, in this process.
    monkeypatch.setattr(sys, "argv", ["vggcourse.pretrained", "--help"])
    with warnings.catch_warnings():
        # runpy warns when the module it runs was imported before it ran.
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(SystemExit) as exit_:
            runpy.run_module("vggcourse.pretrained", run_name="__main__")
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "convert" in out and "verify" in out
    assert "python -m vggcourse train --preset cpu" in out
