"""Specifications of vggcourse.train: presets, devices, the model, and exact resume."""

import dataclasses
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from runs import Disconnect, InterruptAfterEpoch, image_ids, numbered_data

import vggcourse
from vggcourse import InvalidArgument, data, devices, train

T4 = devices.Devices("GPU", count=1, name="Tesla T4", compute_capability=(7, 5))
P100 = devices.Devices("GPU", count=1, name="Tesla P100-PCIE-16GB", compute_capability=(6, 0))
CPU = devices.Devices("CPU")


def tiny(**changes):
    """The smoke preset, cut down further for tests that train several times."""
    settings = dict(train_examples=256, val_examples=64, epochs=3, seed=3)
    settings.update(changes)
    return train.PRESETS["smoke"].replace(**settings)


# ---------------------------------------------------------------------------
# Presets and the automatic choice.


def test_gpu_preset_is_d2l_vgg_setting():
    gpu = train.PRESETS["gpu"]
    assert (gpu.arch, gpu.ratio, gpu.image_size) == ("vgg11", 4, 224)
    assert (gpu.learning_rate, gpu.momentum, gpu.lr_schedule) == (0.05, 0.0, "constant")
    assert (gpu.batch_size, gpu.epochs, gpu.dense_units, gpu.dropout) == (128, 10, 4096, 0.5)
    assert (gpu.train_examples, gpu.val_examples) == (None, None)


def test_cpu_preset_trains_on_all_the_data_at_a_small_image_size():
    cpu = train.PRESETS["cpu"]
    assert (cpu.arch, cpu.ratio, cpu.image_size) == ("vgg11", 4, 32)
    assert (cpu.train_examples, cpu.val_examples) == (None, None)


def test_gpu_recipe_preset_is_d2ls_network_and_images_trained_with_the_cpu_presets_recipe():
    gpu, cpu, mixed = (train.PRESETS[name] for name in ("gpu", "cpu", "gpu_recipe"))
    assert mixed.name == "gpu_recipe"
    for field in dataclasses.fields(mixed):
        if field.name != "name":
            source = cpu if field.name in train.RECIPE_FIELDS else gpu
            assert getattr(mixed, field.name) == getattr(source, field.name), field.name
    # The recipe changes what the ablation changed; the network and images stay d2l's.
    assert (mixed.image_size, mixed.dense_units, mixed.epochs) == (224, 4096, 10)
    assert (mixed.init, mixed.nesterov, mixed.lr_schedule) == ("he", True, "cosine")


def test_with_recipe_refuses_what_is_not_a_config_by_name():
    with pytest.raises(InvalidArgument, match="Expected `recipe` to be a TrainConfig. Received: recipe of type dict"):
        train.with_recipe(train.PRESETS["gpu"], {})


def test_smoke_environment_variable_forces_the_smoke_preset(monkeypatch, capsys):
    monkeypatch.setenv(train.SMOKE_VARIABLE, "1")
    assert train.auto_config(T4).name == "smoke"
    out = capsys.readouterr().out
    assert "Preset 'smoke'" in out and "TrainConfig 'smoke'" in out and "Tesla T4" in out


def test_without_smoke_a_cpu_gets_the_cpu_preset_in_float32_without_xla(monkeypatch, capsys):
    monkeypatch.setenv(train.SMOKE_VARIABLE, "0")
    config = train.auto_config(CPU)
    assert config == train.PRESETS["cpu"]
    assert (config.precision, config.jit_compile) == ("float32", False)
    assert "TrainConfig 'cpu'" in capsys.readouterr().out


def test_gpu_with_tensor_cores_gets_mixed_float16_and_xla(monkeypatch):
    monkeypatch.delenv(train.SMOKE_VARIABLE, raising=False)
    config = train.auto_config(T4, verbose=False)
    assert config.name == "gpu"
    assert (config.precision, config.jit_compile) == ("mixed_float16", True)


def test_gpu_without_tensor_cores_stays_in_float32_with_xla(monkeypatch):
    monkeypatch.delenv(train.SMOKE_VARIABLE, raising=False)
    config = train.auto_config(P100, verbose=False)
    assert (config.name, config.precision, config.jit_compile) == ("gpu", "float32", True)


