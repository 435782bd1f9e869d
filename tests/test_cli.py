"""Specifications of the command line, ``python -m vggcourse``: help, trace, train and bad options."""

import json
import pathlib
import re
import subprocess
import sys
import textwrap

import keras
import pandas as pd
import pytest
import tensorflow as tf
from runs import InterruptAfterEpoch, with_callbacks
from runs import run_cli as run

from vggcourse import VGG_ARCHS, InvalidArgument, backup, cli, devices, scale_arch, totals, trace_layers, train, vgg
from vggcourse.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]

# VGG-11 with channels / 4 at 224x224x1, as chapter 3 (book/tracing.ipynb) prints it in its
# table of training configurations ("VGG-11 ÷ 4, 224 px") and its table of input sizes.
CHAPTER3_VGG11_RATIO4_224 = {"params": 43_093_322, "macs": 512_155_648, "activations": 2_297_482}

TOTAL_LABELS = {
    "params": "parameters:",
    "macs": "MACs per example:",
    "activations": "activations per example (+input):",
}


def printed_totals(out):
    """Reads the totals back from the lines that ``trace`` prints, commas and all."""
    found = {}
    for line in out.splitlines():
        for key, label in TOTAL_LABELS.items():
            if line.startswith(label):
                found[key] = int(line[len(label):].split()[0].replace(",", ""))
    return found


def python_m_vggcourse(*args):
    return subprocess.run(
        [sys.executable, "-m", "vggcourse", *args], capture_output=True, text=True, timeout=120
    )


# ---------------------------------------------------------------------------
# Help.


OPTIONS = {
    "trace": ["--arch", "--ratio", "--image-size", "--channels", "--num-classes", "--dense-units", "--csv"],
    "train": ["--preset", "--source", "--data-dir", "--backup-dir", "--checkpoint", "--history", "--verbose"],
    "bench": ["--pipeline-size", "--num-examples", "--num-batches", "--pipeline-repeats", "--preset", "--image-size",
              "--ratio", "--batch-size", "--train-steps", "--warmup-steps", "--repeats", "--no-variants",
              "--matmul-size", "--profile", "--time-to-accuracy", "--target-accuracy", "--source", "--data-dir",
              "--json"],
}


