"""Specifications for vggcourse.plots: one bar or point per layer, the right data, log scales."""

import re

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from vggcourse import (
    VGG_ARCHS,
    InvalidArgument,
    plots,
    trace_layers,
    vgg,
)


@pytest.fixture(scope="module")
def trace():
    return trace_layers(vgg(VGG_ARCHS["vgg11"]), (1, 224, 224, 1))



def _heights(ax):
    return np.array([bar.get_height() for bar in ax.patches])


def _tick_labels(ax):
    return [label.get_text() for label in ax.get_xticklabels()]


def test_use_style_makes_the_course_style_the_default():
    with matplotlib.rc_context():
        plots.use_style()
        for key, value in plots.STYLE.items():
            assert matplotlib.rcParams[key] == value
    assert matplotlib.rcParams["axes.spines.top"] is True, "rc_context restored the defaults"


@pytest.mark.parametrize("draw", [plots.plot_params, plots.plot_macs, plots.plot_activation_memory, plots.plot_shapes])
def test_plots_of_a_trace_have_the_course_figure_size_without_use_style(trace, draw):
    with matplotlib.rc_context({"figure.figsize": [3.0, 2.0], "figure.dpi": 50}):
        figure = draw(trace).figure
    assert list(figure.get_size_inches()) == plots.STYLE["figure.figsize"]
    assert figure.dpi == plots.STYLE["figure.dpi"]
    assert figure.get_layout_engine() is not None


def test_params_plot_has_one_bar_per_layer_with_its_params(trace):
    ax = plots.plot_params(trace)
    assert isinstance(ax, matplotlib.axes.Axes)
    np.testing.assert_array_equal(_heights(ax), trace["params"])
    assert _tick_labels(ax) == list(trace["layer"])
    assert ax.get_yscale() == "log"
    assert "parameters" in ax.get_ylabel()
    assert plots.plot_params(trace, log=False).get_yscale() == "linear"


def test_params_plot_colours_layers_by_kind(trace):
    ax = plots.plot_params(trace)
    conv = trace.index[trace["kind"] == "Conv2D"][0]
    dense = trace.index[trace["kind"] == "Dense"][0]
    assert ax.patches[conv].get_facecolor() == matplotlib.colors.to_rgba(plots.KIND_COLORS["Conv2D"])
    assert ax.patches[dense].get_facecolor() == matplotlib.colors.to_rgba(plots.KIND_COLORS["Dense"])
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["Conv2D", "Dense"]  # Only kinds with a visible bar.


def test_macs_plot_has_one_bar_per_layer_with_its_macs(trace):
    ax = plots.plot_macs(trace)
    np.testing.assert_array_equal(_heights(ax), trace["macs"])
    assert ax.get_yscale() == "log"


def test_activation_memory_plot_shows_mib_per_layer_and_hatches_views(trace):
    ax = plots.plot_activation_memory(trace)
    expected = trace["activations"].to_numpy() * 4 / 2**20
    np.testing.assert_allclose(_heights(ax), expected)
    assert ax.get_yscale() == "log"
    assert "MiB" in ax.get_ylabel()
    hatched = [bool(bar.get_hatch()) for bar in ax.patches]
    assert hatched == list(~trace["new_tensor"])
    half = plots.plot_activation_memory(trace, bytes_per_value=2)
    np.testing.assert_allclose(_heights(half), expected / 2)


def test_shapes_plot_has_a_point_per_layer_for_size_and_channels(trace):
    ax = plots.plot_shapes(trace)
    height, channels = ax.get_lines()
    assert len(height.get_ydata()) == len(channels.get_ydata()) == len(trace)
    assert height.get_ydata()[0] == 224
    assert np.isnan(height.get_ydata()[-1])  # Dense outputs have no spatial size.
    np.testing.assert_array_equal(channels.get_ydata(), [shape[-1] for shape in trace["output_shape"]])
    assert ax.get_yscale() == "log"
    assert ax.yaxis.get_transform().base == 2
    assert height.get_label() == "height (= width)"


def test_shapes_plot_draws_width_for_a_non_square_input():
    trace = trace_layers(vgg(VGG_ARCHS["vgg11"]), (64, 96, 1))
    labels = [line.get_label() for line in plots.plot_shapes(trace).get_lines()]
    assert labels == ["height", "width", "channels (features)"]


def test_plots_draw_on_a_given_axes(trace):
    fig, (left, right) = plt.subplots(1, 2)
    assert plots.plot_params(trace, ax=left) is left
    assert plots.plot_shapes(trace, ax=right) is right
    assert "224×224×1" in left.get_title()


def test_plots_reject_what_is_not_a_trace(trace):
    with pytest.raises(InvalidArgument, match=r"`trace`.*trace_layers"):
        plots.plot_params(pd.DataFrame({"params": [1, 2]}))
    with pytest.raises(InvalidArgument, match=r"Received: bytes_per_value=0"):
        plots.plot_activation_memory(trace, bytes_per_value=0)
    with pytest.raises(InvalidArgument, match=r"Received: log='yes'"):
        plots.plot_macs(trace, log="yes")
    with pytest.raises(InvalidArgument, match="at least one layer"):
        plots.plot_shapes(trace.iloc[:0])


# ---------------------------------------------------------------------------
# Training plots: examples, learning curves, confusion matrix.