def test_config_rejects_bad_values_with_keras_style_errors():
    with pytest.raises(InvalidArgument, match=r"Received: image_size=16"):
        train.TrainConfig("x", image_size=16)
    with pytest.raises(InvalidArgument, match=r"Received: arch='vgg12'"):
        train.TrainConfig("x", arch="vgg12")
    with pytest.raises(InvalidArgument, match=r"Received: precision='float16'"):
        train.TrainConfig("x", precision="float16")
    with pytest.raises(InvalidArgument, match=r"Received: epochs=2.5"):
        train.TrainConfig("x", epochs=2.5)
    with pytest.raises(InvalidArgument, match=r"Received: dropout=1"):
        train.PRESETS["cpu"].replace(dropout=1)
    with pytest.raises(InvalidArgument, match=r"fewer than the 6 epochs.*Received: warmup_epochs=6"):
        train.PRESETS["cpu"].replace(warmup_epochs=6)
    with pytest.raises(InvalidArgument, match=r"Received: nesterov=True, momentum=0.0"):
        train.PRESETS["gpu"].replace(nesterov=True)
    with pytest.raises(InvalidArgument, match=r"Received: label_smoothing=1"):
        train.PRESETS["cpu"].replace(label_smoothing=1)
    with pytest.raises(InvalidArgument, match=r"Received: shift=9"):
        train.PRESETS["cpu"].replace(shift=9)
    with pytest.raises(InvalidArgument, match=r"Received: flip='yes'"):
        train.PRESETS["cpu"].replace(flip="yes")
    with pytest.raises(InvalidArgument, match=r"multiple of 10.*Received: val_split=15"):
        train.PRESETS["cpu"].replace(val_split=15)
    with pytest.raises(InvalidArgument, match=r"Received: val_split=-10"):
        train.PRESETS["cpu"].replace(val_split=-10)


def test_printed_config_names_the_recipes_ingredients_only_when_used():
    plain = str(train.PRESETS["gpu"])
    assert "augmented" not in plain and "label smoothing" not in plain and "warm-up" not in plain
    text = str(train.PRESETS["gpu"].replace(flip=True, shift=2, label_smoothing=0.1, momentum=0.9, nesterov=True,
                                            warmup_epochs=1))
    for expected in ("random left-right flips, shifts of up to 2 px", "label smoothing 0.1",
                     "learning rate 0.05 after 1 warm-up epoch(s)", "Nesterov momentum 0.9"):
        assert expected in text


