"""vggcourse: the shared code behind the VGG course.

Importing the package is all a chapter needs for set-up: TensorFlow is imported
without its start-up banner (see ``vggcourse._quiet``), and the public names
below are ready to use.
"""

from vggcourse._quiet import import_tensorflow

import_tensorflow()

from vggcourse.models import (  # noqa: E402
    VGG,
    VGG_ARCHS,
    VGGBlock,
    assert_same_architecture,
    leaf_layers,
    min_input_size,
    scale_arch,
    vgg,
    vgg_block,
)
from vggcourse.trace import (  # noqa: E402
    layer_macs,
    layer_params,
    receptive_field,
    totals,
    trace_layers,
    training_memory,
)
from vggcourse.data import (  # noqa: E402
    CLASS_NAMES,
    DataIntegrityError,
    load_fashion_mnist,
    make_dataset,
)
from vggcourse.train import (  # noqa: E402
    PRESETS,
    Devices,
    EpochSeeds,
    Throughput,
    TrainConfig,
    auto_config,
    build_model,
    choose_strategy,
    default_backup_dir,
    describe_devices,
    predict_labels,
    train_vgg,
)

__version__ = "0.1.0"

__all__ = [
    "VGG",
    "VGG_ARCHS",
    "VGGBlock",
    "assert_same_architecture",
    "leaf_layers",
    "min_input_size",
    "scale_arch",
    "vgg",
    "vgg_block",
    "layer_macs",
    "layer_params",
    "receptive_field",
    "totals",
    "trace_layers",
    "training_memory",
    "CLASS_NAMES",
    "DataIntegrityError",
    "load_fashion_mnist",
    "make_dataset",
    "PRESETS",
    "Devices",
    "EpochSeeds",
    "Throughput",
    "TrainConfig",
    "auto_config",
    "build_model",
    "choose_strategy",
    "default_backup_dir",
    "describe_devices",
    "predict_labels",
    "train_vgg",
]
