"""The package's surface: what importing it gives, and what each module exports."""

import importlib.metadata
import json
import pathlib
import re
import subprocess
import sys

import vggcourse
from vggcourse import backup, bench, callbacks, data, devices, errors, models, pretrained, trace, train

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_package_exports_each_modules_public_names_once():
    # Every public name of these modules; of the shipped network's module,
    # only the loader (its other names are for regenerating the file).
    exported = {module: module.__all__ for module in (models, trace, data, devices, train, callbacks, backup, errors)}
    exported[pretrained] = ["load_trained_vgg"]
    expected = [name for names in exported.values() for name in names]
    assert sorted(vggcourse.__all__) == sorted(expected)
    assert len(set(expected)) == len(expected), "a name is public in two modules"
    for module, names in exported.items():
        for name in names:
            assert getattr(vggcourse, name) is getattr(module, name), name


def test_the_version_is_the_installed_distributions():
    assert vggcourse.__version__ == importlib.metadata.version("vggcourse")


def test_the_benchmark_exports_exactly_what_the_performance_appendix_uses():
    notebook = json.loads((ROOT / "book" / "performance.ipynb").read_text(encoding="utf-8"))
    code = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
    used = set(re.findall(r"\bbench\.(\w+)", code))
    imported = set(re.findall(r"from vggcourse\.bench import (\w+)", code))
    assert set(bench.__all__) == used | imported


def test_importing_the_package_prints_nothing_and_leaves_plots_and_benchmark_to_be_imported_on_their_own():
    # One fresh process, as a learner's kernel: importing vggcourse prints
    # nothing and imports neither matplotlib's plots nor the benchmark; then
    # importing the plots leaves matplotlib's settings as they were.
    fenced_off = ("vggcourse.plots", "vggcourse.bench")
    script = (
        "import sys, matplotlib; before = dict(matplotlib.rcParams)\n"
        "import vggcourse\n"
        f"print(sorted(m for m in sys.modules if m.startswith({fenced_off})))\n"
        "import vggcourse.plots\n"
        "print(sorted(k for k, v in matplotlib.rcParams.items() if before[k] != v))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    imported, changed_settings = result.stdout.splitlines()
    assert (imported, result.stderr) == ("[]", "")
    assert changed_settings == "[]"
