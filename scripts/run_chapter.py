"""Runs a chapter from top to bottom and stores its outputs in the notebook.

Cells tagged ``nbval-skip`` are not run and keep whatever output they have:
a cell that cannot run here, such as one that downloads ImageNet weights in
Colab (no output), or the Performance appendix's "Run it yourself" benchmark,
whose stored output comes from a run of its own. ``jupyter nbconvert
--execute`` would run them.

Usage:
    python scripts/run_chapter.py book/what_vgg_learns.ipynb

Run it without ``VGGCOURSE_SMOKE`` set, so that the stored outputs come from
the full configuration; ``pytest --nbval`` then checks them.
"""

import sys

import nbformat
from nbclient import NotebookClient

SKIP_TAG = "nbval-skip"


class _SkippingClient(NotebookClient):
    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if SKIP_TAG in cell.get("metadata", {}).get("tags", []):
            return cell
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = argv[1]
    notebook = nbformat.read(path, as_version=4)
    _SkippingClient(notebook, timeout=3600, kernel_name="python3",
                    resources={"metadata": {"path": "book"}}).execute()
    nbformat.write(notebook, path)
    print(f"executed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
