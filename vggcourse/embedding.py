"""The learned space: a 2-D view of features, and their nearest neighbours.

Taught in: *What VGG learns, and reusing it*, where the features are a trained
VGG's fc2 outputs (``vggcourse.explain.feature_maps``). NumPy only.
"""

import numpy as np

from vggcourse._checks import check_int
from vggcourse.errors import InvalidArgument

__all__ = ["nearest_neighbors", "pca_2d"]


def _check_features(features, name="features"):
    array = np.asarray(features, dtype=np.float64) if np.ndim(features) == 2 else None
    if array is None or len(array) < 2 or array.shape[1] < 2:
        raise InvalidArgument(
            f"Expected `{name}` to be a 2D array of shape (n, d) with n >= 2 and d >= 2, "
            f"one row per image. Received: {name} with shape {np.shape(features)}"
        )
    return array


def pca_2d(features):
    """Projects features onto their first two principal components, with NumPy only.

    The features are centred, and the eigenvectors of their ``d x d``
    covariance matrix with the two largest eigenvalues are the two directions
    of largest variance (for ``n`` rows much more than ``d`` columns, a
    fraction of the cost of a singular value decomposition of the features
    themselves). Each direction's sign is chosen so that its largest loading
    is positive, so the result does not depend on the sign that the
    eigendecomposition happens to return.

    Taught in: *What VGG learns, and reusing it*.

    Args:
        features: an array of shape ``(n, d)``, such as the ``fc2`` outputs of
            ``feature_maps``.

    Returns:
        ``(coords, explained)``: an array of shape ``(n, 2)``, and the share
        of the total variance that each of the two components explains.
    """
    x = _check_features(features)
    centred = x - x.mean(axis=0)
    # eigh returns eigenvalues in ascending order: the last two are the largest.
    covariance = centred.T @ centred
    variance, vectors = np.linalg.eigh(covariance)
    components = vectors[:, ::-1][:, :2].T
    signs = np.sign(components[np.arange(2), np.argmax(np.abs(components), axis=1)])
    components = components * signs[:, np.newaxis]
    total = float((centred**2).sum())  # The sum of all the eigenvalues.
    explained = variance[::-1][:2] / total if total > 0 else np.zeros(2)
    return centred @ components.T, explained


def nearest_neighbors(features, queries, *, k=5):
    """Finds, for each query row, the ``k`` nearest other rows by Euclidean distance.

    Taught in: *What VGG learns, and reusing it*.

    Args:
        features: an array of shape ``(n, d)``, one row per image.
        queries: indices of rows of ``features`` to find neighbours for.
        k: neighbours per query; the query itself is left out.

    Returns:
        An integer array of shape ``(len(queries), k)``: indices into
        ``features``, nearest first.
    """
    x = _check_features(features)
    queries = np.atleast_1d(np.asarray(queries))
    if queries.ndim != 1 or not np.issubdtype(queries.dtype, np.integer) or len(queries) == 0 \
            or queries.min() < 0 or queries.max() >= len(x):
        raise InvalidArgument(
            f"Expected `queries` to be row indices in [0, {len(x)}). "
            f"Received: queries={queries.tolist()!r}"
        )
    k = check_int("k", k)
    if k >= len(x):
        raise InvalidArgument(
            f"Expected `k` to be less than the number of rows ({len(x)}). Received: k={k}"
        )
    squared = (x**2).sum(axis=1)
    distances = squared[queries, np.newaxis] - 2 * x[queries] @ x.T + squared[np.newaxis]
    distances[np.arange(len(queries)), queries] = np.inf
    return np.argsort(distances, axis=1, kind="stable")[:, :k]
