"""The command line: ``python -m vggcourse`` (or ``vggcourse``) for work without notebooks.

Subcommands:

- ``trace``: the per-layer table of the tracing chapter (``trace_layers`` and
  ``totals``) for an architecture, a channel ratio and an input size;
- ``train``: a preset from ``vggcourse.train``, or explicit overrides of its
  fields, with Keras' progress bar, a resumable backup, a checkpoint and a
  history CSV;
- ``bench``: the course's input pipeline and training measured against d2l's
  (``vggcourse.bench``);
- ``ablate``: the ``cpu`` preset's recipe one ingredient at a time, judged on
  a validation split (``vggcourse.ablation``).

Each subcommand is registered by a function in ``SUBCOMMANDS`` that adds its
parser to the sub-parsers action and sets ``run``, a function from the parsed
arguments to an exit status, as a default (``parser.set_defaults(run=...)``).
Every command shares one help format, and ``--size`` is always the side, in
pixels, of the images the network gets.

Errors:

- a malformed option is argparse's: one line, exit status 2;
- an argument that the course's own checks refuse (``InvalidArgument``) is
  printed on one line as ``vggcourse <command>: error: ...``, exit status 2;
- any other error the course detects and explains itself (``CourseError``,
  such as data that cannot be found) is printed the same way, exit status 1;
- anything else, such as an error inside TensorFlow, keeps its traceback,
  with Python's exit status 1.
"""

import argparse
import dataclasses
import functools
import os
import sys
import tempfile

import keras
import pandas as pd

from vggcourse import backup, data, train
from vggcourse.bench import cli as bench_cli
from vggcourse.devices import describe_devices
from vggcourse.errors import CourseError, InvalidArgument
from vggcourse.models import HEADS, VGG_ARCHS, vgg_by_name
from vggcourse.trace import totals, trace_layers

__all__ = ["SUBCOMMANDS", "add_ablate_parser", "add_trace_parser", "add_train_parser", "build_parser", "main"]

PROG = "vggcourse"


def _one_line(message):
    return " ".join(str(message).split())


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors fit on one line, with a pointer to --help.

    Its help keeps the line breaks of descriptions and epilogs, such as the
    presets table. Sub-parsers are of the same class, so every command has
    the same help format.
    """

    def __init__(self, *args, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see: {self.prog} --help)\n")


def _arch_label(arch, ratio):
    """'VGG-11, channels / 4', in the words of ``TrainConfig``'s printout."""
    label = arch.replace("vgg", "VGG-")
    return label if ratio == 1 else f"{label}, channels / {ratio}"


# ---------------------------------------------------------------------------
# trace


def add_trace_parser(subparsers):
    """Adds ``trace``: the per-layer table and totals of chapter 3."""
    parser = subparsers.add_parser(
        "trace",
        help="per-layer shapes, parameters, MACs, activations and receptive fields",
        description=(
            "Traces a VGG network layer by layer without running it (vggcourse.trace_layers)\n"
            "and prints the table, then the totals for one example (vggcourse.totals):\n"
            "parameters, multiply-accumulates (MACs) and activations, input included."
        ),
        epilog="example: python -m vggcourse trace --arch vgg11 --ratio 4 --size 224",
    )
    parser.add_argument(
        "--arch",
        choices=tuple(VGG_ARCHS),
        default="vgg11",
        help="the VGG configuration (default: %(default)s)",
    )
    parser.add_argument(
        "--ratio",
        type=int,
        default=1,
        metavar="N",
        help="divide every block's channels by N; d2l uses 4 (default: %(default)s)",
    )
    parser.add_argument(
        "--image-size",
        "--size",
        dest="image_size",
        type=int,
        default=224,
        metavar="PIXELS",
        help="side of the square input (default: %(default)s)",
    )
    parser.add_argument(
        "--channels",
        type=int,
        default=1,
        metavar="N",
        help="input channels: 1 for Fashion-MNIST, 3 for colour (default: %(default)s)",
    )
    parser.add_argument(
        "--num-classes", type=int, default=10, metavar="N", help="output logits (default: %(default)s)"
    )
    parser.add_argument(
        "--dense-units",
        type=int,
        default=4096,
        metavar="N",
        help="width of the two hidden dense layers (default: %(default)s)",
    )
    parser.add_argument("--csv", metavar="PATH", help="also write the table to this CSV file")
    parser.set_defaults(run=run_trace)
    return parser


