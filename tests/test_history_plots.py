"""The plots of the chapter "How VGG was trained, and what came after" (vggcourse.plots.history)."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from vggcourse import plots
from vggcourse.budget import BudgetRun
from vggcourse.errors import InvalidArgument


def test_activation_scales_are_one_line_per_start_on_a_log_axis_and_zeros_are_left_out():
    scales = pd.DataFrame({"small": [1e-2, 1e-4, 0.0], "he": [0.5, 0.4, 0.6]}, index=["a", "b", "c"])
    ax = plots.plot_activation_scales(scales)
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.lines] == ["small", "he"]
    assert np.isnan(ax.lines[0].get_ydata()[2])
    assert [label.get_text() for label in ax.get_xticklabels()] == ["a", "b", "c"]


def test_first_steps_mark_the_plateau_and_each_diverged_run():
    steps = pd.RangeIndex(1, 11)
    losses = {
        "flat": pd.Series(np.full(10, math.log(10)), index=steps),
        "blown up": pd.Series([2.9, 40.0], index=pd.RangeIndex(1, 3)),
    }
    ax = plots.plot_first_steps(losses)
    labels = [line.get_label() for line in ax.lines]
    assert "blown up (loss 4e+01 at step 2, then diverged)" in labels
    plateau = [line for line in ax.lines if list(line.get_ydata()) == [math.log(10)] * 2]
    assert len(plateau) == 1
    crosses = [line for line in ax.lines if line.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_ydata()[0] <= 4.0


def test_budget_curves_show_the_measured_points_and_name_each_network_with_its_parameters():
    curve = pd.DataFrame({"seconds": [60.0, 120.0], "steps": [10, 20], "accuracy": [0.5, 0.6],
                          "val_accuracy": [0.7, 0.8]})
    run = BudgetRun(config=None, params=1234, seconds=120.0, steps=20, val_accuracy=0.8, curve=curve)
    ax = plots.plot_budget_curves({"dense": run})
    (line,) = ax.lines
    assert line.get_label() == "dense: 1,234 parameters"
    np.testing.assert_allclose(line.get_xdata(), [1, 2])
    np.testing.assert_allclose(line.get_ydata(), [0.7, 0.8])


def test_score_map_labels_each_window_and_marks_wrong_ones():
    score_map = np.zeros((1, 2, 10))
    score_map[0, 0, 3] = score_map[0, 1, 4] = 1
    fig = plots.plot_score_map(np.zeros((32, 64)), score_map, window=32, labels=np.array([[3, 5]]))
    texts = {text.get_text(): text for text in fig.axes[0].texts}
    assert set(texts) == {"Dress", "Coat"}
    assert texts["Coat"].get_bbox_patch().get_facecolor() == matplotlib.colors.to_rgba("tab:red")
    assert len(fig.axes[0].patches) == 2


def test_score_map_refuses_maps_of_the_wrong_rank():
    with pytest.raises(InvalidArgument, match=r"Received: image of shape \(32, 32\), score_map of shape \(10,\)"):
        plots.plot_score_map(np.zeros((32, 32)), np.zeros(10), window=32)


def test_accuracy_against_macs_places_each_network_and_names_it():
    table = pd.DataFrame({"macs": [15.5e9, 3.9e9], "params": [138e6, 25.6e6], "top1": [0.713, 0.749]},
                         index=["VGG16", "ResNet50"])
    ax = plots.plot_accuracy_vs_macs(table)
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[15.5, 71.3], [3.9, 74.9]])
    assert [text.get_text().split("\n")[0] for text in ax.texts] == ["VGG16", "ResNet50"]


@pytest.mark.parametrize(
    "call, says",
    [
        (lambda: plots.plot_accuracy_vs_macs(pd.DataFrame({"macs": [1]})), r"columns \['macs', 'params', 'top1'\]"),
        (lambda: plots.plot_activation_scales([1, 2]), "Received: scales of type list"),
        (lambda: plots.plot_first_steps({}), "Received: losses of type dict"),
        (lambda: plots.plot_budget_curves([]), "Received: runs of type list"),
    ],
)
def test_history_plots_refuse_what_they_cannot_draw(call, says):
    with pytest.raises(InvalidArgument, match=says):
        call()
