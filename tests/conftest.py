"""Shared by every test module: figures are drawn off-screen and closed after each test, and the
embedded sample of Fashion-MNIST is one fixture away."""

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    """Close every figure a test drew, so that none leaks into the next."""
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def sample():
    """The embedded sample: real images, loaded in milliseconds, the same everywhere."""
    from vggcourse.data import load_fashion_mnist

    return load_fashion_mnist(source="sample")
