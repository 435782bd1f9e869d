"""The recipe's ablation: rows that end at the cpu preset, judged on a validation split, tested once."""

import json

import pytest

from vggcourse import PRESETS, InvalidArgument, ablation, plots
from vggcourse.cli import main


def test_the_rows_start_at_d2ls_recipe_and_end_at_the_cpu_preset_one_step_at_a_time():
    rows = ablation.ablation_configs()
    first, last = rows[0][1], rows[-1][1]
    assert first == PRESETS["gpu"].replace(name=first.name, image_size=32, val_split=5000)
    assert last == PRESETS["cpu"].replace(name=last.name, val_split=5000)
    assert all(config.val_split == 5000 for _, config in rows), "every row is judged on the same split"
    for (_, before), (label, after), (_, changes) in zip(rows, rows[1:], ablation.ABLATION_STEPS[1:]):
        assert after == before.replace(name=after.name, **changes), label


def test_steps_that_miss_the_preset_are_refused():
    with pytest.raises(InvalidArgument, match="end at the 'cpu' configuration"):
        ablation.ablation_configs(steps=ablation.ABLATION_STEPS[:-1])


def test_the_ablate_command_trains_every_row_and_tests_only_the_last(tmp_path, capsys):
    path = tmp_path / "ablation.json"
    assert main(["ablate", "--tiny", "--source", "sample", "--json", str(path)]) == 0
    results = ablation.load_ablation(path)
    assert [row["label"] for row in results["rows"]] == [label for label, _ in ablation.ABLATION_STEPS]
    assert all(len(row["val_accuracy"]) == row["config"]["epochs"] for row in results["rows"])
    assert all(row["config"]["val_split"] == 50 for row in results["rows"])
    assert 0 <= results["test_accuracy"] <= 1 and results["machine"]["cores"] > 0
    table = ablation.ablation_table(results)
    assert list(table.columns) == ["validation accuracy", "minutes", "test accuracy"]
    assert table["test accuracy"].isna().tolist() == [True] * (len(table) - 1) + [False]
    assert "Results written to" in capsys.readouterr().out
    ax = plots.plot_ablation(results)
    assert [tick.get_text() for tick in ax.get_yticklabels()] == list(table.index)
    assert [bar.get_width() for bar in ax.patches] == pytest.approx(table["validation accuracy"].tolist())


def test_results_of_another_schema_are_refused_by_name(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"rows": []}))
    with pytest.raises(InvalidArgument, match=r"old\.json with schema version None"):
        ablation.load_ablation(old)


def test_plot_ablation_refuses_what_is_not_ablation_results():
    with pytest.raises(InvalidArgument, match="Received: results of type list"):
        plots.plot_ablation([1, 2])
