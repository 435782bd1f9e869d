"""vggcourse.book.glue stores a value for the prose exactly as myst-nb does, with or without myst-nb."""

import builtins

import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell

from vggcourse.book import glue


@pytest.fixture
def displayed(monkeypatch):
    shown = []
    shell = InteractiveShell.instance()
    monkeypatch.setattr(shell.display_pub, "publish", lambda data, metadata=None, **kw: shown.append(
        (data, metadata)))
    return shown


def test_glue_stores_a_hidden_record_for_the_prose(displayed):
    glue("vgg16_params", 138_357_544)
    (data, metadata), = displayed
    assert data == {"application/papermill.record/text/plain": "138357544"}
    assert metadata["scrapbook"] == {"name": "vgg16_params",
                                     "mime_prefix": "application/papermill.record/"}


def test_glue_stores_numpy_numbers_as_python_numbers(displayed):
    glue("share", np.float64(0.5))
    assert displayed[0][0]["application/papermill.record/text/plain"] == "0.5"


def test_glue_without_myst_nb_writes_the_same_record(displayed, monkeypatch):
    glue("with_myst_nb", 7)
    real_import = builtins.__import__

    def no_myst_nb(name, *args, **kwargs):
        if name.startswith("myst_nb"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst_nb)
    glue("with_myst_nb", 7)
    assert displayed[0] == displayed[1]


@pytest.mark.parametrize("name", ["", "two words", "a-b", 3])
def test_glue_names_must_be_identifiers(name):
    with pytest.raises(ValueError, match=r"Expected `name`.*Received: name="):
        glue(name, 1)
