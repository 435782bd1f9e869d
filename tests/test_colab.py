"""Every chapter opens and runs in Colab from the one configured repository.

The repository is set once, in `_config.yml`. The install cell of each chapter and the README's Colab
links are copies of it that `scripts/set_repository_url.py` rewrites; these tests say they agree.
"""

import json
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
from book_layout import ROOT, cell_source, colab_link, load_config, read_notebook, repository, toc_notebooks

NOTEBOOKS = toc_notebooks()
IDS = [path.stem for path in NOTEBOOKS]

# Chapters that train or benchmark ask Colab for a GPU; the others run in seconds on a CPU and should not
# use up a learner's GPU quota. A chapter is named here when it joins the table of contents.
GPU_CHAPTERS = ("training", "performance")

URL_LINE = re.compile(r'^REPOSITORY_URL = "(?P<url>[^"\n]*)"$', re.MULTILINE)
PIP_SPEC = re.compile(r'"vggcourse\{extra\} @ git\+\{REPOSITORY_URL\}@(?P<branch>[^"\s]+)"')
TENSORFLOW_MIN_LINE = re.compile(r'^TENSORFLOW_MIN = "(?P<version>[\d.]+)"', re.MULTILINE)
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\]]+")


def first_code_cell(path):
    """The first code cell; only Markdown (the title and an introduction) may come before it."""
    cells = read_notebook(path)["cells"]
    first_code = next(i for i, cell in enumerate(cells) if cell["cell_type"] == "code")
    assert all(cell["cell_type"] == "markdown" for cell in cells[:first_code])
    return cells[first_code]


def install_cell(path):
    return cell_source(first_code_cell(path))


def install_cell_problems(root):
    """Everything about the install cells that disagrees with `_config.yml`, for any copy of the repo."""
    config = load_config(root)
    _, _, branch = repository(config)
    problems = []
    for path in toc_notebooks(root):
        source = install_cell(path)
        url = URL_LINE.search(source)
        spec = PIP_SPEC.search(source)
        if not url or url["url"] != config["repository"]["url"]:
            problems.append(f"{path.name}: REPOSITORY_URL is {url and url['url']!r}, "
                            f"_config.yml says {config['repository']['url']!r}")
        if not spec or spec["branch"] != branch:
            problems.append(f"{path.name}: installs from branch {spec and spec['branch']!r}, "
                            f"_config.yml says {branch!r}")
    return problems


def readme_problems(root):
    """Every way the README's Colab links disagree with the notebooks in the toc and `_config.yml`."""
    config = load_config(root)
    expected = {colab_link(config, path, root) for path in toc_notebooks(root)}
    found = set(COLAB_LINK.findall((root / "README.md").read_text(encoding="utf-8")))
    return ([f"README has no Colab link {link}" for link in sorted(expected - found)]
            + [f"README links {link}, which is not a notebook in _toc.yml at the configured "
               "repository and branch" for link in sorted(found - expected)])


def test_the_toc_lists_at_least_one_notebook():
    assert NOTEBOOKS, "_toc.yml lists no notebooks, so the tests below would check nothing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_starts_with_the_install_cell(path):
    source = install_cell(path)
    assert URL_LINE.search(source), f"{path.name}: the first code cell has no REPOSITORY_URL line"
    assert PIP_SPEC.search(source), f"{path.name}: the first code cell does not pip install vggcourse"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_install_cell_is_hidden_in_the_book_and_runs_first_in_colab(path):
    # The book's pages open on the chapter, not on pip; Colab ignores the tag and runs the cell.
    assert "hide-input" in first_code_cell(path)["metadata"].get("tags", []), \
        f"{path.name}: tag the install cell hide-input"
    long = [line for line in install_cell(path).splitlines() if len(line) > 80]
    assert not long, f"{path.name}: install cell lines longer than 80 characters: {long}"


def test_install_cell_is_the_same_in_every_chapter():
    # One cell to fix when Colab changes, and one cell for the rewrite script to understand.
    cells = {path.name: install_cell(path) for path in NOTEBOOKS}
    first = NOTEBOOKS[0].name
    different = [name for name, source in cells.items() if source != cells[first]]
    assert not different, f"the install cell of {different} differs from {first}'s"


def test_install_cells_install_from_the_configured_repository_and_branch():
    assert install_cell_problems(ROOT) == []


def test_readme_links_every_chapter_in_the_toc_to_colab_and_nothing_else():
    assert readme_problems(ROOT) == []


def test_a_plain_install_does_not_pull_a_second_tensorflow():
    # Colab already has TensorFlow; `pip install vggcourse @ git+...` must not bring another one.
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pulled = [dep for dep in project["dependencies"] if re.match(r"(tensorflow|keras|tf-)", dep, re.I)]
    assert pulled == []


