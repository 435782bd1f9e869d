"""Prints pip constraints that pin every requirement in pyproject.toml to its lower bound.

CI installs the oldest supported stack with them (`pip install -c`), so every `>=` in pyproject.toml
is a version that CI has run. A requirement without a lower bound is an error: it would claim
support for versions that nothing tests.

Usage: python .ci/oldest_constraints.py > oldest.txt   (Python 3.11+, standard library only)
"""

import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What the oldest CI job installs. `gpu` is `cpu` with CUDA; tests/test_packaging.py checks that its
# lower bounds are the same as `cpu`'s, since CI has no GPU to install it on.
EXTRAS = ("cpu", "book", "test")
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?(?P<specifiers>[^;]*)")
LOWER_BOUND = re.compile(r">=\s*(?P<version>[^,\s]+)")


def lower_bounds(project, extras=EXTRAS):
    """Returns {name: version} for the dependencies and the given extras, or raises ValueError."""
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    bounds = {}
    for requirement in requirements:
        match = REQUIREMENT.match(requirement.strip())
        bound = match and LOWER_BOUND.search(match["specifiers"])
        if not bound:
            raise ValueError(
                "Every requirement needs a lower bound that CI can test (`name>=version`). "
                f"Received: {requirement!r}"
            )
        name = re.sub(r"[-_.]+", "-", match["name"]).lower()
        if bounds.setdefault(name, bound["version"]) != bound["version"]:
            raise ValueError(f"Two lower bounds for {name}: {bounds[name]} and {bound['version']}")
    return bounds


def main():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    try:
        bounds = lower_bounds(project)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, version in bounds.items():
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