def test_image_grid_titles_each_image_with_its_class_and_marks_errors_in_red():
    images = np.zeros((5, 28, 28, 1), np.uint8)
    fig = plots.show_images(images, [0, 1, 2, 3, 9], predictions=[0, 1, 2, 4, 9], ncols=3)
    axes = fig.get_axes()
    assert len(axes) == 6 and sum(bool(ax.images) for ax in axes) == 5
    titles = [ax.get_title() for ax in axes[:5]]
    assert titles[0] == "T-shirt/top\n(T-shirt/top)" and titles[4] == "Ankle boot\n(Ankle boot)"
    assert [ax.title.get_color() for ax in axes[:5]].count("tab:red") == 1
    assert axes[3].title.get_color() == "tab:red"
    assert plots.show_images(images[:2, ..., 0], [5, 7]).get_axes()[1].get_title() == "Sneaker"


def test_history_plot_draws_training_and_validation_curves_per_epoch():
    logs = {"loss": [1.0, 0.5, 0.4], "accuracy": [0.6, 0.8, 0.85],
            "val_loss": [0.9, 0.6, 0.5], "val_accuracy": [0.7, 0.8, 0.82]}
    loss, accuracy = plots.plot_history(logs).get_axes()
    assert [line.get_label() for line in loss.get_lines()] == ["training", "validation"]
    test_curves = plots.plot_history(logs, val_label="test").get_axes()[1]
    assert [line.get_label() for line in test_curves.get_lines()] == ["training", "test"]
    np.testing.assert_array_equal(accuracy.get_lines()[1].get_ydata(), logs["val_accuracy"])
    np.testing.assert_array_equal(loss.get_lines()[0].get_xdata(), [1, 2, 3])
    with pytest.raises(InvalidArgument, match="'loss' and 'accuracy'"):
        plots.plot_history({"loss": [1.0]})
    with pytest.raises(InvalidArgument, match="Received: val_label=1"):
        plots.plot_history(logs, val_label=1)


def test_confusion_matrix_counts_each_true_and_predicted_pair():
    y_true = np.array([0, 0, 0, 1, 9])
    y_pred = np.array([0, 0, 6, 1, 7])
    ax = plots.plot_confusion_matrix(y_true, y_pred)
    shares = ax.images[0].get_array()
    assert shares.shape == (10, 10)
    assert shares[0, 0] == pytest.approx(2 / 3) and shares[0, 6] == pytest.approx(1 / 3)
    texts = {(t.get_position(), t.get_text()) for t in ax.texts}
    assert ((0, 0), "2") in texts and ((6, 0), "1") in texts and ((7, 9), "1") in texts
    assert len(ax.texts) == 4
    with pytest.raises(InvalidArgument, match="same length"):
        plots.plot_confusion_matrix([0, 1], [0])


# ---------------------------------------------------------------------------
# Architecture diagrams and receptive fields.


def _texts(ax):
    return [text.get_text() for text in ax.texts if text.get_text()]  # arrows have no text


def test_block_diagram_shows_each_layer_and_the_shape_after_it():
    from vggcourse import vgg_block

    ax = plots.plot_vgg_block(vgg_block(2, 128, name="block2"), (112, 112, 64))
    texts = _texts(ax)
    assert texts == [
        "112×112×64",
        "block2_conv1\nconv 3×3, 128, ReLU", "112×112×128",
        "block2_conv2\nconv 3×3, 128, ReLU", "112×112×128",
        "block2_pool\nmax-pool 2×2, stride 2", "56×56×128",
    ]
    assert len(ax.patches) == 3  # one box per layer


def test_stack_diagram_shows_vgg11_block_shapes_at_224_pixels():
    ax = plots.plot_vgg_stack(vgg(VGG_ARCHS["vgg11"], name="vgg11"), (224, 224, 1))
    shapes = [text for text in _texts(ax) if "\n" not in text]
    # The seed shape table of the course: d2l's VGG section prints these.
    assert shapes == ["input", "224×224×1", "112×112×64", "56×56×128", "28×28×256",
                      "14×14×512", "7×7×512", "10"]
    assert "block3\n2× conv\n3×3, 256\n+ pool" in _texts(ax)
    heights = [patch.get_height() for patch in ax.patches]
    # Each pool halves the side: every block's box is one step lower than the one before.
    np.testing.assert_allclose(np.diff(heights[:6]), -1.0)


def test_receptive_field_heatmaps_are_normalised_and_annotated():
    one = np.pad(np.ones((3, 3)), 3)
    two = np.pad(np.outer([1, 2, 3, 2, 1], [1, 2, 3, 2, 1]), 2)
    axes = plots.plot_receptive_fields([one, two], titles=["one 3x3", "two 3x3"])
    assert [ax.get_title() for ax in axes] == ["one 3x3", "two 3x3"]
    np.testing.assert_allclose(axes[1].images[0].get_array(), two / 9)
    assert "9" in _texts(axes[1]) and len(_texts(axes[0])) == 9


@pytest.mark.parametrize("call, message", [
    (lambda: plots.plot_vgg_block("block2", (112, 112, 64)), "Expected `block`"),
    (lambda: plots.plot_vgg_stack(vgg(VGG_ARCHS["vgg11"]), (224, 224)), "Expected `input_shape`"),
    (lambda: plots.plot_vgg_stack(vgg(VGG_ARCHS["vgg11"]), (224, 0, 1)), "input_shape=(224, 0, 1)"),
    (lambda: plots.plot_receptive_fields([np.ones(3)]), "Expected `maps`"),
    (lambda: plots.plot_receptive_fields([np.ones((3, 3))], titles=["a", "b"]), "one title per map"),
])
def test_diagram_arguments_are_checked(call, message):
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        call()
