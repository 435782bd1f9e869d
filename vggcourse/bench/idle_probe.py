"""``python -m vggcourse.bench.idle_probe``: the memory of a process that measures nothing.

It imports what a pipeline probe imports (the course's package and the
benchmark, TensorFlow included), then prints its peak resident memory as
JSON: ``{"peak_rss_mb": ...}``. A pipeline's own memory is a pipeline probe's
peak less this one.
"""

import json

from vggcourse.bench.measure import peak_rss_mb

if __name__ == "__main__":
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}))
