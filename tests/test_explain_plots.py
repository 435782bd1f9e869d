"""The plots of the chapter "What VGG learns, and reusing it" (the last section of vggcourse.plots)."""

import numpy as np
import pandas as pd
import pytest

from vggcourse import plots


def test_plot_filters_draws_one_tile_per_filter_on_one_scale_centred_on_zero():
    kernel = np.linspace(-2, 1, 3 * 3 * 16).reshape(3, 3, 1, 16)
    fig = plots.plot_filters(kernel, ncols=8)
    tiles = [ax for ax in fig.axes if ax.images]
    assert len(tiles) == 16
    assert {tile.images[0].get_clim() for tile in tiles} == {(-2.0, 2.0)}
    np.testing.assert_array_equal(tiles[5].images[0].get_array(), kernel[:, :, 0, 5])


@pytest.mark.parametrize("kernel", [np.zeros((3, 3, 2, 4)), np.zeros((3, 3, 4))])
def test_plot_filters_refuses_a_kernel_that_is_not_a_grey_first_layer(kernel):
    with pytest.raises(ValueError, match="Received: kernel with shape"):
        plots.plot_filters(kernel)


def test_show_image_rows_labels_rows_and_captions_images():
    rows = {"first": [(np.zeros((4, 4)), "a"), (np.ones((4, 4, 1)), "b", "viridis")],
            "second": [(np.eye(4), "c")]}
    fig = plots.show_image_rows(rows)
    drawn = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in drawn] == ["a", "b", "c"]
    assert drawn[1].images[0].get_cmap().name == "viridis"
    assert [text.get_text() for ax in fig.axes for text in ax.texts] == ["first", "second"]


def test_show_image_rows_can_share_a_scale_within_each_row():
    rows = {"maps": [(np.full((2, 2), 1.0), "low"), (np.full((2, 2), 4.0), "high")]}
    fig = plots.show_image_rows(rows, shared_scale=True)
    assert {ax.images[0].get_clim() for ax in fig.axes if ax.images} == {(0.0, 4.0)}


@pytest.mark.parametrize("rows", [{}, {"empty": []}, {"bad": [(np.zeros((2, 2, 3)), "x")]}, []])
def test_show_image_rows_refuses_bad_rows(rows):
    with pytest.raises(ValueError, match="Received"):
        plots.show_image_rows(rows)


def test_plot_feature_maps_shows_the_most_active_channels_of_each_layer():
    maps = np.zeros((4, 4, 10))
    maps[..., 7], maps[..., 2] = 5.0, 3.0
    fig = plots.plot_feature_maps(np.zeros((28, 28)), {"block2": maps}, num_channels=2)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["", "ch. 7", "ch. 2"]
    labels = [text.get_text() for ax in fig.axes for text in ax.texts]
    assert labels == ["input\n28×28", "block2\n4×4×10"]


def test_plot_feature_maps_refuses_maps_without_channels():
    with pytest.raises(ValueError, match=r"Received: maps\['fc2'\] with shape \(1024,\)"):
        plots.plot_feature_maps(np.zeros((28, 28)), {"fc2": np.zeros(1024)})


def test_show_heatmaps_draws_each_map_over_its_image():
    images = np.zeros((3, 28, 28))
    fig = plots.show_heatmaps(images, {"saliency": np.ones((3, 28, 28)),
                                       "Grad-CAM": np.ones((3, 4, 4))},
                              titles=["a", "b", "c"])
    assert len(fig.axes) == 3 * 3
    cam = fig.axes[2].images[-1]
    assert cam.get_extent() == [-0.5, 27.5, 27.5, -0.5]  # a 4x4 map stretched over 28x28
    assert [fig.axes[i].get_title() for i in (0, 1, 2)] == ["a", "saliency", "Grad-CAM"]


@pytest.mark.parametrize("heatmaps, message", [
    ({"saliency": np.ones((2, 28, 28))}, "Expected one heatmap per image (3)"),
    ({}, "non-empty dict"),
    ({"cam": np.ones((3, 4))}, "Received: heatmaps['cam'] with shape (3, 4)"),
])
def test_show_heatmaps_refuses_maps_that_do_not_match_the_images(heatmaps, message):
    with pytest.raises(ValueError) as raised:
        plots.show_heatmaps(np.zeros((3, 28, 28)), heatmaps)
    assert message in str(raised.value)


def test_plot_embedding_draws_one_coloured_group_per_class_with_the_explained_variance():
    coords = np.arange(20, dtype=float).reshape(10, 2)
    ax = plots.plot_embedding(coords, np.array([0, 1] * 5), explained=[0.5, 0.25])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["T-shirt/top", "Trouser"]
    assert ax.get_xlabel() == "principal component 1 (50% of the variance)"
    assert len(ax.collections) == 2


def test_plot_embedding_refuses_coordinates_that_are_not_2d_points():
    with pytest.raises(ValueError, match="Received: coords with shape"):
        plots.plot_embedding(np.zeros((5, 3)), np.zeros(5))


def test_plot_transfer_draws_the_mean_of_each_strategy_against_the_label_count():
    runs = pd.DataFrame({
        "labels_per_class": [10, 10, 100, 100] * 2,
        "strategy": ["scratch"] * 4 + ["frozen"] * 4,
        "test_accuracy": [0.5, 0.7, 0.8, 0.8, 0.6, 0.6, 0.9, 0.7],
    })
    ax = plots.plot_transfer(runs)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"scratch", "frozen"}
    np.testing.assert_allclose(lines["scratch"].get_ydata(), [0.6, 0.8])
    np.testing.assert_allclose(lines["frozen"].get_ydata(), [0.6, 0.8])
    assert ax.get_xscale() == "log"


def test_plot_transfer_refuses_a_table_without_the_columns_it_needs():
    with pytest.raises(ValueError, match="Received: runs of type DataFrame"):
        plots.plot_transfer(pd.DataFrame({"strategy": ["scratch"]}))
