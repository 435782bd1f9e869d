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
]