def format_totals(count):
    """Formats ``totals()`` as chapter 3 prints them, with thousands separators."""
    return "\n".join(
        [
            f"parameters:                        {count['params']:>14,}",
            f"MACs per example:                  {count['macs']:>14,}"
            f"  ({count['macs'] / 1e9:.3f} GMACs)",
            f"activations per example (+input):  {count['activations']:>14,}",
        ]
    )


def run_trace(args):
    """Prints the trace of ``args.arch`` at ``args.ratio`` and ``args.image_size``; returns 0."""
    net = vgg_by_name(args.arch, args.ratio, args.num_classes, dense_units=args.dense_units)
    size = args.image_size
    trace = trace_layers(net, (size, size, args.channels))
    count = totals(trace)
    print(
        f"{_arch_label(args.arch, args.ratio)}, input {size}x{size}x{args.channels}, "
        f"{args.num_classes} classes, dense {args.dense_units}"
    )
    print()
    thousands = {column: "{:,}".format for column in ("params", "macs", "activations")}
    print(trace.to_string(index=False, formatters=thousands))
    print()
    print(format_totals(count))
    if args.csv:
        os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
        trace.to_csv(args.csv, index=False)
        print(f"\nTable written to {args.csv}")
    return 0


# ---------------------------------------------------------------------------
# train


def _count_or_all(text):
    """An argparse type: an integer, or 'all' for None (no limit)."""
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'all', got {text!r}") from None


def _presets_table():
    """The presets side by side, one row per ``TrainConfig`` field."""
    table = pd.DataFrame(
        {name: dataclasses.asdict(config) for name, config in train.PRESETS.items()}
    )
    table = table.drop(index="name").fillna("all")
    return table.to_string()


