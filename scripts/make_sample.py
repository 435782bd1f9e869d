"""Writes vggcourse/sample/fashion-mnist-sample.npz from the official Fashion-MNIST files.

The sample is what ``vggcourse.load_fashion_mnist()`` falls back to with no
network and no local copy: the first 250 training and the first 50 test
images of each class, in the official files' order, so every class is equally
represented. That is 2,500 + 500 images, about 1.3 MiB compressed; the
package's budget for it is 1.5 MiB.

The output is byte-for-byte reproducible (fixed zip timestamps), so its sha256
can live in ``vggcourse/data.py`` as ``SAMPLE_SHA256``, and a test can rebuild
it and compare.

Usage:
    python scripts/make_sample.py [DIRECTORY_WITH_THE_FOUR_GZ_FILES]

The directory defaults to Debian's ``/usr/share/datasets/fashion-mnist``.
Fashion-MNIST is (c) Zalando SE under the MIT licence, whose notice is kept in
vggcourse/sample/LICENSE.
"""

import hashlib
import io
import sys
import zipfile

import numpy as np

from vggcourse import data

TRAIN_PER_CLASS = 250
TEST_PER_CLASS = 50
# A fixed timestamp makes the archive reproducible; 1980 is the zip epoch.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def first_per_class(labels, per_class):
    """Indices of the first ``per_class`` examples of each class, in file order."""
    chosen = [np.flatnonzero(labels == c)[:per_class] for c in range(len(data.CLASS_NAMES))]
    return np.sort(np.concatenate(chosen))


def build_sample(directory):
    """Returns the bytes of the sample .npz built from the official files in ``directory``."""
    paths = data._paths_in(directory)
    (x_train, y_train), (x_test, y_test) = data._arrays_from_files(paths)
    train = first_per_class(y_train, TRAIN_PER_CLASS)
    test = first_per_class(y_test, TEST_PER_CLASS)
    arrays = {
        "x_train": x_train[train],
        "y_train": y_train[train],
        "x_test": x_test[test],
        "y_test": y_test[test],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def main(argv):
    directory = argv[1] if len(argv) > 1 else data.DEBIAN_DIR
    content = build_sample(directory)
    data.SAMPLE_PATH.parent.mkdir(parents=True, exist_ok=True)
    data.SAMPLE_PATH.write_bytes(content)
    print(f"wrote {data.SAMPLE_PATH}: {len(content) / 2**20:.2f} MiB")
    print(f"SAMPLE_SHA256 = \"{hashlib.sha256(content).hexdigest()}\"")


if __name__ == "__main__":
    main(sys.argv)
