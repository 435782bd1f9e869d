"""The Performance appendix's figures, drawn from the shipped reference run."""

import pytest

from vggcourse import InvalidArgument, bench


@pytest.fixture(scope="module")
def results():
    return bench.load_results()



def _bar_values(ax, horizontal=True):
    return [patch.get_width() if horizontal else patch.get_height() for patch in ax.patches]


def test_pipeline_bars_are_each_pipelines_own_memory_and_first_batch(results):
    fig = bench.plot_pipelines(results)
    memory, first_batch = fig.axes
    pipeline = results["pipeline"]
    assert _bar_values(memory) == [pipeline["ours"]["own_rss_mb"], pipeline["d2l"]["own_rss_mb"]]
    assert _bar_values(first_batch) == [pipeline["ours"]["first_batch_s"], pipeline["d2l"]["first_batch_s"]]
    assert memory.get_xscale() == "log"
    assert [label.get_text() for label in memory.get_yticklabels()] == ["course", "d2l"]


def test_train_speed_bars_are_the_medians_then_the_variants(results):
    ax = bench.plot_train_speeds(results)
    train = results["train"]
    expected = [train["ex_per_s"][key] for key in ("ours", "ours_plain_sgd", "d2l")]
    expected += list(train["variants_ex_per_s"].values())
    assert _bar_values(ax) == pytest.approx(expected)
    labels = [label.get_text() for label in ax.get_yticklabels()]
    assert labels[:3] == ["course", "course, d2l's optimizer", "d2l"]
    assert len(labels) == 3 + len(bench.VARIANTS)


def test_profile_bars_add_up_to_the_op_time(results):
    ax = bench.plot_profile(results)
    profile = results["profile"]
    assert sum(_bar_values(ax)) == pytest.approx(profile["op_ms_per_step"], rel=1e-6)
    assert len(ax.patches) == len(profile["categories"])
    widths = _bar_values(ax)
    assert widths == sorted(widths), "the longest bar is on top"


def test_layer_rates_show_each_layer_forward_and_backward_under_the_matmul_line(results):
    ax = bench.plot_layer_rates(results)
    layers = results["profile"]["layers"]
    heights = _bar_values(ax, horizontal=False)
    assert heights == [row["forward_gflops"] for row in layers] + [row["backward_gflops"] for row in layers]
    assert ax.lines[0].get_ydata()[0] == results["efficiency"]["matmul_gflops"]


def test_time_to_accuracy_curve_is_accuracy_against_minutes(results):
    ax = bench.plot_time_to_accuracy(results)
    tta = results["time_to_accuracy"]
    curve = ax.lines[0]
    assert list(curve.get_xdata()) == pytest.approx([s / 60 for s in tta["epoch_end_s"]])
    assert list(curve.get_ydata()) == pytest.approx(tta["val_accuracy"])
    assert ax.lines[1].get_ydata()[0] == tta["target"]


@pytest.mark.parametrize(
    "plot, section",
    [
        (bench.plot_pipelines, "pipeline"),
        (bench.plot_train_speeds, "train"),
        (bench.plot_profile, "profile"),
        (bench.plot_layer_rates, "profile"),
        (bench.plot_time_to_accuracy, "time_to_accuracy"),
    ],
)
def test_figures_name_the_section_that_the_results_lack(results, plot, section):
    lacking = {**results, section: None}
    with pytest.raises(InvalidArgument, match=f"with a '{section}' section.*Received: results of type dict"):
        plot(lacking)
    with pytest.raises(InvalidArgument, match="Received: results of type list"):
        plot([])


def test_quick_settings_are_small_and_refuse_an_unknown_preset():
    quick = bench.quick_settings("cpu")
    assert (quick.num_examples, quick.profile, quick.time_to_accuracy) == (10_000, False, False)
    assert bench.quick_settings("smoke").num_examples < quick.num_examples
    with pytest.raises(InvalidArgument, match="Received: preset='tpu'"):
        bench.quick_settings("tpu")