def lower_bound(requirement_prefix):
    """The `>=` version of the first requirement in pyproject.toml's extras that starts with the prefix."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [req for reqs in project["optional-dependencies"].values() for req in reqs]
    found = [re.search(r">=([\d.]+)", req)[1] for req in extras if req.startswith(requirement_prefix)]
    assert found, f"pyproject.toml has no extra requiring {requirement_prefix}>=..."
    return found


def test_install_cell_warns_below_the_tensorflow_lower_bound_of_pyproject():
    cell_minimum = TENSORFLOW_MIN_LINE.search(install_cell(NOTEBOOKS[0]))["version"]
    assert set(lower_bound("tensorflow-cpu") + lower_bound("tensorflow[and-cuda]")) == {cell_minimum}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_training_chapters_ask_colab_for_a_gpu(path):
    metadata = read_notebook(path)["metadata"]
    if path.stem in GPU_CHAPTERS:
        assert metadata.get("accelerator") == "GPU", f"{path.name} trains, so it should ask for a GPU"
    else:
        assert metadata.get("accelerator") in (None, "none", "None"), \
            f"{path.name} does not train; add it to GPU_CHAPTERS if it needs a GPU"


# Running the install cell: a fresh interpreter without site-packages (`-S`), so neither vggcourse nor
# TensorFlow nor anything else is importable unless a test puts it there. `subprocess.run` is replaced by
# a recorder, so nothing is installed; the recorded calls go to a file, and what the cell prints is
# returned.
RUNNER = textwrap.dedent("""
    import json, subprocess, sys
    calls_file, cell_file, in_colab, *paths = sys.argv[1:]
    sys.path[:0] = paths
    if in_colab == "colab":
        import google.colab  # Colab's kernel has imported it before the first cell runs
    calls = []
    subprocess.run = lambda args, **kwargs: calls.append([str(a) for a in args])
    exec(compile(open(cell_file).read(), "install cell", "exec"), {"__name__": "__main__"})
    json.dump(calls, open(calls_file, "w"))
