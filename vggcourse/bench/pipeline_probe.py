"""``python -m vggcourse.bench.pipeline_probe ARGUMENTS``: one input pipeline in a fresh process.

``ARGUMENTS`` is the JSON of ``measure_pipeline``'s arguments. The process
loads Fashion-MNIST, builds the pipeline, pulls its batches as the network
sees them, and prints a JSON line: ``first_batch_s``, ``peak_rss_mb``,
``idle_rss_mb`` (the peak before it loaded any data, TensorFlow and the
course imported), ``batch_shape`` and ``batch_dtype``.
"""

import contextlib
import io
import json
import sys
import time

from vggcourse.bench import baseline
from vggcourse.bench.measure import peak_rss_mb, preprocessing
from vggcourse.data import load_fashion_mnist, make_dataset


def first_batches(kind, x, y, image_size, batch_size, num_batches):
    """Builds pipeline ``kind`` on in-memory arrays and pulls ``num_batches`` model-ready batches.

    Returns the seconds to the first batch and the last batch's images. The
    clock starts when the pipeline is built on the in-memory uint8 arrays. The
    model's layers exist before that, as they do when training starts.
    """
    prepare = preprocessing(image_size) if kind == "ours" else None
    start = time.perf_counter()
    if kind == "ours":
        # Shuffled like a training epoch; the model's layers scale and resize each batch.
        dataset = make_dataset(x, y, batch_size, shuffle=True, seed=0, epoch=0)
    else:
        dataset = baseline.d2l_dataloader(x, y, batch_size, (image_size, image_size), train=True)
    first_batch_s = None
    for images, _ in dataset.take(num_batches):
        if prepare is not None:
            images = prepare(images, training=False)
        # Reading one value waits until the whole batch exists, without
        # adding a NumPy copy of it to the memory being measured.
        images[-1, -1, -1, -1].numpy()
        if first_batch_s is None:
            first_batch_s = time.perf_counter() - start
    return first_batch_s, images


def probe(kind, image_size, batch_size, num_examples, num_batches, source="auto", data_dir=None):
    """Loads the data, measures one pipeline, and returns what it measured as a dict."""
    idle_rss_mb = peak_rss_mb()  # Everything imported, nothing loaded.
    with contextlib.redirect_stdout(io.StringIO()):
        (x, y), _ = load_fashion_mnist(source=source, data_dir=data_dir)
    x, y = x[:num_examples], y[:num_examples]
    first_batch_s, images = first_batches(kind, x, y, image_size, batch_size, num_batches)
    return {
        "first_batch_s": first_batch_s,
        "peak_rss_mb": peak_rss_mb(),
        "idle_rss_mb": idle_rss_mb,
        "batch_shape": list(images.shape),
        "batch_dtype": images.dtype.name,
    }


if __name__ == "__main__":
    print(json.dumps(probe(**json.loads(sys.argv[1]))))