@pytest.mark.parametrize("command", OPTIONS)
def test_every_subcommand_has_help_that_lists_its_options(command, capsys):
    assert run([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: vggcourse {command}")
    listed = re.findall(r"^  (--[a-z-]+)", out, flags=re.MULTILINE)
    assert set(OPTIONS[command]) <= set(listed), set(OPTIONS[command]) - set(listed)


@pytest.mark.parametrize("command", ["trace", "train", "bench"])
def test_size_means_the_side_of_the_images_the_network_gets_in_every_command(command):
    args = cli.build_parser().parse_args([command, "--size", "64"])
    assert args.image_size == 64


def test_python_m_vggcourse_help_lists_the_subcommands_without_tensorflow_noise():
    result = python_m_vggcourse("--help")
    assert result.returncode == 0
    for command in ("trace", "train", "bench"):
        assert f"    {command} " in result.stdout
    assert result.stderr == ""


def test_train_help_has_an_option_for_every_trainconfig_field(capsys):
    run(["train", "--help"])
    out = capsys.readouterr().out
    for field in train.TrainConfig.__dataclass_fields__:
        assert f"--{field.replace('_', '-')}" in out


def test_train_help_shows_the_presets_side_by_side(capsys):
    run(["train", "--help"])
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if set(train.PRESETS) <= set(line.split()))
    assert header.split() == list(train.PRESETS)


# ---------------------------------------------------------------------------
# trace


@pytest.mark.parametrize(
    "arch, ratio, size, channels, num_classes, dense_units",
    [("vgg11", 1, 224, 1, 10, 4096), ("vgg16", 2, 64, 3, 100, 512), ("vgg19", 8, 32, 1, 10, 64)],
)
def test_trace_prints_the_totals_of_trace_layers(
    arch, ratio, size, channels, num_classes, dense_units, capsys
):
    argv = ["trace", "--arch", arch, "--ratio", str(ratio), "--size", str(size)]
    argv += ["--channels", str(channels), "--num-classes", str(num_classes)]
    argv += ["--dense-units", str(dense_units)]
    assert run(argv) == 0
    net = vgg(scale_arch(VGG_ARCHS[arch], ratio), num_classes, dense_units=dense_units)
    expected = totals(trace_layers(net, (size, size, channels)))
    assert printed_totals(capsys.readouterr().out) == expected.to_dict()


def test_trace_prints_one_row_per_layer(capsys):
    run(["trace", "--arch", "vgg16"])
    out = capsys.readouterr().out
    for layer in trace_layers(vgg(VGG_ARCHS["vgg16"]), (224, 224, 1)).layer:
        assert f"{layer} " in out


def test_trace_of_vgg11_ratio4_at_224_prints_chapter3_totals():
    # The README's example command, run as a user runs it.
    result = python_m_vggcourse("trace", "--arch", "vgg11", "--ratio", "4", "--size", "224")
    assert result.returncode == 0, result.stderr
    assert printed_totals(result.stdout) == CHAPTER3_VGG11_RATIO4_224
    assert "parameters:                            43,093,322" in result.stdout
    assert result.stderr == ""


def test_chapter3_still_shows_the_totals_the_cli_is_checked_against():
    notebook = json.loads((ROOT / "book" / "tracing.ipynb").read_text())
    outputs = json.dumps([cell.get("outputs", []) for cell in notebook["cells"]])
    for value in CHAPTER3_VGG11_RATIO4_224.values():
        assert str(value) in outputs


def test_trace_writes_the_table_to_csv(tmp_path, capsys):
    path = tmp_path / "tables" / "vgg13.csv"
    assert run(["trace", "--arch", "vgg13", "--ratio", "4", "--csv", str(path)]) == 0
    table = pd.read_csv(path)
    expected = trace_layers(vgg(scale_arch(VGG_ARCHS["vgg13"], 4)), (224, 224, 1))
    assert list(table.columns) == list(expected.columns)
    assert table.layer.tolist() == expected.layer.tolist()
    assert table.macs.sum() == expected.macs.sum()


# ---------------------------------------------------------------------------
# Bad options: a one-line message, exit status 2, never a traceback.


@pytest.mark.parametrize(
    "argv, says",
    [
        (["trace", "--arch", "vgg12"], "invalid choice: 'vgg12'"),
        (["trace", "--ratio", "0"], "Received: ratio=0"),
        (["trace", "--ratio", "128"], "Expected `ratio` <= 64"),
        (["trace", "--size", "16"], "The smallest square input it takes is 32x32"),
        (["trace", "--size", "abc"], "invalid int value: 'abc'"),
        (["trace", "--channels", "0"], "input_shape=(224, 224, 0)"),
        (["train", "--epochs", "-1"], "Received: epochs=-1"),
        (["train", "--preset", "huge"], "invalid choice: 'huge'"),
        (["train", "--size", "31"], "Received: image_size=31"),
        (["train", "--lr-schedule", "linear"], "Received: lr_schedule='linear'"),
        (["train", "--init", "lecun"], "Received: init='lecun'"),
        (["train", "--train-examples", "some"], "expected an integer or 'all'"),
        (["train", "--checkpoint", "model.h5"], "Received: --checkpoint=model.h5"),
        (["train", "--source", "sample", "--data-dir", "data"], "source='sample', data_dir='data'"),
        (["bench", "--source", "web"], "invalid choice: 'web'"),
        (["bench", "--num-examples", "0"], "Received: num_examples=0"),
        (["bench", "--preset", "smoke", "--size", "16"], "Received: image_size=16"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_options_exit_2_with_one_line_on_stderr(argv, says, capsys):
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("vggcourse") and "error: " in err and says in err
    assert "Traceback" not in err


class _TensorFlowFailsDuringTraining(keras.callbacks.Callback):
    """Runs an op that TensorFlow refuses, as a real failure inside a training step would."""

    def on_train_batch_end(self, batch, logs=None):
        tf.reshape(tf.zeros(3), (2,))


def test_an_error_inside_training_is_not_mistaken_for_a_bad_option(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "train_vgg", with_callbacks(train.train_vgg, _TensorFlowFailsDuringTraining()))
    argv = ["train", "--preset", "smoke", "--source", "sample", "--backup-dir", str(tmp_path / "b")]
    with pytest.raises(tf.errors.InvalidArgumentError):
        main(argv)


def test_a_value_error_that_the_course_did_not_raise_keeps_its_traceback(monkeypatch):
    def keras_refuses(config, data, **kwargs):
        keras.layers.Dense(3)(tf.zeros((2,)))  # Keras' own ValueError, not one of the course's checks.

    monkeypatch.setattr(train, "train_vgg", keras_refuses)
    with pytest.raises(ValueError) as info:
        main(["train", "--preset", "smoke", "--source", "sample"])
    assert not isinstance(info.value, InvalidArgument)


TENSORFLOW_FAILS_IN_TRAIN = textwrap.dedent(
    """
    import sys

    import tensorflow as tf

    from vggcourse import cli, train

    real_train_vgg = train.train_vgg


    class Fails(tf.keras.callbacks.Callback):
        # Before the first step, so that nothing is traced or trained: the
        # in-process test above fails inside a step.
        def on_train_begin(self, logs=None):
            tf.reshape(tf.zeros(3), (2,))


    def failing(config, data, *, callbacks=(), **kwargs):
        return real_train_vgg(config, data, callbacks=[*callbacks, Fails()], **kwargs)


    train.train_vgg = failing
    sys.exit(cli.main(sys.argv[1:]))
    """
)


def test_a_tensorflow_error_inside_training_reaches_the_user_with_its_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", TENSORFLOW_FAILS_IN_TRAIN, "train", "--preset", "smoke", "--source", "sample",
         "--backup-dir", str(tmp_path / "backup"), "--verbose", "0"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "InvalidArgumentError" in result.stderr and "reshape" in result.stderr.lower()


def test_missing_data_exits_1_with_one_line_naming_the_files(tmp_path, capsys):
    assert run(["train", "--source", "dir", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "train-images-idx3-ubyte.gz" in err
    assert "Traceback" not in err


def test_a_bad_option_from_the_shell_gives_no_traceback():
    result = python_m_vggcourse("trace", "--size", "16")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "32x32" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------
# train: choosing the configuration.


CPU = devices.Devices("CPU")
T4 = devices.Devices("GPU", count=1, name="Tesla T4", compute_capability=(7, 5))


def config_for(argv, devices, monkeypatch, smoke="0"):
    monkeypatch.setenv(train.SMOKE_VARIABLE, smoke)
    args = cli.build_parser().parse_args(["train", *argv])
    return cli.train_config(args, devices)[0]


def test_train_overrides_change_only_the_fields_given(monkeypatch):
    config = config_for(["--preset", "cpu", "--epochs", "2", "--lr", "0.01"], CPU, monkeypatch)
    assert config.replace(name="cpu") == train.PRESETS["cpu"].replace(epochs=2, learning_rate=0.01)


def test_train_overridden_configuration_gets_its_own_backup_folder(monkeypatch):
    plain = config_for(["--preset", "cpu"], CPU, monkeypatch)
    changed = config_for(["--preset", "cpu", "--epochs", "2"], CPU, monkeypatch)
    assert plain.name == "cpu"
    assert backup.backup_folder("runs", changed) != backup.backup_folder("runs", plain)


def test_train_all_means_no_limit_on_examples(monkeypatch):
    config = config_for(["--preset", "smoke", "--train-examples", "all"], CPU, monkeypatch)
    assert config.train_examples is None


def test_train_auto_preset_is_auto_config(monkeypatch):
    assert config_for([], T4, monkeypatch) == train.auto_config(T4, verbose=False)
    assert config_for([], CPU, monkeypatch) == train.PRESETS["cpu"]


def test_train_gpu_preset_on_a_gpu_keeps_mixed_precision_and_xla(monkeypatch):
    config = config_for(["--preset", "gpu"], T4, monkeypatch)
    assert (config.precision, config.jit_compile) == ("mixed_float16", True)


def test_train_smoke_variable_forces_the_smoke_preset(monkeypatch):
    assert config_for(["--preset", "gpu"], T4, monkeypatch, smoke="1").name == "smoke"


# ---------------------------------------------------------------------------
# train: running.


def test_train_smoke_writes_a_history_row_per_epoch_and_a_loadable_checkpoint(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(train.SMOKE_VARIABLE, "1")
    history, checkpoint, backup_dir = tmp_path / "h.csv", tmp_path / "m.keras", tmp_path / "backup"
    argv = ["train", "--preset", "smoke", "--source", "sample", "--history", str(history)]
    argv += ["--backup-dir", str(backup_dir), "--checkpoint", str(checkpoint)]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "TrainConfig 'smoke'" in out and "Last epoch: " in out
    assert "examples/s after the first epoch's warm-up" in out
    table = pd.read_csv(history)
    assert table.epoch.tolist() == list(range(train.PRESETS["smoke"].epochs))
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "examples_per_second"} <= set(table.columns)
    # The smoke preset leaves VGG's initial plateau, as the chapters' smoke runs need.
    assert table.loss.iloc[-1] < table.loss.iloc[0] - 0.2
    assert table.val_loss.iloc[-1] < table.val_loss.iloc[0]
    # A finished run leaves no backup behind, and its model loads.
    assert list(backup_dir.iterdir()) == []
    assert keras.models.load_model(checkpoint).output_shape == (None, 10)


def test_train_interrupted_run_resumes_and_its_history_gets_every_epoch_once(
    tmp_path, monkeypatch, capsys
):
    history, backup_dir = tmp_path / "h.csv", tmp_path / "backup"
    argv = ["train", "--preset", "smoke", "--source", "sample", "--train-examples", "64"]
    argv += ["--val-examples", "32", "--history", str(history), "--backup-dir", str(backup_dir)]
    train_vgg = train.train_vgg
    monkeypatch.setattr(train, "train_vgg", with_callbacks(train_vgg, InterruptAfterEpoch(1)))
    assert run(argv) == 130
    assert "run the same command again" in capsys.readouterr().err.lower()
    assert len(pd.read_csv(history)) == 2 and backup.epochs_backed_up(next(backup_dir.iterdir())) == 2

    monkeypatch.setattr(train, "train_vgg", train_vgg)
    assert run(argv) == 0
    assert "resuming" in capsys.readouterr().out
    assert pd.read_csv(history).epoch.tolist() == [0, 1, 2]


def test_train_takes_batch_norm_and_the_head_as_overrides(monkeypatch):
    config = config_for(["--preset", "smoke", "--batch-norm", "--head", "gap"], CPU, monkeypatch)
    assert (config.batch_norm, config.head) == (True, "gap")
    assert config_for(["--preset", "smoke", "--no-batch-norm"], CPU, monkeypatch).batch_norm is False
