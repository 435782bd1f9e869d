"""vggcourse: the shared code behind the VGG course.

Importing the package is all a chapter needs for set-up: TensorFlow is imported
without its start-up banner (see ``vggcourse._quiet``), and the public names
of the modules below are ready to use as ``vggcourse.<name>``. Each module
lists its public names once, in its ``__all__``; this package exports them all.

- ``models``: VGG blocks and networks;
- ``trace``: shapes, parameters, MACs, activations and receptive fields;
- ``data``: Fashion-MNIST and its input pipeline;
- ``devices``: the hardware and the ``tf.distribute`` strategy;
- ``train``: presets and training, with the callbacks of ``callbacks`` and the
  backups of ``backup``;
- ``errors``: the course's own exceptions.

``vggcourse.plots`` (matplotlib), ``vggcourse.bench`` (the benchmark of the
Performance appendix) and the modules of the later chapters are imported on
their own: ``explain``, ``embedding``, ``transfer`` and ``imagenet`` (what VGG
learns, and reusing it); ``recipe``, ``initialization``, ``budget`` and
``fully_conv`` (how VGG was trained, and what came after); ``ablation`` (the
``cpu`` preset's recipe, one ingredient at a time).
"""

import importlib.metadata

from vggcourse._quiet import import_tensorflow

# Before any module of the package imports TensorFlow, so that none prints its banner.
import_tensorflow()

from vggcourse import backup, callbacks, data, devices, errors, models, trace, train
from vggcourse.backup import *
from vggcourse.callbacks import *
from vggcourse.data import *
from vggcourse.devices import *
from vggcourse.errors import *
from vggcourse.models import *
from vggcourse.pretrained import load_trained_vgg
from vggcourse.trace import *
from vggcourse.train import *

try:
    __version__ = importlib.metadata.version("vggcourse")
except importlib.metadata.PackageNotFoundError:  # Run from a source tree that is not installed.
    __version__ = "0+unknown"

__all__ = [
    *models.__all__,
    *trace.__all__,
    *data.__all__,
    *devices.__all__,
    *train.__all__,
    *callbacks.__all__,
    *backup.__all__,
    *errors.__all__,
    "load_trained_vgg",
]
