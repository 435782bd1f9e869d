"""pyproject.toml claims only what CI tests: its lower bounds are the oldest CI job's exact versions."""

import importlib.metadata
import importlib.util
import re

import pytest
from book_layout import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _load_constraints_script():
    spec = importlib.util.spec_from_file_location("oldest_constraints", ROOT / ".ci" / "oldest_constraints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oldest = _load_constraints_script()


def test_oldest_job_pins_colabs_tensorflow_and_keras():
    # Colab's last announced upgrade (googlecolab/colabtools#5489): TensorFlow 2.19.0, Keras 3.10.0.
    bounds = oldest.lower_bounds(PROJECT)
    assert (bounds["tensorflow-cpu"], bounds["keras"]) == ("2.19", "3.10")


def test_every_requirement_the_oldest_job_installs_has_a_lower_bound():
    bounds = oldest.lower_bounds(PROJECT)
    installed = PROJECT["dependencies"] + [req for extra in oldest.EXTRAS
                                           for req in PROJECT["optional-dependencies"][extra]]
    assert len(bounds) == len(installed)


def test_gpu_extra_has_the_lower_bounds_that_the_cpu_extra_is_tested_with():
    # CI has no GPU: the gpu extra is trusted because it asks for the versions the cpu extra tests.
    gpu = oldest.lower_bounds(PROJECT, extras=("gpu",))
    cpu = oldest.lower_bounds(PROJECT, extras=("cpu",))
    assert (gpu["tensorflow"], gpu["keras"]) == (cpu["tensorflow-cpu"], cpu["keras"])


def test_constraints_refuse_a_requirement_without_a_lower_bound():
    project = {"dependencies": ["numpy>=1.26", "pandas<3"], "optional-dependencies": {}}
    with pytest.raises(ValueError, match=r"Received: 'pandas<3'"):
        oldest.lower_bounds(project, extras=())
    project = {"dependencies": ["numpy>=2.0"], "optional-dependencies": {"x": ["NumPy>=1.26"]}}
    with pytest.raises(ValueError, match="Two lower bounds for numpy"):
        oldest.lower_bounds(project, extras=("x",))


def test_pytest_is_capped_and_this_run_is_below_the_cap():
    (requirement,) = [req for req in PROJECT["optional-dependencies"]["test"] if re.match(r"pytest\b(?!-)", req)]
    cap = re.search(r"<\s*([\d.]+)", requirement)
    assert cap, f"pytest needs an upper bound that CI runs. Received: {requirement!r}"
    version = [int(part) for part in importlib.metadata.version("pytest").split(".")[:2]]
    assert version < [int(part) for part in cap[1].split(".")]
