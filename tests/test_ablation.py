"""The recipe's ablation: rows that end at the cpu preset, judged on a validation split, tested once."""

import dataclasses
import json

import pytest

from vggcourse import PRESETS, InvalidArgument, ablation, load_fashion_mnist, plots
from vggcourse.cli import main


def test_each_row_adds_one_step_to_the_recipe_kept_so_far_from_d2ls_to_the_cpu_preset():
    rows = ablation.ablation_configs()
    first = rows[0].config
    assert first == PRESETS["gpu"].replace(name=first.name, image_size=32, val_split=5000,
                                           epochs=PRESETS["cpu"].epochs)
    assert all(row.config.val_split == 5000 for row in rows), "every row is judged on the same split"
    recipe = first
    for row, step in zip(rows[1:], ablation.ABLATION_STEPS[1:]):
        assert row.config == recipe.replace(name=row.config.name, **step.changes), row.label
        assert (row.kept, row.purpose) == (step.kept, step.purpose)
        if row.kept:
            recipe = row.config
    assert recipe == PRESETS["cpu"].replace(name=recipe.name, val_split=5000)


def test_steps_whose_kept_recipe_misses_the_preset_are_refused():
    steps = list(ablation.ABLATION_STEPS)
    steps[1] = steps[1]._replace(kept=not steps[1].kept)
    with pytest.raises(InvalidArgument, match="kept steps to end at the 'cpu' configuration"):
        ablation.ablation_configs(steps=steps)


def test_steps_that_share_a_key_are_refused():
    steps = list(ablation.ABLATION_STEPS)
    steps[2] = steps[2]._replace(key=steps[1].key)
    with pytest.raises(InvalidArgument, match="a key of its own. Received: keys"):
        ablation.ablation_configs(steps=steps)


def test_an_ingredient_is_kept_when_it_beats_the_recipe_kept_so_far_at_what_it_is_for():
    def results(*rows, n=None):
        return {"rows": [{"val_accuracy": [0.1, accuracy], "seconds": seconds, "purpose": purpose,
                          "config": {"val_split": n}} for accuracy, seconds, purpose in rows]}

    accuracy = results((0.80, 60, "accuracy"), (0.85, 60, "accuracy"), (0.84, 50, "accuracy"),
                       (0.86, 70, "accuracy"), (0.86, 70, "accuracy"))
    assert ablation.validation_decisions(accuracy) == [True, True, False, True, False]
    # A speed step is judged on its minutes, whatever its accuracy.
    speed = results((0.80, 60, "accuracy"), (0.70, 30, "speed"), (0.90, 40, "speed"))
    assert ablation.validation_decisions(speed) == [True, True, False]
    # On 1,600 images 0.80 has a standard error of 0.01: a gain must exceed it.
    noisy = results((0.80, 60, "accuracy"), (0.809, 60, "accuracy"), (0.811, 60, "accuracy"), n=1600)
    assert ablation.standard_error(noisy["rows"][0]) == pytest.approx(0.01)
    assert ablation.validation_decisions(noisy) == [True, False, True]


def test_the_shipped_run_matches_the_steps_and_keeps_what_its_validation_split_says():
    if not ablation.REFERENCE.exists():
        pytest.skip("no full run of the ablation is recorded yet")
    results = ablation.load_ablation()
    rows = ablation.ablation_configs()
    assert [(row["key"], row["label"]) for row in results["rows"]] == [(row.key, row.label) for row in rows]
    assert [row["config"] for row in results["rows"]] == [dataclasses.asdict(row.config) for row in rows]
    assert [row["kept"] for row in results["rows"]] == ablation.validation_decisions(results)
    assert 0.5 < results["test_accuracy"] <= 1
    # The test accuracy is that of a network the run trained, not of measurements it reused.
    last_kept = max(i for i, row in enumerate(results["rows"]) if row["kept"])
    assert results["rows"][last_kept]["reused"] is False


def test_the_ablate_command_trains_every_row_and_tests_only_the_recipe_kept(tmp_path, capsys):
    path = tmp_path / "ablation.json"
    assert main(["ablate", "--tiny", "--source", "sample", "--json", str(path)]) == 0
    results = ablation.load_ablation(path)
    steps = ablation.ABLATION_STEPS
    assert [row["label"] for row in results["rows"]] == [step.label for step in steps]
    assert [row["kept"] for row in results["rows"]] == [i == 0 or step.kept for i, step in enumerate(steps)]
    assert all(len(row["val_accuracy"]) == row["config"]["epochs"] for row in results["rows"])
    assert all(row["config"]["val_split"] == 50 for row in results["rows"])
    assert 0 <= results["test_accuracy"] <= 1 and results["machine"]["cores"] > 0
    table = ablation.ablation_table(results)
    assert list(table.columns) == ["validation accuracy", "minutes", "kept", "test accuracy"]
    last_kept = max(i for i, step in enumerate(steps) if step.kept)
    assert table["test accuracy"].notna().tolist() == [i == last_kept for i in range(len(steps))]
    assert "Results written to" in capsys.readouterr().out
    ax = plots.plot_ablation(results)
    assert [tick.get_text() for tick in ax.get_yticklabels()] == list(table.index)
    assert [bar.get_width() for bar in ax.patches] == pytest.approx(table["validation accuracy"].tolist())


def test_a_rerun_reuses_the_rows_measured_before_and_trains_the_recipe_kept_again():
    rows = ablation.tiny_rows(ablation.ablation_configs())[0:3:2]  # d2l's, He's: two configurations
    data = load_fashion_mnist(source="sample")
    first = ablation.run_ablation(rows, data, verbose=0)
    # A step inserted before the second row renames it; its measurements still match.
    moved = [rows[0], rows[0]._replace(label="inserted", kept=False), rows[1]._replace(
        config=rows[1].config.replace(name="renamed"))]
    again = ablation.run_ablation(moved, data, reuse=first, verbose=0)
    assert [row["reused"] for row in again["rows"]] == [True, True, False]
    assert again["rows"][0]["val_accuracy"] == first["rows"][0]["val_accuracy"]
    assert again["rows"][0]["seconds"] == first["rows"][0]["seconds"]
    assert 0 <= again["test_accuracy"] <= 1


def test_results_of_another_schema_are_refused_by_name(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"rows": []}))
    with pytest.raises(InvalidArgument, match=r"old\.json with schema version None"):
        ablation.load_ablation(old)


def test_plot_ablation_refuses_what_is_not_ablation_results():
    with pytest.raises(InvalidArgument, match="Received: results of type list"):
        plots.plot_ablation([1, 2])