def add_train_parser(subparsers):
    """Adds ``train``: a preset, overridden field by field, with backup, checkpoint and history."""
    parser = subparsers.add_parser(
        "train",
        help="train VGG on Fashion-MNIST from a preset or explicit options",
        description=(
            "Trains VGG on Fashion-MNIST with vggcourse.train_vgg: a preset, with any of its\n"
            "fields overridden. The run is backed up after every epoch, in a folder of its own\n"
            "inside --backup-dir (vggcourse.backup): after an interruption, the same command\n"
            "resumes where it stopped."
        ),
        epilog=(
            "presets: --preset auto picks gpu on a GPU or TPU, with mixed precision and XLA\n"
            f"where they help, and cpu otherwise; {train.SMOKE_VARIABLE}=1 forces smoke.\n\n"
            f"{_presets_table()}\n\n"
            "examples:\n"
            "  python -m vggcourse train --preset cpu --history runs/cpu.csv \\\n"
            "      --checkpoint runs/cpu.keras\n"
            "  python -m vggcourse train --preset gpu --epochs 20 \\\n"
            "      --backup-dir /content/drive/MyDrive/vgg-backup"
        ),
    )
    parser.add_argument(
        "--preset",
        choices=("auto", *train.PRESETS),
        default="auto",
        help="the starting configuration (default: %(default)s); "
        f"{train.SMOKE_VARIABLE}=1 forces smoke",
    )

    overrides = parser.add_argument_group(
        "overrides", "fields of the preset's TrainConfig; each one left out keeps the preset's value"
    )
    # SUPPRESS leaves an option that was not given out of the parsed arguments,
    # so the overrides are exactly the fields the user typed.
    override = functools.partial(overrides.add_argument, default=argparse.SUPPRESS)
    override("--name", help="label for printouts and the default backup folder")
    override("--arch", choices=tuple(VGG_ARCHS), help="the VGG configuration")
    override("--ratio", type=int, metavar="N", help="divide every block's channels by N")
    override(
        "--image-size",
        "--size",
        dest="image_size",
        type=int,
        metavar="PIXELS",
        help="side the 28x28 images are resized to",
    )
    override("--dense-units", type=int, metavar="N", help="width of the two hidden dense layers")
    override("--dropout", type=float, metavar="RATE", help="dropout rate after each hidden dense layer")
    override(
        "--batch-norm",
        action=argparse.BooleanOptionalAction,
        help="batch normalization after every convolution",
    )
    override(
        "--head",
        choices=HEADS,
        help="dense: the paper's three dense layers; gap: global average pooling, then one dense layer",
    )
    override(
        "--learning-rate",
        "--lr",
        dest="learning_rate",
        type=float,
        metavar="LR",
        help="SGD's (initial) learning rate",
    )
    override("--init", metavar="INIT", help="the starting weights: glorot (Keras' default) or he")
    override("--momentum", type=float, metavar="M", help="SGD's momentum; 0 is plain SGD")
    override("--nesterov", action=argparse.BooleanOptionalAction, help="Nesterov's momentum")
    override(
        "--lr-schedule",
        metavar="SCHEDULE",
        help="constant, or cosine to decay the learning rate to 0 over the run",
    )
    override(
        "--warmup-epochs", type=int, metavar="N", help="raise the learning rate from 0 over the first N epochs"
    )
    override(
        "--label-smoothing", type=float, metavar="EPS", help="train towards 1 - EPS for the true class, not 1"
    )
    override("--flip", action=argparse.BooleanOptionalAction, help="flip training images left to right at random")
    override("--shift", type=int, metavar="PIXELS", help="shift training images by up to PIXELS at random")
    override("--batch-size", type=int, metavar="N", help="examples per step, over all replicas")
    override("--epochs", type=int, metavar="N", help="passes over the training set")
    override(
        "--train-examples", type=_count_or_all, metavar="N|all", help="train on the first N images only"
    )
    override(
        "--val-split",
        type=int,
        metavar="N",
        help="hold N training images out for validation, stratified; 0 validates on the test images",
    )
    override(
        "--val-examples",
        type=_count_or_all,
        metavar="N|all",
        help="validate on the first N validation images only",
    )
    override(
        "--precision",
        metavar="POLICY",
        help="Keras dtype policy: float32, mixed_float16 or mixed_bfloat16",
    )
    override(
        "--jit-compile", action=argparse.BooleanOptionalAction, help="compile each step with XLA"
    )
    override(
        "--seed", type=int, metavar="N", help="seeds the weights, the data order and the dropout masks"
    )

    inputs = parser.add_argument_group("data")
    inputs.add_argument(
        "--source",
        choices=data.SOURCES,
        default="auto",
        help="where to load Fashion-MNIST from (default: %(default)s)",
    )
    inputs.add_argument(
        "--data-dir",
        metavar="DIR",
        help="a folder with the four official .gz files (source auto or dir)",
    )

    outputs = parser.add_argument_group("outputs")
    outputs.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="the folder to back the run up in, after every epoch: the run keeps its backup in a folder of "
        "its own inside it, named after the configuration, and a rerun with the same folder resumes; "
        "by default a folder in the temporary directory",
    )
    outputs.add_argument(
        "--restart",
        action="store_true",
        help="delete this configuration's backup first, even one made with other settings, and start afresh",
    )
    outputs.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="save the model after every epoch: PATH.keras for the whole model, "
        "PATH.weights.h5 for the weights only",
    )
    outputs.add_argument(
        "--history", metavar="PATH.csv", help="write loss and metrics per epoch to this CSV file"
    )
    outputs.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        help="Keras' fit verbosity; by default 1 (a progress bar) in a terminal, "
        "2 (a line per epoch) otherwise",
    )
    parser.set_defaults(run=run_train)
    return parser


