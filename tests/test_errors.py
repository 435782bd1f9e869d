"""The course's argument errors: one exception, whatever the mistake and wherever it is made."""

import numpy as np
import pytest

import vggcourse
from vggcourse import InvalidArgument, plots
from vggcourse.bench.schema import BenchSettings

TRACE = vggcourse.trace_layers(vggcourse.vgg(vggcourse.VGG_ARCHS["vgg11"]), (32, 32, 1))
IMAGES = np.zeros((4, 28, 28), np.uint8)
LABELS = np.zeros(4, np.uint8)

# A float where a whole number is expected, in every module that takes one.
A_FLOAT_FOR_AN_INTEGER = {
    "vgg_block": lambda: vggcourse.vgg_block(2.0, 64),
    "vgg": lambda: vggcourse.vgg(vggcourse.VGG_ARCHS["vgg11"], num_classes=10.0),
    "vgg_by_name": lambda: vggcourse.vgg_by_name("vgg11", ratio=4.0),
    "scale_arch": lambda: vggcourse.scale_arch(vggcourse.VGG_ARCHS["vgg11"], 2.0),
    "trace_layers": lambda: vggcourse.trace_layers(vggcourse.vgg(vggcourse.VGG_ARCHS["vgg11"]), (32.0, 32, 1)),
    "layer_macs": lambda: vggcourse.layer_macs(vggcourse.vgg_block(1, 8).layers[0], (8.0, 8, 1)),
    "training_memory": lambda: vggcourse.training_memory(TRACE, batch_size=8.0),
    "make_dataset": lambda: vggcourse.make_dataset(IMAGES, LABELS, batch_size=2.0),
    "TrainConfig": lambda: vggcourse.TrainConfig("x", epochs=2.0),
    "preprocessing_layers": lambda: vggcourse.preprocessing_layers(32.0),
    "plot_activation_memory": lambda: plots.plot_activation_memory(TRACE, bytes_per_value=4.0),
    "show_images": lambda: plots.show_images(IMAGES, LABELS, ncols=2.0),
    "BenchSettings": lambda: BenchSettings(num_examples=1000.0),
}


@pytest.mark.parametrize("call", A_FLOAT_FOR_AN_INTEGER.values(), ids=A_FLOAT_FOR_AN_INTEGER)
def test_a_float_for_an_integer_raises_invalid_argument_everywhere(call):
    with pytest.raises(InvalidArgument, match=r"Expected `[^`]+` to be .*Received: .*(of type float|\d\.0)"):
        call()


# A value of the right type but out of range.
A_ZERO_FOR_A_POSITIVE_INTEGER = {
    "vgg_block": lambda: vggcourse.vgg_block(0, 64),
    "make_dataset": lambda: vggcourse.make_dataset(IMAGES, LABELS, batch_size=0),
    "training_memory": lambda: vggcourse.training_memory(TRACE, batch_size=0),
    "plot_activation_memory": lambda: plots.plot_activation_memory(TRACE, bytes_per_value=0),
    "TrainConfig": lambda: vggcourse.TrainConfig("x", batch_size=0),
}


@pytest.mark.parametrize("call", A_ZERO_FOR_A_POSITIVE_INTEGER.values(), ids=A_ZERO_FOR_A_POSITIVE_INTEGER)
def test_a_zero_for_a_positive_integer_raises_invalid_argument_everywhere(call):
    with pytest.raises(InvalidArgument, match=r"Received: \w+=0"):
        call()


def test_invalid_argument_is_caught_by_code_written_for_value_or_type_errors():
    assert issubclass(InvalidArgument, ValueError) and issubclass(InvalidArgument, TypeError)
    assert issubclass(InvalidArgument, vggcourse.CourseError)
    for expected in (ValueError, TypeError):
        with pytest.raises(expected):
            vggcourse.vgg_block("2", 64)


def test_numpy_integers_are_accepted_and_come_back_as_python_ints():
    block = vggcourse.vgg_block(np.int64(2), np.int32(8))
    assert len(block.layers) == 3
    assert vggcourse.scale_arch(vggcourse.VGG_ARCHS["vgg11"], np.int64(4))[0] == (1, 16)
