"""Every code and output line of the book fits its column: at most 80 characters.

A longer line makes the reader scroll sideways. The browser test checks the
rendered pages; this test points at the exact cell and line in the notebooks.
"""

import re

import pytest
from book_layout import cell_source, read_notebook, toc_notebooks

MAX_LINE = 80
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Values glued for the prose are not shown in the cell.
GLUE_RECORD = "application/papermill.record/"

NOTEBOOKS = toc_notebooks()


def output_lines(output):
    if output["output_type"] == "stream":
        text = output["text"]
    elif output["output_type"] in ("execute_result", "display_data"):
        data = output.get("data", {})
        if any(key.startswith(GLUE_RECORD) for key in data):
            return []
        text = data.get("text/plain", "") if "image/png" not in data else ""
    else:  # a traceback, which the book shows folded by Keras' own formatting
        return []
    text = text if isinstance(text, str) else "".join(text)
    return ANSI.sub("", text).splitlines()


def long_lines(path):
    found = []
    for index, cell in enumerate(read_notebook(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        for line in cell_source(cell).splitlines():
            if len(line) > MAX_LINE:
                found.append(f"cell {index}, code ({len(line)}): {line[:60]}...")
        for output in cell.get("outputs", []):
            for line in output_lines(output):
                if len(line.rstrip()) > MAX_LINE:
                    found.append(f"cell {index}, output ({len(line)}): {line[:60]}...")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_code_and_output_lines_fit_the_column(path):
    found = long_lines(path)
    assert not found, f"{path.name}: lines over {MAX_LINE} characters:\n" + "\n".join(found)


def test_a_long_output_line_is_found(tmp_path):
    import json

    notebook = {"cells": [{"cell_type": "code", "source": "print('x' * 81)", "metadata": {},
                           "outputs": [{"output_type": "stream", "name": "stdout",
                                        "text": "x" * 81 + "\n"}]}]}
    path = tmp_path / "wide.ipynb"
    path.write_text(json.dumps(notebook))
    assert long_lines(path) == [f"cell 0, output (81): {'x' * 60}..."]
