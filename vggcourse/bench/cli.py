"""``python -m vggcourse bench``: the benchmark's subcommand, registered by ``vggcourse.cli``."""

import dataclasses

from vggcourse.bench.report import text_report
from vggcourse.bench.run import run_bench
from vggcourse.bench.schema import BenchSettings, save_results
from vggcourse.data import SOURCES
from vggcourse.train import PRESETS

__all__ = ["add_parser", "run_command"]

DEFAULTS = BenchSettings()


def add_parser(subparsers):
    """Adds the ``bench`` subcommand to ``subparsers`` (an argparse sub-parsers action)."""
    parser = subparsers.add_parser(
        "bench",
        help="measure the course's pipeline and training against d2l's on this machine",
        description=(
            "Measures, in one run: the memory and time to the first batch of the course's input\n"
            "pipeline and of d2l's (each in a fresh process); steady-state training speed of both\n"
            "on the same model; training FLOP/s against TensorFlow's own matmul; and optionally\n"
            "a profile of the training step and the time a preset takes to reach a validation accuracy.\n"
            "Prints a table and the course's targets."
        ),
        epilog=(
            "examples:\n"
            "  python -m vggcourse bench --json bench.json\n"
            "  python -m vggcourse bench --num-examples 10000 --time-to-accuracy\n"
            "d2l's pipeline needs about 12 GB of RAM at 224 px over 60,000 images; with less,\n"
            "it is skipped (or lower --num-examples)."
        ),
    )
    pipes = parser.add_argument_group("input pipelines")
    pipes.add_argument("--pipeline-size", dest="pipeline_image_size", type=int, metavar="PIXELS",
                       default=DEFAULTS.pipeline_image_size,
                       help="side of the images the pipelines yield to the network (default: %(default)s)")
    pipes.add_argument("--num-examples", type=int, metavar="N", default=DEFAULTS.num_examples,
                       help="training images the pipelines cover (default: %(default)s)")
    pipes.add_argument("--num-batches", type=int, metavar="N", default=DEFAULTS.num_batches,
                       help="batches pulled from each pipeline (default: %(default)s)")
    pipes.add_argument("--pipeline-repeats", type=int, metavar="N", default=DEFAULTS.pipeline_repeats,
                       help="fresh processes per pipeline, alternating; the medians count (default: %(default)s)")
    training = parser.add_argument_group("training")
    training.add_argument("--preset", choices=tuple(PRESETS), default=DEFAULTS.preset,
                          help="the model timed, and trained by --time-to-accuracy (default: %(default)s)")
    training.add_argument("--image-size", "--size", dest="image_size", type=int, metavar="PIXELS",
                          help="side the 28x28 images are resized to for training; by default the preset's")
    training.add_argument("--ratio", type=int, metavar="N",
                          help="divide every block's channels by N; by default the preset's")
    training.add_argument("--batch-size", type=int, metavar="N",
                          help="images per batch, for the pipelines and training; by default the preset's")
    training.add_argument("--train-steps", type=int, metavar="N", default=DEFAULTS.train_steps,
                          help="timed steps per run (default: %(default)s)")
    training.add_argument("--warmup-steps", type=int, metavar="N", default=DEFAULTS.warmup_steps,
                          help="steps before the timing starts (default: %(default)s)")
    training.add_argument("--repeats", type=int, metavar="N", default=DEFAULTS.repeats,
                          help="runs of each path, alternating with a matmul; the medians count "
                          "(default: %(default)s)")
    training.add_argument("--no-variants", dest="variants", action="store_false",
                          help="skip timing the course's path with XLA and with mixed precision")
    training.add_argument("--matmul-size", type=int, metavar="N", default=DEFAULTS.matmul_size,
                          help="side of the reference matmul (default: %(default)s)")
    training.add_argument("--profile", action="store_true",
                          help="also profile the course's training steps with TensorFlow's profiler")
    training.add_argument("--time-to-accuracy", action="store_true",
                          help="also train the preset on the full data until --target-accuracy (minutes)")
    training.add_argument("--target-accuracy", type=float, metavar="ACCURACY", default=DEFAULTS.target_accuracy,
                          help="for --time-to-accuracy (default: %(default)s)")
    inputs = parser.add_argument_group("data")
    inputs.add_argument("--source", choices=SOURCES, default=DEFAULTS.source,
                        help="where to load Fashion-MNIST from (default: %(default)s)")
    inputs.add_argument("--data-dir", metavar="DIR",
                        help="a folder with the four official .gz files (source auto or dir)")
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    parser.set_defaults(run=run_command)
    return parser


def run_command(args):
    """Runs ``bench`` with parsed arguments; prints the report, writes ``--json``; returns 0."""
    fields = {field.name: getattr(args, field.name) for field in dataclasses.fields(BenchSettings)}
    results = run_bench(BenchSettings(**fields))
    print()
    print(text_report(results))
    if args.json:
        print(f"\nResults written to {save_results(results, args.json)}")
    return 0