""")

COLAB_TENSORFLOW = "2.19.0"  # what Colab's runtime had at its last announced upgrade


def fake_site(root, package, distribution=None, version=None):
    """A folder that makes `package` importable and, if given, `distribution` installed at `version`."""
    (root / package).mkdir(parents=True, exist_ok=True)
    (root / package / "__init__.py").touch()
    if distribution:
        info = root / f"{distribution.replace('-', '_')}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    return root


def run_install_cell(tmp_path, *, colab, vggcourse_installed, tensorflow=COLAB_TENSORFLOW,
                     tensorflow_distribution="tensorflow"):
    """Runs the install cell; returns (pip calls, printed lines). `tensorflow=None`: not installed."""
    fake_colab = tmp_path / "colab_site"
    (fake_colab / "google" / "colab").mkdir(parents=True, exist_ok=True)
    (fake_colab / "google" / "__init__.py").touch()
    (fake_colab / "google" / "colab" / "__init__.py").touch()
    paths = [str(fake_colab)] if colab else []
    if vggcourse_installed:
        paths.append(str(fake_site(tmp_path / "vggcourse_site", "vggcourse")))
    if tensorflow:
        site = tmp_path / f"tensorflow_site_{tensorflow_distribution}_{tensorflow}"
        paths.append(str(fake_site(site, "tensorflow", tensorflow_distribution, tensorflow)))
    cell = tmp_path / "cell.py"
    cell.write_text(install_cell(NOTEBOOKS[0]), encoding="utf-8")
    calls = tmp_path / "calls.json"
    result = subprocess.run(
        [sys.executable, "-S", "-c", RUNNER, str(calls), str(cell), "colab" if colab else "elsewhere", *paths],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(calls.read_text()), result.stdout.splitlines()


def expected_pip_spec(extra=""):
    config = load_config()
    _, _, branch = repository(config)
    return f"vggcourse{extra} @ git+{config['repository']['url']}@{branch}"


@pytest.mark.parametrize("tensorflow", [None, "2.9.3", COLAB_TENSORFLOW])
def test_install_cell_does_nothing_outside_colab(tmp_path, tensorflow):
    for installed in (False, True):
        assert run_install_cell(tmp_path, colab=False, vggcourse_installed=installed,
                                tensorflow=tensorflow) == ([], [])


def test_install_cell_in_this_environment_does_nothing():
    # The kernels that nbval and the book use: vggcourse installed, no Colab.
    result = subprocess.run([sys.executable, "-c", install_cell(NOTEBOOKS[0])],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_install_cell_in_colab_pip_installs_vggcourse_without_a_second_tensorflow(tmp_path):
    calls, printed = run_install_cell(tmp_path, colab=True, vggcourse_installed=False)
    assert printed == []
    assert len(calls) == 1, calls
    command = calls[0]
    assert command[1:4] == ["-m", "pip", "install"]
    assert command[-1] == expected_pip_spec()
    assert not any("tensorflow" in part or "[" in part for part in command)


def test_install_cell_in_colab_without_tensorflow_installs_the_gpu_extra(tmp_path):
    calls, printed = run_install_cell(tmp_path, colab=True, vggcourse_installed=False, tensorflow=None)
    assert printed == []
    assert [command[-1] for command in calls] == [expected_pip_spec("[gpu]")]
    # Even where vggcourse is there already: without TensorFlow it cannot be imported.
    calls, _ = run_install_cell(tmp_path, colab=True, vggcourse_installed=True, tensorflow=None)
    assert [command[-1] for command in calls] == [expected_pip_spec("[gpu]")]


@pytest.mark.parametrize("old", ["2.18.1", "2.9.3", "1.15.0"])
def test_install_cell_in_colab_says_in_one_line_when_tensorflow_is_older_than_tested(tmp_path, old):
    calls, printed = run_install_cell(tmp_path, colab=True, vggcourse_installed=False, tensorflow=old)
    minimum = TENSORFLOW_MIN_LINE.search(install_cell(NOTEBOOKS[0]))["version"]
    assert printed == [f"TensorFlow {old} is older than {minimum}, the oldest the course supports."]
    assert len(printed[0]) <= 80
    # It still installs the course, without replacing the runtime's TensorFlow.
    assert [command[-1] for command in calls] == [expected_pip_spec()]


@pytest.mark.parametrize("version, distribution", [("2.19.0", "tensorflow"), ("2.21.0rc1", "tensorflow"),
                                                   ("3.0.0", "tensorflow"), ("2.22.0.dev20260101", "tf-nightly")])
def test_install_cell_in_colab_is_silent_from_the_tested_tensorflow_on(tmp_path, version, distribution):
    calls, printed = run_install_cell(tmp_path, colab=True, vggcourse_installed=True, tensorflow=version,
                                      tensorflow_distribution=distribution)
    assert (calls, printed) == ([], [])


def test_install_cell_in_colab_runs_again_without_reinstalling(tmp_path):
    assert run_install_cell(tmp_path, colab=True, vggcourse_installed=True) == ([], [])


# The rewrite script, on a copy of the repository.
SCRIPT = ROOT / "scripts" / "set_repository_url.py"


def copy_of_repository(tmp_path):
    copy = tmp_path / "repo"
    (copy / "book").mkdir(parents=True)
    (copy / "scripts").mkdir()
    for name in ("_config.yml", "_toc.yml", "README.md", "scripts/set_repository_url.py"):
        shutil.copy2(ROOT / name, copy / name)
    for path in (ROOT / "book").iterdir():
        if path.suffix in (".ipynb", ".md"):
            shutil.copy2(path, copy / "book" / path.name)
    return copy


def run_script(copy, *args):
    result = subprocess.run([sys.executable, str(copy / "scripts" / SCRIPT.name), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def snapshot(copy):
    return {path.relative_to(copy): path.read_bytes() for path in sorted(copy.rglob("*")) if path.is_file()}


def test_set_repository_url_moves_every_copy_to_a_fork_and_back(tmp_path):
    copy = copy_of_repository(tmp_path)
    before = snapshot(copy)
    original = load_config(copy)["repository"]

    output = run_script(copy, "https://github.com/someone/vgg-fork", "--branch", "dev")
    assert "updated _config.yml" in output
    config = load_config(copy)
    assert (config["repository"]["url"], config["repository"]["branch"]) == \
        ("https://github.com/someone/vgg-fork", "dev")
    assert install_cell_problems(copy) == []
    assert readme_problems(copy) == []
    readme = (copy / "README.md").read_text(encoding="utf-8")
    assert "/github/someone/vgg-fork/blob/dev/book/" in readme
    assert "/github/vggcourse/vggcourse/" not in readme
    # Only the URL and branch lines change: comments in _config.yml and notebook formatting survive.
    changed = snapshot(copy)
    for name, content in changed.items():
        old, new = before[name].decode().splitlines(), content.decode().splitlines()
        assert len(old) == len(new), f"{name} changed shape"
        for old_line, new_line in zip(old, new):
            if old_line != new_line:
                assert re.search(r"url:|branch:|REPOSITORY_URL =|git\+|colab\.research", new_line), new_line

    assert run_script(copy, "https://github.com/someone/vgg-fork", "--branch", "dev").startswith("repository:")
    assert snapshot(copy) == changed, "a second run changed something"

    run_script(copy, original["url"], "--branch", str(original["branch"]))
    assert snapshot(copy) == before


def test_set_repository_url_rejects_a_url_colab_cannot_open(tmp_path):
    copy = copy_of_repository(tmp_path)
    before = snapshot(copy)
    result = subprocess.run([sys.executable, str(copy / "scripts" / SCRIPT.name), "https://gitlab.com/a/b"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Received: url='https://gitlab.com/a/b'" in result.stderr
    assert snapshot(copy) == before


def test_set_repository_url_with_no_argument_changes_nothing_here(tmp_path):
    copy = copy_of_repository(tmp_path)
    before = snapshot(copy)
    run_script(copy)
    assert snapshot(copy) == before, "the repository's copies do not match _config.yml; run the script"