def train_config(args, devices):
    """Returns the ``TrainConfig`` that ``args`` ask for, and a line saying how it was chosen.

    The preset is ``auto_config(devices)``'s when ``--preset auto``, when the
    preset asked for is the one it picks (so that a GPU keeps its mixed
    precision and XLA), or when ``VGGCOURSE_SMOKE`` forces smoke; otherwise
    the named entry of ``PRESETS``. The overrides are then applied with
    ``TrainConfig.replace``, which checks them.
    """
    fields = {field.name for field in dataclasses.fields(train.TrainConfig)}
    overrides = {key: value for key, value in vars(args).items() if key in fields}
    automatic = train.auto_config(devices, verbose=False)
    if automatic.name == "smoke" and args.preset != "smoke":
        how = f"preset 'smoke' instead of {args.preset!r}, because {train.SMOKE_VARIABLE} is set"
        base = automatic
    elif args.preset == "auto":
        base, how = automatic, f"preset {automatic.name!r}, chosen for this hardware"
    elif args.preset == automatic.name:
        base, how = automatic, f"preset {automatic.name!r}, as asked"
    else:
        base, how = train.PRESETS[args.preset], f"preset {args.preset!r}, as asked"
    if overrides and "name" not in overrides:
        # A configuration of its own gets a backup folder of its own, so that
        # it starts afresh instead of meeting another configuration's backup.
        changes = "+".join(f"{key}={value}" for key, value in overrides.items())
        overrides["name"] = f"{base.name}+{changes}"
    changed = [f"{key}={value!r}" for key, value in overrides.items() if key != "name"]
    if changed:
        how += ", with " + ", ".join(changed)
    return base.replace(**overrides), how


def _check_checkpoint_suffix(path):
    if not path.endswith((".weights.h5", ".keras")):
        raise InvalidArgument(
            "Expected `--checkpoint` to end in .keras (the whole model) or .weights.h5 "
            f"(the weights only). Received: --checkpoint={path}"
        )


def _check_can_write(option, folder):
    """Makes ``folder`` and writes a file in it, or refuses ``option``."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise InvalidArgument(
            f"Expected `{option}` to be a path that can be written. Received: {option}={folder}, "
            f"which cannot be written ({e.strerror})"
        ) from None


def check_outputs(args):
    """Checks every output path, and makes its folders, before any data are loaded or any step is run."""
    if args.checkpoint:
        _check_checkpoint_suffix(args.checkpoint)
    for option, path in (("--checkpoint", args.checkpoint), ("--history", args.history)):
        if path and os.path.isdir(path):
            raise InvalidArgument(f"Expected `{option}` to be a file. Received: {option}={path}, which is a folder")
        if path:
            _check_can_write(option, os.path.dirname(os.path.abspath(path)))
    if args.backup_dir and os.path.exists(args.backup_dir) and not os.path.isdir(args.backup_dir):
        raise InvalidArgument(
            f"Expected `--backup-dir` to be a folder. Received: --backup-dir={args.backup_dir}, which is a file"
        )
    _check_can_write("--backup-dir", args.backup_dir or backup.default_backup_dir())


def _save(model, path):
    if path.endswith(".weights.h5"):
        model.save_weights(path)
    else:
        model.save(path)


def _callbacks(args, resuming):
    callbacks = []
    if args.checkpoint:
        weights_only = args.checkpoint.endswith(".weights.h5")
        callbacks.append(keras.callbacks.ModelCheckpoint(args.checkpoint, save_weights_only=weights_only))
    if args.history:
        # When resuming, the interrupted run's rows are already in the file.
        callbacks.append(keras.callbacks.CSVLogger(args.history, append=resuming))
    return callbacks


def _report(history, args):
    last = {key: values[-1] for key, values in history.history.items() if values}
    if last:
        print("Last epoch: " + ", ".join(f"{key} {value:.4g}" for key, value in last.items()))
    if args.history and last:
        print(f"History: {args.history}")
    if args.checkpoint and not history.epoch:
        _save(history.model, args.checkpoint)  # Nothing left to train: the restored model.
    if args.checkpoint:
        print(f"Model saved to {args.checkpoint}")


def run_train(args):
    """Trains as ``args`` say; returns 0, or 130 if interrupted (the backup stays for a resume)."""
    devices = describe_devices()
    config, how = train_config(args, devices)
    check_outputs(args)
    folder = backup.backup_folder(args.backup_dir or backup.default_backup_dir(), config)
    restored = 0 if args.restart else backup.epochs_backed_up(folder)
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)

    print(f"Device: {devices}")
    print(f"Configuration: {how}.")
    print(config)
    dataset = data.load_fashion_mnist(source=args.source, data_dir=args.data_dir)
    print(f"Backup: {folder}" + (f" (resuming after epoch {restored})" if restored else ""))
    try:
        history = train.train_vgg(config, dataset, backup_dir=folder.parent, restart=args.restart,
                                  callbacks=_callbacks(args, resuming=restored > 0), verbose=verbose)
    except KeyboardInterrupt:
        print(
            f"\nInterrupted. Run the same command again to resume from the last finished epoch "
            f"(backed up in {folder}).",
            file=sys.stderr,
        )
        return 130
    if not verbose and not history.epoch:
        print(f"Nothing left to train: the backup in {folder} already holds {history.restored_epochs} epoch(s).")
    _report(history, args)
    return 0


# ---------------------------------------------------------------------------
# ablate


def add_ablate_parser(subparsers):
    """Adds ``ablate``: the cpu preset's recipe, one ingredient per row, judged on a validation split."""
    parser = subparsers.add_parser(
        "ablate",
        help="train the cpu preset's recipe one ingredient at a time, judged on a validation split",
        description=(
            "Trains one network per row of vggcourse.ablation.ABLATION_STEPS: d2l's recipe at the\n"
            "cpu preset's image size, then one ingredient more per row, added to the recipe kept so\n"
            "far. Every row is judged on the same validation split held out of the training images;\n"
            "the recipe kept, the cpu preset, is evaluated on the test images, once. The command says\n"
            "where the validation split disagrees with the ingredients that the steps keep."
        ),
        epilog="example:\n  python -m vggcourse ablate --json vggcourse/results/ablation_cpu.json",
    )
    parser.add_argument("--val-split", type=int, metavar="N", default=5000,
                        help="training images held out for validation (default: %(default)s)")
    parser.add_argument("--reuse", metavar="PATH",
                        help="results of an earlier run: rows whose configuration it holds keep its "
                             "measurements, all but the recipe kept, which trains again for the test")
    parser.add_argument("--tiny", action="store_true",
                        help="every row cut to seconds: checks that the command runs, measures nothing")
    inputs = parser.add_argument_group("data")
    inputs.add_argument("--source", choices=data.SOURCES, default="auto", help="where Fashion-MNIST comes from")
    inputs.add_argument("--data-dir", metavar="DIR", help="a folder with the four Fashion-MNIST .gz files")
    parser.add_argument("--json", metavar="PATH", help="write the results to PATH")
    parser.set_defaults(run=run_ablate)


