"""Every chapter in the table of contents ends with exercises whose solutions are hidden, and cites its
sources from `references.bib`.

The chapters are read from their notebook sources; `test_book_browser.py` checks the same things on the
built pages (the citations link into the bibliography, the solutions are collapsed).
"""

import re

import pytest
from book_layout import ROOT, cell_source, markdown_text, read_notebook, toc_notebooks

NOTEBOOKS = toc_notebooks()
IDS = [path.stem for path in NOTEBOOKS]

CITATION = re.compile(r"\{cite(?::\w+)?\}`(?P<keys>[^`]+)`")
BIB_ENTRY = re.compile(r"^@(?!comment|string|preamble)\w+\s*\{\s*(?P<key>[^,\s]+)\s*,", re.IGNORECASE | re.MULTILINE)
DROPDOWN = re.compile(r"^(`{3,}|:{3,})\{dropdown\}", re.MULTILINE)
EXERCISE = re.compile(r"^\d+\.\s", re.MULTILINE)
# Tags that hide a code cell's source until the reader clicks (hide-output would show the code).
HIDING_TAGS = {"hide-cell", "hide-input"}


def bibliography_keys():
    return set(BIB_ENTRY.findall((ROOT / "references.bib").read_text(encoding="utf-8")))


def cited_keys(text):
    return [key.strip() for match in CITATION.finditer(text) for key in match["keys"].split(",")]


def exercises_and_after(path):
    """The cells from the one holding `## Exercises` to the end of the notebook."""
    cells = read_notebook(path)["cells"]
    starts = [i for i, cell in enumerate(cells)
              if cell["cell_type"] == "markdown" and re.search(r"^## Exercises\s*$", cell_source(cell), re.M)]
    assert len(starts) == 1, f"{path.name} should have one '## Exercises' heading, found {len(starts)}"
    return cells[starts[0]:]


def test_references_bib_has_the_works_the_course_builds_on():
    # The VGG paper, AlexNet, d2l, Fashion-MNIST and mixed precision.
    assert {"simonyan2015vgg", "krizhevsky2012alexnet", "zhang2023d2l", "xiao2017fashionmnist",
            "micikevicius2018mixed"} <= bibliography_keys()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_cites_at_least_one_work_in_the_bibliography(path):
    keys = cited_keys(markdown_text(path))
    assert keys, f"{path.name} cites nothing; cite with {{cite:p}}`key` from references.bib"
    unknown = sorted(set(keys) - bibliography_keys())
    assert not unknown, f"{path.name} cites keys that are not in references.bib: {unknown}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_ends_with_exercises(path):
    heading_cell = cell_source(exercises_and_after(path)[0])
    exercises = heading_cell.split("## Exercises", 1)[1]
    assert EXERCISE.search(exercises), f"{path.name}: no numbered exercise under '## Exercises'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_exercise_solutions_are_hidden_until_revealed(path):
    cells = exercises_and_after(path)
    dropdowns = [cell for cell in cells if cell["cell_type"] == "markdown" and DROPDOWN.search(cell_source(cell))]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    shown = [cell_source(cell).splitlines()[0] if cell_source(cell) else "(empty)" for cell in code
             if not HIDING_TAGS & set(cell.get("metadata", {}).get("tags", []))]
    assert dropdowns or code, f"{path.name}: the exercises have no solutions"
    assert not shown, (f"{path.name}: code cells after '## Exercises' show their solution; tag them "
                       f"hide-cell: {shown}")
