"""No number that code can compute is typed into the prose.

A number that a cell computes reaches the prose through myst-nb's glue
(``{glue:text}`name```), so the page shows the value that ``pytest --nbval``
checks. Every other number typed into a page's Markdown must be on the reviewed
list in ``typed_numbers.yml``, which says where it comes from: a paper, a
configuration, a convention. A new hand-typed number fails here until someone
either glues it or lists it with its source.
"""

import re

import pytest
import yaml
from book_layout import ROOT, markdown_text, source_path, toc_docnames

ALLOWED_FILE = ROOT / "tests" / "typed_numbers.yml"

# Markup whose numbers are not prose: glued values, citations, cross-references,
# links, list and solution numbering, and notebook or module names.
_NOT_PROSE = [
    re.compile(r"\{(?:glue|cite|doc|ref|numref|eq|term)(?::\w+)?\}`[^`]*`"),
    re.compile(r"\]\([^)]*\)"),                      # a link's target
    re.compile(r"https?://\S+"),
    re.compile(r"<!--.*?-->", re.DOTALL),
    re.compile(r"^\s*\d+\.\s", re.MULTILINE),        # numbered list items
    re.compile(r"\{dropdown\} Solution \d+"),
    re.compile(r"^#+ .*$", re.MULTILINE),            # headings: chapter titles name networks
]
# A number, with its decimal part, thousands separators, a × product such as
# 224×224×1, and a trailing %. Digits inside a name (vgg16, block2_conv1,
# float32, VGG-16) are not numbers.
NUMBER = re.compile(
    r"(?<![\w.])(?<![A-Za-z]-)"
    r"\d+(?:[.,]\d+)*(?:\s?[×x]\s?\d+(?:[.,]\d+)*)*%?"
    r"(?![\w])"
)


def typed_numbers(markdown):
    """The numbers typed into a piece of Markdown, in order, glued values aside."""
    for pattern in _NOT_PROSE:
        markdown = pattern.sub(" ", markdown)
    return [match.group().replace(" ", "") for match in NUMBER.finditer(markdown)]


def allowed_numbers():
    return {str(key): source for key, source in yaml.safe_load(ALLOWED_FILE.read_text("utf-8")).items()}


PAGES = [source_path(name) for name in toc_docnames()]


@pytest.mark.parametrize("path", PAGES, ids=[path.stem for path in PAGES])
def test_every_typed_number_is_listed_with_its_source(path):
    allowed = allowed_numbers()
    unlisted = sorted(set(typed_numbers(markdown_text(path))) - set(allowed))
    assert not unlisted, (
        f"{path.relative_to(ROOT)} types numbers that are neither glued nor listed in "
        f"tests/typed_numbers.yml: {unlisted}. Glue a computed number "
        "({glue:text}`name`); list a quoted one there with its source."
    )


def test_every_listed_number_has_a_source_and_is_used():
    allowed = allowed_numbers()
    assert all(isinstance(source, str) and source.strip() for source in allowed.values())
    used = {number for path in PAGES for number in typed_numbers(markdown_text(path))}
    assert not sorted(set(allowed) - used), "listed numbers that no page types any more"


@pytest.mark.parametrize("markdown, expected", [
    ("VGG-16 has 138,357,544 parameters.", ["138,357,544"]),
    ("It reaches 0.9175 after 15 epochs, 6 min 13 s.", ["0.9175", "15", "6", "13"]),
    ("a 224×224×1 image, 44.9% fewer weights", ["224×224×1", "44.9%"]),
    ("{glue:text}`params:,` parameters in `block2_conv1` of vgg16", []),
    ("VGG-11 and float32, see {cite:p}`simonyan2015vgg` and [v6](https://x.org/1409.1556)", []),
    ("1. An exercise about 7 layers", ["7"]),
])
def test_typed_numbers_finds_what_a_reader_would_read_as_a_number(markdown, expected):
    assert typed_numbers(markdown) == expected


def test_a_new_unlisted_number_is_reported():
    allowed = allowed_numbers()
    prose = "The stored run reaches a test accuracy of 0.9183 in 371 seconds."
    assert sorted(set(typed_numbers(prose)) - set(allowed)) == ["0.9183", "371"]
