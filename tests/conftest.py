"""Shared by every test module: figures are drawn off-screen and closed after each test."""

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    """Close every figure a test drew, so that none leaks into the next."""
    yield
    plt.close("all")
