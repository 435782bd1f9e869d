"""The built book, opened page by page in headless Chromium, as a reader would see it.

The module builds the book once (`jupyter-book build . -W -n --keep-going --all` into `_build/html`),
serves it over HTTP on 127.0.0.1 (a `file://` page can hide script errors) and visits every page in
`_toc.yml` without any network: what a page needs must ship with the book. A screenshot of each whole page
(1280 pixels wide) is saved in `_build/html/_screenshots/` for people to look at.

Chromium and its driver are Debian's (`apt-get install chromium chromium-driver`); nothing is
downloaded at run time. Without them the tests skip, except in CI (`CI=true`), where they fail.
"""

import functools
import http.server
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import pytest
from book_layout import ROOT, colab_link, load_config, markdown_text, page_title, source_path, toc_docnames

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless Chromium on a machine without a display, a GPU or a network (see shared notes).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WINDOW = (1280, 2400)
HTML = ROOT / "_build" / "html"
SCREENSHOTS = HTML / "_screenshots"
PAGE_TIMEOUT = 30  # seconds for a page, its scripts or its images

DOCNAMES = toc_docnames()
NOTEBOOK_DOCNAMES = [name for name in DOCNAMES if source_path(name).suffix == ".ipynb"]
# Inline $...$ or display $$...$$ in a page's Markdown: the page must show typeset maths.
MATH_IN_SOURCE = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$[^$\n]+\$", re.DOTALL)


def _browser_or_skip():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        message = f"the browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def _jupyter_book():
    beside_python = pathlib.Path(sys.executable).with_name("jupyter-book")
    return str(beside_python) if beside_python.exists() else shutil.which("jupyter-book")


@pytest.fixture(scope="module")
def book():
    """Builds the book strictly, as CI and the README do, and from scratch (`--all`).

    An incremental build leaves stale pages behind: a page that did not change keeps its old sidebar
    when the toc gains a chapter, and its old warnings are not repeated.
    """
    _browser_or_skip()
    result = subprocess.run([_jupyter_book(), "build", ".", "-W", "-n", "--keep-going", "--all"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"the book does not build cleanly:\n{result.stdout[-3000:]}{result.stderr}"
    return HTML


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(book):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=book))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="vggcourse-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size={},{}".format(*WINDOW)]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager is not asked to download anything.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    driver.set_script_timeout(PAGE_TIMEOUT)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# Everything the checks need from a page, read once the page, its maths and its images are done.
READ_PAGE = """
const abs = (href) => new URL(href, document.baseURI);
const visible = (el) => el.checkVisibility();
const solutions = Array.from(document.querySelectorAll(
    'details.sd-dropdown, .tag_hide-cell > details, .tag_hide-input > details'));
return {
  images: Array.from(document.images).map(img => ({src: img.currentSrc || img.src,
      complete: img.complete, width: img.naturalWidth})),
  mathNodes: document.querySelectorAll('span.math, div.math').length,
  typeset: Array.from(document.querySelectorAll('span.math, div.math')).filter(el => {
      const c = el.querySelector('mjx-container');
      return c && c.getBoundingClientRect().width > 0;
  }).length,
  mathErrors: document.querySelectorAll('mjx-merror').length,
  sidebar: Array.from(document.querySelectorAll('nav.bd-docs-nav a')).map(a => ({
      path: abs(a.getAttribute('href')).pathname, text: a.textContent.trim().replace(/\\s+/g, ' ')})),
  colab: Array.from(document.querySelectorAll('a[href*="colab.research.google.com"]')).map(a => a.href),
  links: Array.from(document.querySelectorAll('main a[href]')).map(a => abs(a.getAttribute('href')).href),
  bibliography: Array.from(document.querySelectorAll('[role="doc-biblioentry"]')).map(el => el.id),
  solutions: solutions.length,
  openSolutions: solutions.filter(d => d.open).length,
  visibleSolutionBodies: solutions.filter(d =>
      Array.from(d.children).some(child => child.tagName !== 'SUMMARY' && visible(child))).length,
  resources: [
      ...Array.from(document.querySelectorAll('script[src]')).map(s => s.src),
      ...Array.from(document.querySelectorAll('link[rel="stylesheet"], link[rel="icon"]')).map(l => l.href),
      ...Array.from(document.images).map(img => img.currentSrc || img.src),
      ...performance.getEntriesByType('resource').map(entry => entry.name)],
};
"""