def run_ablate(args):
    """Runs the ablation as ``args`` say, prints its table, and writes its JSON if asked."""
    from vggcourse import ablation
    from vggcourse.bench.measure import machine

    rows = ablation.ablation_configs(val_split=args.val_split)
    if args.tiny:
        rows = ablation.tiny_rows(rows)
    dataset = data.load_fashion_mnist(source=args.source, data_dir=args.data_dir)
    reuse = ablation.load_ablation(args.reuse) if args.reuse else None
    results = ablation.run_ablation(rows, dataset, reuse=reuse)
    print(ablation.ablation_table(results).to_string(float_format=lambda v: f"{v:.4f}"))
    says = ablation.validation_decisions(results)
    disagree = [row["label"] for row, keep in zip(results["rows"], says) if keep != row["kept"]]
    # --tiny rows measure nothing, so they have nothing to say.
    if disagree and not args.tiny:
        print("The validation split disagrees with the steps on: " + "; ".join(disagree)
              + ". Change those steps' `kept`, and the cpu preset with them.")
    if args.json:
        print(f"Results written to {ablation.save_ablation(results, args.json, machine())}")
    return 0


# ---------------------------------------------------------------------------
# The program.

SUBCOMMANDS = (
    add_trace_parser,
    add_train_parser,
    bench_cli.add_parser,
    add_ablate_parser,
)


def build_parser():
    """Returns the ``vggcourse`` argument parser, with every subcommand in ``SUBCOMMANDS``."""
    parser = _Parser(prog=PROG, description="VGG, block by block: the course's tools without notebooks.")
    subparsers = parser.add_subparsers(dest="command", metavar="command", required=True)
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers)
    return parser


def main(argv=None):
    """Runs the command line; returns the exit status (the ``vggcourse`` console script).

    Args:
        argv: the arguments, without the program name; by default ``sys.argv[1:]``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{PROG} {args.command}"
    try:
        status = args.run(args)
    except CourseError as error:
        # The course's own messages name the argument or the file, what was
        # expected and what came in (Keras' style), so they stand on their own.
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        return 2 if isinstance(error, InvalidArgument) else 1
    return status or 0
