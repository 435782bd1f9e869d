"""The benchmark of the Performance appendix: the course's input pipeline and training against d2l's.

``run_bench()`` (and ``python -m vggcourse bench``) measures, in one run:

- ``pipeline``: memory and time to the first batch of the course's pipeline
  (``make_dataset`` with the model's own scaling and resizing applied to each
  batch) and of d2l's (``baseline.d2l_dataloader``), each in a fresh process;
- ``train``: steady-state training examples per second of the course's
  training path (``train_vgg``) and of d2l's (``baseline.train_ch6``), same
  model, image size and batch size; also the course's path with d2l's
  optimizer, with XLA and with mixed precision;
- ``efficiency``: the training FLOP/s that the traced MACs imply, against
  TensorFlow's own matrix multiplication on the same machine;
- ``profile`` (optional): where a training step's time goes;
- ``time_to_accuracy`` (optional, slow): wall time for a preset to reach a
  validation accuracy.

The modules: ``schema`` (settings and results), ``measure``, ``profile``,
``report`` (tables and targets), ``baseline`` (d2l's pipeline and training
loop), ``run`` (the whole run), ``cli``, and the probes that run in fresh
processes. This package exports what the Performance appendix uses, and
nothing else. ``schema.REFERENCE``, which ``load_results()`` reads by default,
is a run on the course's 2-core CPU machine, written by ``python -m vggcourse
bench --profile --time-to-accuracy --json vggcourse/results/bench_cpu.json``.
"""

from vggcourse.bench.figures import (
    plot_layer_rates,
    plot_pipelines,
    plot_profile,
    plot_time_to_accuracy,
    plot_train_speeds,
)
from vggcourse.bench.measure import VARIANTS
from vggcourse.bench.profile import MAC_CATEGORIES
from vggcourse.bench.report import (
    D2L_GPU_EXAMPLES_PER_S,
    pipeline_table,
    profile_table,
    throughput_bounds,
    train_table,
)
from vggcourse.bench.run import quick_settings, run_bench
from vggcourse.bench.schema import load_results

__all__ = [
    "D2L_GPU_EXAMPLES_PER_S",
    "MAC_CATEGORIES",
    "VARIANTS",
    "load_results",
    "plot_layer_rates",
    "plot_pipelines",
    "plot_profile",
    "plot_time_to_accuracy",
    "plot_train_speeds",
    "pipeline_table",
    "profile_table",
    "quick_settings",
    "run_bench",
    "throughput_bounds",
    "train_table",
]