# Code and output blocks that are wider than the page's column, with every collapsed cell and solution
# opened first, so that what a reader sees on expanding them is checked too.
FIND_OVERFLOW = """
document.querySelectorAll('main details').forEach(d => { d.open = true; });
const column = document.querySelector('main article.bd-article') || document.querySelector('main');
const edge = column.getBoundingClientRect().right;
const cells = Array.from(document.querySelectorAll('main .cell'));
const blocks = document.querySelectorAll(
    'main div.highlight pre, main .cell_output, main .cell_output pre, main .cell_output table, ' +
    'main .cell_output .output');
return Array.from(blocks)
  .filter(el => el.getClientRects().length > 0)
  .filter(el => el.scrollWidth > el.clientWidth + 1 || el.getBoundingClientRect().right > edge + 1)
  .map(el => {
    const cell = el.closest('.cell');
    const where = cell ? 'cell ' + cells.indexOf(cell) : 'page';
    return where + ', ' + el.tagName.toLowerCase() + ': ' + el.textContent.trim().slice(0, 70);
  });
"""

WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
  MathJax.startup.promise.then(() => done('typeset'), (error) => done('failed: ' + error));
} else {
  done(window.MathJax ? 'MathJax is configured but did not load' : 'no MathJax');
}
"""


def _wait_until(driver, script, timeout=PAGE_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for: {script}")
        time.sleep(0.1)


def _screenshot_whole_page(driver, path):
    # A window as tall as the page shows every figure with the real layout (sidebars included);
    # Chromium cannot draw much more than 16k pixels in one go, so longer pages are cut there.
    width, height = WINDOW
    page_height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(page_height, height), 16000))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(width, height)


@pytest.fixture(scope="module")
def pages(server, browser):
    """Visits each page of the toc once, on first use, and keeps what it saw."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # no picture of a page that has left the toc
    SCREENSHOTS.mkdir()
    seen = {}

    def visit(docname):
        if docname not in seen:
            browser.get(urllib.parse.urljoin(server, f"{docname}.html"))
            _wait_until(browser, "return document.readyState === 'complete'")
            mathjax = browser.execute_async_script(WAIT_FOR_MATHJAX)
            # A lazy image loads once it nears the viewport: ask for all of them now.
            browser.execute_script("document.querySelectorAll('img').forEach(img => img.loading = 'eager')")
            _wait_until(browser, "return Array.from(document.images).every(img => img.complete)")
            page = browser.execute_script(READ_PAGE)
            page["mathjax"] = mathjax
            page["url"] = browser.current_url
            page["console"] = browser.get_log("browser")
            _screenshot_whole_page(browser, SCREENSHOTS / f"{pathlib.PurePosixPath(docname).name}.png")
            page["overflowing"] = browser.execute_script(FIND_OVERFLOW)  # opens every fold: last
            seen[docname] = page
        return seen[docname]

    return visit


@pytest.mark.parametrize("docname", DOCNAMES)
def test_page_logs_no_errors_in_the_console(pages, docname):
    errors = [entry["message"] for entry in pages(docname)["console"] if entry["level"] == "SEVERE"]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("docname", DOCNAMES)
def test_page_loads_everything_from_the_book_itself(pages, docname):
    # Readers may be offline, and so is CI: no CDN for scripts, styles, fonts or images.
    page = pages(docname)
    origin = urllib.parse.urlsplit(page["url"]).netloc
    elsewhere = sorted({url for url in page["resources"] if urllib.parse.urlsplit(url).netloc != origin})
    assert not elsewhere, f"loaded from other hosts: {elsewhere}"


@pytest.mark.parametrize("docname", DOCNAMES)
def test_every_image_on_the_page_has_loaded(pages, docname):
    broken = [image["src"] for image in pages(docname)["images"] if not image["complete"] or image["width"] == 0]
    assert not broken, f"images that did not load: {broken}"


