"""Point the course at its repository: `_config.yml`, every install cell and the README's Colab links.

The repository is set in one place, `repository.url` (and `repository.branch`) in `_config.yml`.
Colab cannot read that file, so two kinds of copies exist: the `REPOSITORY_URL` line and the branch in
the first code cell of every notebook under `book/`, and the Colab links in `README.md`. This script
rewrites the copies to match the setting. Running it again changes nothing.

Usage, from anywhere:

    python scripts/set_repository_url.py                   # make the copies follow _config.yml
    python scripts/set_repository_url.py https://github.com/OWNER/REPO [--branch BRANCH]
                                                           # change _config.yml first, then the copies
    python scripts/set_repository_url.py --branch BRANCH   # only the branch

Only the standard library and PyYAML are needed. Notebooks are rewritten as nbformat writes them
(JSON, one-space indent, sorted keys), so a diff shows only the lines that changed.
"""

import argparse
import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Colab opens notebooks straight from GitHub (colab.research.google.com/github/OWNER/REPO/blob/...).
GITHUB_URL = re.compile(r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?$")
INSTALL_URL_LINE = re.compile(r'^REPOSITORY_URL = "[^"\n]*"$', re.MULTILINE)
INSTALL_BRANCH = re.compile(r'(git\+\{REPOSITORY_URL\}@)[^"\s]+(")')
COLAB_GITHUB_LINK = r"/github/[\w.-]+/[\w.-]+/blob/[^/\s)]+/(?P<path>[^\s)\]]+\.ipynb)"


def parse_github_url(url):
    """Returns (owner, repo) of a GitHub repository URL, or raises ValueError."""
    match = GITHUB_URL.match(url)
    if not match:
        raise ValueError(
            "The repository URL must be a GitHub repository, because Colab opens notebooks from "
            f"GitHub: https://github.com/OWNER/REPO. Received: url={url!r}"
        )
    return match["owner"], match["repo"]


def read_config(root):
    """Returns (url, branch, colab_url) from `_config.yml`."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repository = config.get("repository") or {}
    url = repository.get("url")
    branch = repository.get("branch", "master")  # Jupyter Book's default
    colab_url = (config.get("launch_buttons") or {}).get("colab_url", "https://colab.research.google.com")
    if not url:
        raise ValueError("`_config.yml` has no `repository.url`. Received: repository=" + repr(repository))
    parse_github_url(url)
    return url, str(branch), colab_url.rstrip("/")


def write_config(root, url, branch=None):
    """Sets `repository.url` (and `repository.branch`) in `_config.yml`, keeping its comments."""
    path = root / "_config.yml"
    text = path.read_text(encoding="utf-8")
    block = re.search(r"^repository:[ \t]*\n((?:[ \t]+.*\n|[ \t]*\n)*)", text, re.MULTILINE)
    if not block:
        raise ValueError(f"No `repository:` section in {path}.")
    body = block.group(1)
    settings = {"url": url} if branch is None else {"url": url, "branch": branch}
    for key, value in settings.items():
        body, count = re.subn(rf"^([ \t]+{key}:[ \t]*).*$", lambda m: m.group(1) + value, body,
                              count=1, flags=re.MULTILINE)
        if count != 1:
            raise ValueError(f"No `repository.{key}` line in {path}.")
    new_text = text[: block.start(1)] + body + text[block.end(1):]
    changed = new_text != text
    if changed:
        path.write_text(new_text, encoding="utf-8")
    written = read_config(root)
    if written[0] != url or (branch is not None and written[1] != branch):
        raise RuntimeError(f"{path} did not take the new setting; please edit it by hand.")
    return changed


def _source(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def _set_source(cell, text):
    # nbformat stores a cell's source as a list of lines, each keeping its newline.
    cell["source"] = text if isinstance(cell["source"], str) else text.splitlines(keepends=True)


def update_notebook(path, url, branch):
    """Rewrites the install cell's repository and branch. Returns whether the file changed."""
    raw = path.read_text(encoding="utf-8")
    notebook = json.loads(raw)
    code_cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    if not code_cells or not INSTALL_URL_LINE.search(_source(code_cells[0])):
        raise ValueError(f"{path}: the first code cell is not the install cell (no REPOSITORY_URL line).")
    cell = code_cells[0]
    text = INSTALL_URL_LINE.sub(f'REPOSITORY_URL = "{url}"', _source(cell))
    text, count = INSTALL_BRANCH.subn(rf"\g<1>{branch}\g<2>", text)
    if count != 1:
        raise ValueError(f"{path}: the install cell has no `git+{{REPOSITORY_URL}}@BRANCH` to rewrite.")
    _set_source(cell, text)
    new_raw = json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    if new_raw == raw:
        return False
    path.write_text(new_raw, encoding="utf-8")
    return True


def update_readme(path, url, branch, colab_url):
    """Rewrites every Colab link in the README. Returns (whether it changed, number of links)."""
    owner, repo = parse_github_url(url)
    text = path.read_text(encoding="utf-8")
    link = re.compile(re.escape(colab_url) + COLAB_GITHUB_LINK)
    new_text, count = link.subn(lambda m: f"{colab_url}/github/{owner}/{repo}/blob/{branch}/{m['path']}", text)
    if new_text != text:
        path.write_text(new_text, encoding="utf-8")
    return new_text != text, count


def main(argv=None, root=ROOT):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", help="new repository URL, https://github.com/OWNER/REPO")
    parser.add_argument("--branch", help="new branch (default: keep `repository.branch`)")
    args = parser.parse_args(argv)
    try:
        if args.url or args.branch:
            url = args.url or read_config(root)[0]
            parse_github_url(url)
            if write_config(root, url, args.branch):
                print("updated _config.yml")
        url, branch, colab_url = read_config(root)
        for notebook in sorted((root / "book").glob("*.ipynb")):
            if update_notebook(notebook, url, branch):
                print(f"updated {notebook.relative_to(root)}")
        changed, links = update_readme(root / "README.md", url, branch, colab_url)
        if changed:
            print(f"updated README.md ({links} Colab links)")
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"repository: {url} (branch {branch})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
