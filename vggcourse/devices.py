"""What TensorFlow can compute on, and the ``tf.distribute`` strategy for it.

``describe_devices()`` names the best hardware present (TPU, GPUs or only
the CPU); ``choose_strategy()`` turns that into a strategy, and
``vggcourse.train.auto_config()`` into a training preset.
"""

import dataclasses
import os
import pathlib

import tensorflow as tf

from vggcourse.errors import InvalidArgument

__all__ = ["Devices", "choose_strategy", "describe_devices", "strategy_name"]


@dataclasses.dataclass(frozen=True)
class Devices:
    """What TensorFlow can compute on.

    Attributes:
        kind: ``"TPU"``, ``"GPU"`` or ``"CPU"``: the best device present.
        count: how many devices of that kind.
        name: the GPU's model name, such as ``"Tesla T4"``; otherwise ``kind``.
        compute_capability: the GPU's ``(major, minor)``, else None.
        native_bfloat16: for a CPU, whether it has instructions that compute
            in bfloat16 (``NATIVE_BFLOAT16_FLAGS``); without them, bfloat16
            arithmetic is emulated, and slower than float32.
    """

    kind: str
    count: int = 1
    name: str = "CPU"
    compute_capability: tuple | None = None
    native_bfloat16: bool = False

    def __str__(self):
        if self.kind == "GPU":
            cc = self.compute_capability
            capability = f"compute capability {cc[0]}.{cc[1]}" if cc else "compute capability unknown"
            return f"{self.count} GPU(s): {self.name} ({capability})"
        if self.kind == "TPU":
            return f"TPU with {self.count} core(s)"
        if self.native_bfloat16:
            return "CPU only (with bfloat16 instructions): TensorFlow sees no GPU or TPU"
        return "CPU only: TensorFlow sees no GPU or TPU"


def _tpu_present():
    # Colab's TPU runtimes set one of these; probing for a TPU otherwise
    # queries a cloud metadata server, which hangs without a network.
    return bool(
        tf.config.list_physical_devices("TPU")
        or os.environ.get("COLAB_TPU_ADDR")
        or os.environ.get("TPU_NAME")
    )


# Linux's names (/proc/cpuinfo) for the x86 instructions that multiply
# bfloat16 numbers: AVX-512 BF16 and the AMX tile unit's BF16.
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The instruction-set flags of the first CPU in ``cpuinfo``; empty where there is no such file."""
    try:
        text = pathlib.Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def describe_devices():
    """Returns a ``Devices`` describing the best hardware TensorFlow sees."""
    if _tpu_present():
        count = len(tf.config.list_physical_devices("TPU")) or 8
        return Devices("TPU", count=count, name="TPU")
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return Devices(
            "GPU",
            count=len(gpus),
            name=details.get("device_name", "GPU"),
            compute_capability=details.get("compute_capability"),
        )
    return Devices("CPU", native_bfloat16=bool(_cpu_flags() & set(NATIVE_BFLOAT16_FLAGS)))


def strategy_name(devices):
    """The name of the ``tf.distribute`` strategy that ``choose_strategy`` picks for ``devices``.

    ``"TPUStrategy"`` on a TPU, ``"MirroredStrategy"`` for more than one GPU,
    ``"default"`` otherwise. It creates nothing, so it answers for hardware
    that is not there.

    Args:
        devices: a ``Devices``.
    """
    if not isinstance(devices, Devices):
        raise InvalidArgument(
            f"Expected `devices` to be a vggcourse.Devices. Received: devices={devices!r}"
        )
    if devices.kind == "TPU":
        return "TPUStrategy"
    if devices.kind == "GPU" and devices.count > 1:
        return "MirroredStrategy"
    return "default"


def choose_strategy(devices=None):
    """Returns the ``tf.distribute`` strategy for ``devices``.

    ``TPUStrategy`` on a TPU, ``MirroredStrategy`` (one replica per GPU,
    gradients summed across them) for more than one GPU, and the default
    strategy, which does nothing special, otherwise (see ``strategy_name``).

    Args:
        devices: a ``Devices``; by default ``describe_devices()``.
    """
    devices = devices or describe_devices()
    name = strategy_name(devices)
    if name == "TPUStrategy":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "MirroredStrategy":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