@pytest.mark.parametrize("docname", DOCNAMES)
def test_maths_on_the_page_is_typeset(pages, docname):
    page = pages(docname)
    if MATH_IN_SOURCE.search(markdown_text(source_path(docname))):
        assert page["mathNodes"] > 0, "the source has $...$ maths, but the page has no maths in it"
    if page["mathNodes"]:
        assert page["mathjax"] == "typeset", f"MathJax: {page['mathjax']}"
        assert page["typeset"] == page["mathNodes"], "some maths was left as TeX"
        assert page["mathErrors"] == 0, "MathJax could not read some TeX"


def test_the_maths_check_has_maths_to_check(pages):
    assert any(pages(name)["mathNodes"] for name in DOCNAMES), "no page has maths, so nothing was checked"


@pytest.mark.parametrize("docname", DOCNAMES)
def test_sidebar_lists_every_page_in_the_toc(pages, docname):
    page = pages(docname)
    sidebar = {(link["path"], link["text"]) for link in page["sidebar"]}
    expected = {(f"/{name}.html", page_title(source_path(name))) for name in DOCNAMES}
    missing = sorted(expected - sidebar)
    assert not missing, f"toc pages (path, title) missing from the sidebar: {missing}; it has {sorted(sidebar)}"


@pytest.mark.parametrize("docname", NOTEBOOK_DOCNAMES)
def test_colab_button_opens_this_notebook(pages, docname):
    expected = colab_link(load_config(), source_path(docname))
    assert sorted(set(pages(docname)["colab"])) == [expected]


@pytest.mark.parametrize("docname", NOTEBOOK_DOCNAMES)
def test_solutions_are_hidden_until_revealed(pages, docname):
    page = pages(docname)
    if "## Exercises" in markdown_text(source_path(docname)):
        assert page["solutions"] > 0, "the exercises have no collapsed solutions"
    assert page["openSolutions"] == 0, "a solution is open before the reader asks for it"
    assert page["visibleSolutionBodies"] == 0, "a solution shows before the reader asks for it"


def _bibliography_docname():
    pages_with_bibliography = [name for name in DOCNAMES if "{bibliography}" in markdown_text(source_path(name))]
    assert len(pages_with_bibliography) == 1, f"expected one bibliography page, found {pages_with_bibliography}"
    return pages_with_bibliography[0]


@pytest.mark.parametrize("docname", NOTEBOOK_DOCNAMES)
def test_chapter_citations_resolve_into_the_bibliography(pages, docname):
    bibliography = pages(_bibliography_docname())
    bibliography_path = urllib.parse.urlsplit(bibliography["url"]).path
    entries = set(bibliography["bibliography"])
    citations = [urllib.parse.urlsplit(link) for link in pages(docname)["links"]]
    citations = [link for link in citations if link.path == bibliography_path and link.fragment]
    assert citations, "the chapter cites nothing"
    unresolved = sorted({link.fragment for link in citations} - entries)
    assert not unresolved, f"links into the bibliography that match no entry: {unresolved}"


def test_a_screenshot_of_every_page_is_saved(pages):
    for name in DOCNAMES:
        pages(name)
    saved = {path.stem for path in SCREENSHOTS.glob("*.png")}
    assert {pathlib.PurePosixPath(name).name for name in DOCNAMES} <= saved


@pytest.mark.parametrize("docname", DOCNAMES)
def test_no_code_or_output_block_is_wider_than_the_column(pages, docname):
    overflowing = pages(docname)["overflowing"]
    assert not overflowing, "blocks that scroll sideways or stick out of the column:\n" + "\n".join(overflowing)


def test_a_block_wider_than_the_column_is_found(server, browser):
    browser.get(urllib.parse.urljoin(server, f"{NOTEBOOK_DOCNAMES[0]}.html"))
    _wait_until(browser, "return document.readyState === 'complete'")
    assert browser.execute_script(FIND_OVERFLOW) == [], "the chapter itself should fit"
    browser.execute_script("""
        const pre = document.createElement('pre');
        pre.textContent = 'x'.repeat(200);
        const output = document.createElement('div');
        output.className = 'cell_output';
        output.appendChild(pre);
        document.querySelector('main .cell').appendChild(output);
    """)
    assert any("x" * 70 in block for block in browser.execute_script(FIND_OVERFLOW))