def test_the_learning_rate_warms_up_from_0_then_follows_its_schedule():
    steps = 10
    cosine = train.learning_rate_schedule(train.PRESETS["cpu"].replace(epochs=4, warmup_epochs=1), steps)
    rates = np.array([float(cosine(step)) for step in range(4 * steps + 1)])
    assert rates[0] == 0 and rates[steps // 2] == pytest.approx(0.01) and rates[steps] == pytest.approx(0.02)
    assert (np.diff(rates[steps:]) <= 1e-9).all() and rates[-1] == pytest.approx(0, abs=1e-9)
    constant = train.learning_rate_schedule(train.PRESETS["gpu"].replace(warmup_epochs=1), steps)
    assert [float(constant(step)) for step in (0, steps, 5 * steps)] == pytest.approx([0, 0.05, 0.05])
    assert train.learning_rate_schedule(train.PRESETS["gpu"], steps) == 0.05


def test_label_smoothing_is_keras_categorical_crossentropy_on_one_hot_labels():
    logits = tf.constant([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
    labels = tf.constant([0, 2])
    one_hot = tf.one_hot(labels, 3)
    smoothed = train.SmoothedSparseCrossentropy(0.1)(labels, logits)
    keras_smoothed = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(one_hot, logits)
    np.testing.assert_allclose(smoothed, keras_smoothed, rtol=1e-6)
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    np.testing.assert_allclose(train.SmoothedSparseCrossentropy(0.0)(labels, logits), sparse, rtol=1e-6)
    restored = keras.losses.deserialize(keras.losses.serialize(train.SmoothedSparseCrossentropy(0.1)))
    assert restored.label_smoothing == 0.1


# ---------------------------------------------------------------------------
# Validation on images held out of the training set.


def test_a_validation_split_is_held_out_of_the_training_images_stratified_and_never_the_test_images():
    data = (x_train, _), (x_test, _) = numbered_data(per_class_train=50)
    config = train.PRESETS["smoke"].replace(val_split=100, train_examples=None, val_examples=None)
    (x_fit, _), (x_val, y_val) = train._used_data(config, data)
    assert not image_ids(x_val) & image_ids(x_test), "no test image may steer a choice"
    assert not image_ids(x_val) & image_ids(x_fit) and image_ids(x_val) | image_ids(x_fit) == image_ids(x_train)
    assert np.bincount(y_val).tolist() == [10] * 10
    # The split is the seed's: the same run holds out the same images.
    again = train._used_data(config, data)[1][0]
    other = train._used_data(config.replace(seed=1), data)[1][0]
    assert image_ids(again) == image_ids(x_val) != image_ids(other)


def test_a_run_with_a_validation_split_validates_on_the_held_out_images(sample, tmp_path):
    config = tiny(val_split=50, val_examples=None, epochs=1)
    history = train.train_vgg(config, sample, backup_dir=tmp_path, verbose=0)
    _, (x_val, y_val) = train._used_data(config, sample)
    held_out = history.model.evaluate(data.make_dataset(x_val, y_val, 50), verbose=0, return_dict=True)
    assert held_out["accuracy"] == pytest.approx(history.history["val_accuracy"][-1], abs=1e-6)
    assert "50 training images held out (stratified)" in str(config)


def test_printed_config_names_device_relevant_settings():
    cpu = train.PRESETS["cpu"]
    text = str(cpu)
    for expected in ("VGG-11", "32x32", "momentum 0.9", f"{cpu.epochs} epochs", "batch 128", "XLA off"):
        assert expected in text


# ---------------------------------------------------------------------------
# Devices and strategies.


def test_a_cpu_with_bfloat16_instructions_is_found_in_its_flags(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    assert {"avx2", "avx512_bf16"} <= devices._cpu_flags(cpuinfo)
    assert devices._cpu_flags(tmp_path / "missing") == frozenset()
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.delenv("COLAB_TPU_ADDR", raising=False)
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.setattr(devices, "_cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    found = devices.describe_devices()
    assert found == devices.Devices("CPU", native_bfloat16=True)
    assert "bfloat16 instructions" in str(found)
    monkeypatch.setattr(devices, "_cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert devices.describe_devices() == CPU and "bfloat16" not in str(CPU)


def test_describe_devices_reports_gpu_name_and_compute_capability(monkeypatch):
    fake_gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    real = tf.config.list_physical_devices
    only_a_gpu = lambda kind=None: [fake_gpu] if kind == "GPU" else real(kind)  # noqa: E731
    monkeypatch.setattr(tf.config, "list_physical_devices", only_a_gpu)
    monkeypatch.setattr(
        tf.config.experimental,
        "get_device_details",
        lambda device: {"device_name": "Tesla T4", "compute_capability": (7, 5)},
    )
    found = devices.describe_devices()
    assert found == T4
    assert str(found) == "1 GPU(s): Tesla T4 (compute capability 7.5)"


def test_describe_devices_on_a_machine_without_accelerators(monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.delenv("COLAB_TPU_ADDR", raising=False)
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.setattr(devices, "_cpu_flags", lambda: frozenset({"avx2"}))  # Whatever this CPU has.
    assert devices.describe_devices() == CPU
    assert "CPU only" in str(CPU)


def test_strategy_is_default_on_one_device_and_mirrored_on_several_gpus():
    assert devices.choose_strategy(CPU) is tf.distribute.get_strategy()
    assert devices.choose_strategy(T4) is tf.distribute.get_strategy()
    two_gpus = devices.Devices("GPU", count=2, name="Tesla T4", compute_capability=(7, 5))
    assert isinstance(devices.choose_strategy(two_gpus), tf.distribute.MirroredStrategy)


# ---------------------------------------------------------------------------
# The model.


def test_model_scales_and_resizes_then_runs_the_unchanged_vgg():
    model = train.build_model(train.PRESETS["cpu"])
    assert [layer.name for layer in model.layers] == ["rescale", "resize", "vgg"]
    net = model.layers[-1]
    assert [layer.name for layer in net.layers] == [f"block{i}" for i in range(1, 6)] + ["classifier"]
    images = np.full((2, 28, 28, 1), 255, np.uint8)
    assert model.layers[1](model.layers[0](images)).shape == (2, 32, 32, 1)
    assert float(np.max(model.layers[0](images))) == 1.0
    assert model(images).shape == (2, 10)


def test_mixed_precision_model_computes_in_float16_with_float32_logits():
    before = keras.config.dtype_policy().name
    model = train.build_model(tiny(precision="mixed_float16"))
    assert keras.config.dtype_policy().name == before  # No global side effect.
    net = model.layers[-1]
    assert net.layers[0].layers[0].compute_dtype == "float16"
    assert model(np.zeros((1, 28, 28, 1), np.uint8)).dtype == "float32"


# ---------------------------------------------------------------------------
# Training.


def test_throughput_leaves_out_the_first_epoch(monkeypatch):
    clock = iter([0.0, 10.0, 10.0, 12.0, 12.0, 14.0])
    monkeypatch.setattr(vggcourse.callbacks.time, "perf_counter", lambda: next(clock))
    callback = vggcourse.Throughput(examples_per_epoch=1_000)
    for epoch in range(3):
        logs = {}
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, logs)
    assert callback.seconds == [10.0, 2.0, 2.0]
    assert logs["examples_per_second"] == 500.0
    assert callback.examples_per_second == 500.0


def test_predicted_labels_are_one_class_per_image(sample, tmp_path):
    (_, _), (x_test, _) = sample
    model = train.build_model(tiny())
    labels = train.predict_labels(model, x_test[:37])
    assert labels.shape == (37,) and labels.dtype == np.uint8 and labels.max() < 10


# ---------------------------------------------------------------------------
# Exact resume.


@pytest.fixture
def op_determinism():
    """Deterministic ops for one test. TensorFlow has no public switch back, and Keras 3.10
    silently turns XLA off while they are on (model_supports_jit), so later tests need them off."""
    from tensorflow.python.framework import config as tf_config

    tf.config.experimental.enable_op_determinism()
    yield
    tf_config.disable_op_determinism()


def test_run_resumed_after_a_disconnect_ends_bit_identical_to_an_uninterrupted_run(
    sample, tmp_path, op_determinism
):
    # With every random ingredient of a recipe: shuffles, dropout masks, flips
    # and shifts; and with a warm-up whose step count must carry over.
    config = tiny(flip=True, shift=2, label_smoothing=0.1, nesterov=True, warmup_epochs=1, lr_schedule="cosine")
    uninterrupted = train.train_vgg(config, sample, backup_dir=tmp_path / "a", verbose=0)

    with pytest.raises(Disconnect):
        train.train_vgg(
            config, sample, backup_dir=tmp_path / "b", verbose=0, callbacks=[InterruptAfterEpoch(0, Disconnect)]
        )
    assert vggcourse.epochs_backed_up(vggcourse.backup_folder(tmp_path / "b", config)) == 1
    resumed = train.train_vgg(config, sample, backup_dir=tmp_path / "b", verbose=0)

    # The resumed run trains epochs 2 and 3 only: nothing replayed, nothing skipped.
    assert len(resumed.history["loss"]) == config.epochs - 1
    assert resumed.history["loss"] == uninterrupted.history["loss"][1:]
    for ours, theirs in zip(resumed.model.weights, uninterrupted.model.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)


class _LabelRecorder(keras.Model):
    """Trains nothing; records the labels of every batch that fit() feeds it."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.dense = keras.layers.Dense(1)

    def call(self, images):
        return self.dense(keras.ops.reshape(keras.ops.cast(images, "float32"), (-1, 28 * 28)))

    def train_step(self, batch):
        self.seen.append(batch[1].numpy())
        return {"examples": len(self.seen[-1])}


def test_inside_fit_every_epoch_sees_the_order_of_its_seed_and_epoch():
    x = np.zeros((40, 28, 28), np.uint8)
    y = np.arange(40, dtype=np.int32)
    epoch = tf.Variable(0, dtype=tf.int64)
    model = _LabelRecorder()
    model.compile(run_eagerly=True)
    model.fit(data.make_dataset(x, y, 10, shuffle=True, seed=1, epoch=epoch, num_classes=40), epochs=3,
              shuffle=False, verbose=0, callbacks=[vggcourse.EpochSeeds(epoch, seed=1)])
    seen = [np.concatenate(model.seen[i:i + 4]) for i in range(0, 12, 4)]
    expected = [np.concatenate([b.numpy() for _, b in data.make_dataset(x, y, 10, shuffle=True, seed=1, epoch=e,
                                                                  num_classes=40)])
                for e in range(3)]
    for e in range(3):
        np.testing.assert_array_equal(seen[e], expected[e], err_msg=f"epoch {e}")
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])


def test_epoch_seeds_set_the_epoch_and_reseed_every_dropout():
    model = train.build_model(tiny())
    epoch = tf.Variable(0, dtype=tf.int64)
    callback = vggcourse.EpochSeeds(epoch, seed=5)
    callback.set_model(model)
    callback.on_epoch_begin(4)
    assert int(epoch.numpy()) == 4
    states = [layer.seed_generator.state.numpy().tolist() for layer in vggcourse.leaf_layers(model)
              if isinstance(layer, keras.layers.Dropout)]
    assert len(states) == 2 and states[0] != states[1]
    callback.on_epoch_begin(4)
    again = [layer.seed_generator.state.numpy().tolist() for layer in vggcourse.leaf_layers(model)
             if isinstance(layer, keras.layers.Dropout)]
    assert again == states


# ---------------------------------------------------------------------------
# Scaling out.

MIRRORED = textwrap.dedent(
    """
    import tensorflow as tf

    # Logical devices can only be configured before TensorFlow initialises.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    from vggcourse import InvalidArgument, data, train

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    config = train.PRESETS["smoke"].replace(train_examples=256, val_examples=64, epochs=2)
    history = train.train_vgg(config, data.load_fashion_mnist(source="sample"),
                          backup_dir=BACKUP, strategy=strategy, verbose=0)
    print("replicas", strategy.num_replicas_in_sync)
    print("variable", type(history.model.weights[0].value).__name__)
    print("losses", history.history["loss"])
    """
)


def test_mirrored_strategy_over_two_cpu_devices_trains_with_the_same_call(tmp_path):
    script = f"BACKUP = {str(tmp_path / 'backup')!r}\n" + MIRRORED
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["replicas"] == "2"
    assert lines["variable"] == "MirroredVariable"
    losses = [float(v) for v in lines["losses"].strip("[]").split(",")]
    assert len(losses) == 2 and all(np.isfinite(losses))


# ---------------------------------------------------------------------------
# The gpu preset's code path, run on the CPU. On a GPU, auto_config() turns on
# mixed_float16 and XLA; nothing else on the CPU ever runs them together. A
# dtype mismatch, a resize that XLA cannot compile or a callback that breaks
# under the policy should fail here, not in a learner's Colab.


def _gpu_config(monkeypatch, **changes):
    monkeypatch.delenv(train.SMOKE_VARIABLE, raising=False)
    # The switch: auto_config() decides as on a Colab T4.
    config = train.auto_config(T4, verbose=False)
    assert (config.name, config.precision, config.jit_compile) == ("gpu", "mixed_float16", True)
    # The same network; only the images are small and the batches tiny and few,
    # validated on test images (the embedded sample is too small for the split).
    return config.replace(image_size=32, batch_size=2, train_examples=4, val_examples=2, val_split=0,
                          **changes)


def test_gpu_preset_code_path_trains_on_the_cpu_with_the_gpu_decisions_forced_on(sample, tmp_path, monkeypatch):
    config = _gpu_config(monkeypatch, epochs=1)
    history = train.train_vgg(config, sample, backup_dir=tmp_path, strategy=train.choose_strategy(T4), verbose=0)
    assert np.isfinite(history.history["loss"] + history.history["val_loss"]).all()

    model = history.model
    assert model.jit_compile is True
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    net = model.get_layer("vgg")
    assert net.layers[0].layers[0].compute_dtype == "float16"
    # 32 px, halved five times, reaches fc1 as 1x1 maps of 512 / 4 channels.
    assert tuple(net.get_layer("classifier").get_layer("fc1").kernel.shape) == (1 * 1 * 128, 4096)
    (_, _), (x_test, _) = sample
    logits = model(x_test[:2, ..., None], training=False)
    assert logits.shape == (2, 10)
    assert logits.dtype == "float32", "under mixed_float16 the logits must still leave the model in float32"
    assert np.isfinite(logits).all()


def test_gpu_preset_run_resumes_with_its_loss_scale_optimizer(sample, tmp_path, monkeypatch):
    # XLA compiles each run's step anew, for seconds on a CPU, and has nothing
    # to do with the backup; the test above compiles it once.
    config = _gpu_config(monkeypatch, epochs=2, jit_compile=False)
    strategy = train.choose_strategy(T4)
    # A disconnect after the first epoch, then a resume: the backup saves and
    # restores the model and its LossScaleOptimizer under the policy.
    with pytest.raises(Disconnect):
        train.train_vgg(config, sample, backup_dir=tmp_path, strategy=strategy, verbose=0,
                        callbacks=[InterruptAfterEpoch(0, Disconnect)])
    assert vggcourse.backup.epochs_backed_up(vggcourse.backup.backup_folder(tmp_path, config)) == 1
    history = train.train_vgg(config, sample, backup_dir=tmp_path, strategy=strategy, verbose=0)
    assert len(history.history["loss"]) == 1, "the second run should resume at epoch 2"
    assert np.isfinite(history.history["loss"] + history.history["val_loss"]).all()
    optimizer = history.model.optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert int(optimizer.iterations) == 2 * 2, "the restored optimizer counts the first epoch's steps too"


def test_hardware_config_is_auto_configs_choice_whatever_the_environment_says(monkeypatch):
    monkeypatch.setenv(train.SMOKE_VARIABLE, "1")
    assert train.hardware_config(CPU) == train.PRESETS["cpu"]
    assert train.hardware_config(T4) == train.PRESETS["gpu"].replace(precision="mixed_float16", jit_compile=True)
    tpu = devices.Devices("TPU", count=8, name="TPU")
    assert (train.hardware_config(tpu).name, train.hardware_config(tpu).precision) == ("gpu", "mixed_bfloat16")
    # bfloat16 only where the CPU computes it natively: emulated, it is slower than float32.
    bf16_cpu = devices.Devices("CPU", native_bfloat16=True)
    assert train.hardware_config(bf16_cpu) == train.PRESETS["cpu"].replace(precision="mixed_bfloat16")
    monkeypatch.setenv(train.SMOKE_VARIABLE, "0")
    for found in (CPU, bf16_cpu, T4, P100, tpu):
        assert train.hardware_config(found) == train.auto_config(found, verbose=False)


def test_strategy_name_is_the_strategy_that_choose_strategy_creates():
    two_gpus = devices.Devices("GPU", count=2, name="Tesla T4", compute_capability=(7, 5))
    tpu = devices.Devices("TPU", count=8, name="TPU")
    names = [devices.strategy_name(found) for found in (CPU, T4, two_gpus, tpu)]
    assert names == ["default", "default", "MirroredStrategy", "TPUStrategy"]
    assert type(devices.choose_strategy(two_gpus)).__name__ == "MirroredStrategy"


@pytest.mark.parametrize("call", [devices.strategy_name, train.hardware_config])
def test_hardware_questions_refuse_what_is_not_a_devices(call):
    with pytest.raises(InvalidArgument, match=r"Expected `devices` to be a vggcourse.Devices. Received: devices='GPU'"):
        call("GPU")


def test_he_init_draws_every_kernel_from_he_normal_seeded_and_biases_at_0():
    config = train.PRESETS["smoke"].replace(init="he")
    model, again = train.build_model(config), train.build_model(config)
    conv = model.get_layer("vgg").get_layer("block3").get_layer("block3_conv1")
    kernel = conv.kernel.numpy()
    fan_in = np.prod(kernel.shape[:-1])
    # HeNormal: a truncated normal widened to variance 2 / fan-in.
    np.testing.assert_allclose(kernel.std(), np.sqrt(2 / fan_in), rtol=0.1)
    assert not conv.bias.numpy().any()
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    glorot = train.build_model(config.replace(init="glorot"))
    glorot_kernel = glorot.get_layer("vgg").get_layer("block3").get_layer("block3_conv1").kernel.numpy()
    assert glorot_kernel.std() < 0.8 * kernel.std()
    with pytest.raises(InvalidArgument, match=r"Received: init='zeros'"):
        config.replace(init="zeros")
