"""What the book is made of, read from `_config.yml` and `_toc.yml`, for the tests of the book.

Tests that check every chapter take the chapters from the table of contents, so a new chapter is
checked as soon as it is listed there.
"""

import json
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]

COLAB_DEFAULT = "https://colab.research.google.com"


def load_config(root=ROOT):
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))


def _toc_entries(node):
    # A jb-book toc nests files under `chapters`, `parts` and `sections`; keep the reading order.
    if isinstance(node, dict):
        if "file" in node:
            yield node["file"]
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or ():
                yield from _toc_entries(child)


def toc_docnames(root=ROOT):
    """Every page in the table of contents, root first, as Sphinx names them (`book/intro`)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"], *_toc_entries(toc)]
    return [re.sub(r"\.(md|ipynb)$", "", name) for name in names]


def source_path(docname, root=ROOT):
    for suffix in (".ipynb", ".md"):
        path = root / f"{docname}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"_toc.yml lists {docname!r}, but neither {docname}.ipynb nor {docname}.md exists")


def toc_notebooks(root=ROOT):
    """The chapters that are notebooks, in the order of the table of contents."""
    paths = [source_path(name, root) for name in toc_docnames(root)]
    return [path for path in paths if path.suffix == ".ipynb"]


def read_notebook(path):
    return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))


def cell_source(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def markdown_text(path):
    """The Markdown of a page: a .md file, or a notebook's Markdown cells joined."""
    path = pathlib.Path(path)
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    cells = read_notebook(path)["cells"]
    return "\n\n".join(cell_source(c) for c in cells if c["cell_type"] == "markdown")


def page_title(path):
    """The first level-1 heading, which Sphinx uses as the page's title in the sidebar."""
    match = re.search(r"^# (.+)$", markdown_text(path), re.MULTILINE)
    if not match:
        raise ValueError(f"{path} has no level-1 heading")
    return match.group(1).strip()


def repository(config):
    """(owner, repo, branch) from `repository.url` and `repository.branch`."""
    url = config["repository"]["url"]
    match = re.match(r"^https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?$", url)
    assert match, f"repository.url is not a GitHub repository URL: {url!r}"
    # Jupyter Book's default branch is master.
    return match.group(1), match.group(2), str(config["repository"].get("branch", "master"))


def colab_link(config, notebook, root=ROOT):
    """Where Colab opens this notebook from, as the launch button and the README should link it."""
    owner, repo, branch = repository(config)
    colab = (config.get("launch_buttons") or {}).get("colab_url", COLAB_DEFAULT).rstrip("/")
    path_to_book = str(config["repository"].get("path_to_book") or "").strip("/")
    relative = pathlib.Path(notebook).resolve().relative_to(root.resolve()).as_posix()
    if path_to_book:
        relative = f"{path_to_book}/{relative}"
    return f"{colab}/github/{owner}/{repo}/blob/{branch}/{relative}"
