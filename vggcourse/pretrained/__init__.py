"""The course's trained VGG-11, shipped with the package and verified by SHA-256.

Taught in: *What VGG learns, and reusing it*.

``load_trained_vgg()`` returns the ``cpu`` preset's network (``vggcourse.PRESETS
["cpu"]``: VGG-11 with a quarter of the channels, 32 px, dense 1024) with the
weights of one training run on the full Fashion-MNIST training set. The file
``vgg11_cpu_fashion_mnist.keras`` stores them in float16, which halves its size
and leaves the test accuracy unchanged to three decimals (the conversion checks
this); they are loaded back into float32.

The file is regenerated in two commands, when the ``cpu`` preset changes:

    python -m vggcourse train --preset cpu --checkpoint runs/cpu.keras
    python -m vggcourse.pretrained convert runs/cpu.keras

The first trains the preset (it validates on the test set after each epoch,
as the preset does). The second checks that the checkpoint is the preset's
network, stores its weights in float16 if that keeps the test accuracy to three
decimals (float32 otherwise), and prints the new file's SHA-256, which belongs
in ``WEIGHTS_SHA256`` below.
"""

import argparse
import hashlib
import io
import os
import pathlib
import sys
import tempfile
import zipfile

import numpy as np

from vggcourse.data import DataIntegrityError, load_fashion_mnist
from vggcourse.train import PRESETS, build_model, predict_labels

__all__ = [
    "PRESET",
    "REGENERATE",
    "WEIGHTS_PATH",
    "WEIGHTS_SHA256",
    "convert_checkpoint",
    "file_sha256",
    "load_trained_vgg",
    "main",
    "stored_dtypes",
]

# The preset whose network the shipped weights belong to.
PRESET = "cpu"
WEIGHTS_PATH = pathlib.Path(__file__).parent / "vgg11_cpu_fashion_mnist.keras"
WEIGHTS_SHA256 = "2895d9663800cfb5e24554d220324b1d853a5e819b8a2add5fd3d268a3f44138"
REGENERATE = (
    "python -m vggcourse train --preset cpu --checkpoint runs/cpu.keras\n"
    "python -m vggcourse.pretrained convert runs/cpu.keras"
)
_DTYPES = ("auto", "float16", "float32")


def file_sha256(path):
    """Returns the SHA-256 of a file's bytes, as 64 hexadecimal digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            "Expected `path` to be a path (str or os.PathLike) or None. "
            f"Received: path={path!r} of type {type(path).__name__}"
        )
    return pathlib.Path(path)


def _check_sha256(sha256):
    if not isinstance(sha256, str) or len(sha256) != 64 or \
            any(c not in "0123456789abcdef" for c in sha256.lower()):
        raise ValueError(
            "Expected `sha256` to be 64 hexadecimal digits, as `python -m "
            f"vggcourse.pretrained convert` prints them. Received: sha256={sha256!r}"
        )
    return sha256.lower()


def _verify(path, sha256):
    if not path.is_file():
        raise FileNotFoundError(
            f"The trained weights {path} do not exist. Reinstall vggcourse, or "
            f"regenerate them:\n{REGENERATE}"
        )
    digest = file_sha256(path)
    if digest != sha256:
        raise DataIntegrityError(
            f"The trained weights {path} are truncated or corrupt: their sha256 is "
            f"{digest}, expected {sha256}. Reinstall vggcourse, or regenerate them:\n"
            f"{REGENERATE}"
        )


def _load(path):
    """The preset's float32 network, built by the course, with the weights stored in ``path``.

    Only the weights are read: the configuration stored in the file is never
    deserialized and no code in it runs, which is stricter than Keras' safe
    mode, and a file written by a newer Keras loads on an older one (Keras
    3.15 writes initializer settings that Keras 3.10, Colab's, does not know).
    Messages name the file.
    """
    model = build_model(PRESETS[PRESET])
    try:
        model.load_weights(path)
    except ValueError as error:  # Weights of other shapes, or other layers.
        raise ValueError(
            f"The model in {path} is not the {PRESET!r} preset's network "
            f"({str(error).splitlines()[0]}). If the preset has changed, regenerate the weights:\n"
            f"{REGENERATE}"
        ) from None
    except Exception as error:  # zipfile, h5py and Keras each raise their own kind.
        raise DataIntegrityError(
            f"Could not load the weights in {path}: {type(error).__name__}: {error}"
        ) from error
    return model


def load_trained_vgg(path=None, *, sha256=None):
    """Returns the course's VGG-11, trained on Fashion-MNIST, after verifying its file.

    It checks the file's SHA-256, builds the ``cpu`` preset's network with
    ``vggcourse.build_model``, and reads only the weights from the file into
    it, as float32. Nothing else in the file is used: no stored configuration
    is deserialized and no stored code (such as a ``Lambda`` layer) runs.

    Taught in: *What VGG learns, and reusing it*.

    Args:
        path: a ``.keras`` file written by ``python -m vggcourse.pretrained
            convert``; by default the file that ships with the package.
        sha256: the file's expected SHA-256; by default the shipped file's.
            Required with ``path``: a file is never loaded unverified.

    Returns:
        A built, uncompiled ``keras.Sequential`` that takes uint8 images of
        shape ``(n, 28, 28, 1)`` and outputs the logits of the ten classes.

    Raises:
        FileNotFoundError: the file does not exist.
        vggcourse.DataIntegrityError: the file's SHA-256 differs (a truncated
            or corrupt file), or it cannot be loaded. The message names the file.
        ValueError: the file holds another network than the preset's.
    """
    if path is None:
        path = WEIGHTS_PATH
        sha256 = WEIGHTS_SHA256 if sha256 is None else sha256
    else:
        path = _check_path(path)
        if sha256 is None:
            raise TypeError(
                "Expected `sha256` with `path`: the expected SHA-256 of the file, so that it is "
                f"verified before it is loaded. Received: path={str(path)!r}, sha256=None"
            )
    sha256 = _check_sha256(sha256)
    _verify(path, sha256)
    return _load(path)


# ---------------------------------------------------------------------------
# Converting a checkpoint into the shipped file.


_WEIGHTS_ENTRY = "model.weights.h5"  # where a .keras archive keeps its weights


def _h5_with_dtype(content, dtype):
    """The bytes of a Keras weights file whose float arrays are stored as ``dtype``."""
    import h5py

    source, target = io.BytesIO(content), io.BytesIO()
    with h5py.File(source, "r") as fin, h5py.File(target, "w") as fout:
        fout.attrs.update(fin.attrs)

        def copy(name, node):
            if isinstance(node, h5py.Dataset):
                values = node[()]
                if np.issubdtype(values.dtype, np.floating):
                    values = values.astype(dtype)
                fout.create_dataset(name, data=values)
            else:
                fout.require_group(name)
            fout[name].attrs.update(node.attrs)

        fin.visititems(copy)
    return target.getvalue()


def _save_as(model, path, dtype):
    """Saves ``model`` as a .keras file whose weights are stored as ``dtype``.

    The configuration stays float32, so Keras builds the float32 network and
    casts each stored array into its variable as it loads. A float16 network
    is never built: on CPUs without AVX-512, oneDNN has no float16 kernels.
    """
    model.save(path)
    if dtype == "float32":
        return
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, content in entries:
            if info.filename == _WEIGHTS_ENTRY:
                content = _h5_with_dtype(content, dtype)
            archive.writestr(info, content)


def _accuracy(model, data):
    x_test, y_test = data
    return float((predict_labels(model, x_test) == y_test).mean())


def convert_checkpoint(checkpoint, output=None, *, dtype="auto", test_data=None):
    """Writes the weights of a trained checkpoint as the file ``load_trained_vgg`` reads.

    Args:
        checkpoint: a ``.keras`` file of the ``cpu`` preset's network, as
            ``python -m vggcourse train --preset cpu --checkpoint PATH.keras``
            writes it.
        output: where to write; by default ``WEIGHTS_PATH``, the shipped file.
        dtype: ``"float16"``, ``"float32"``, or ``"auto"``: float16 if the
            accuracy on ``test_data`` is the same to three decimals, else float32.
        test_data: ``(x_test, y_test)`` to measure the accuracy on; by default
            the test set of ``load_fashion_mnist()``.

    Returns:
        A dict with the ``path``, its ``sha256``, ``bytes``, the ``dtype``
        chosen, and the test ``accuracy`` of the checkpoint (``float32``) and of
        the written file (``written``).
    """
    checkpoint = _check_path(checkpoint)
    output = WEIGHTS_PATH if output is None else _check_path(output)
    if dtype not in _DTYPES:
        raise ValueError(
            f"Expected `dtype` to be one of {', '.join(map(repr, _DTYPES))}. "
            f"Received: dtype={dtype!r}"
        )
    if not checkpoint.is_file():
        raise FileNotFoundError(f"The checkpoint {checkpoint} does not exist.")
    if test_data is None:
        test_data = load_fashion_mnist()[1]
    trained = _load(checkpoint)
    reference = _accuracy(trained, test_data)
    candidates = ("float16", "float32") if dtype == "auto" else (dtype,)
    output.parent.mkdir(parents=True, exist_ok=True)
    for candidate in candidates:
        with tempfile.TemporaryDirectory() as folder:
            staged = pathlib.Path(folder) / output.name
            _save_as(trained, staged, candidate)
            digest = file_sha256(staged)
            written = _accuracy(load_trained_vgg(staged, sha256=digest), test_data)
            if dtype != "auto" or round(written, 3) == round(reference, 3):
                output.write_bytes(staged.read_bytes())
                break
    return {
        "path": output,
        "sha256": file_sha256(output),
        "bytes": output.stat().st_size,
        "dtype": candidate,
        "accuracy": {"float32": reference, "written": written},
    }


def stored_dtypes(path):
    """The dtypes in which a .keras file stores its weights, such as ``{"float16"}``."""
    import h5py

    with zipfile.ZipFile(path) as archive:
        content = archive.read(_WEIGHTS_ENTRY)
    found = set()
    with h5py.File(io.BytesIO(content), "r") as weights:
        weights.visititems(
            lambda _, node: found.add(node.dtype.name) if hasattr(node, "dtype") else None
        )
    return found


def main(argv=None):
    """``python -m vggcourse.pretrained``: convert a checkpoint, or verify the shipped file."""
    parser = argparse.ArgumentParser(
        prog="python -m vggcourse.pretrained",
        description="The trained VGG-11 that ships with vggcourse. Regenerate it with:\n"
        + REGENERATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    convert = commands.add_parser(
        "convert", help="write a trained checkpoint as the shipped weights file"
    )
    convert.add_argument("checkpoint", help="a .keras checkpoint of the cpu preset")
    convert.add_argument("--output", help=f"where to write (default: {WEIGHTS_PATH})")
    convert.add_argument("--dtype", choices=_DTYPES, default="auto",
                         help="float16 if the accuracy stays to 3 decimals (default: auto)")
    convert.add_argument("--source", default="auto",
                         help="where load_fashion_mnist finds the test set (default: auto)")
    commands.add_parser("verify", help="check the shipped file and print its test accuracy")
    args = parser.parse_args(argv)

    try:
        if args.command == "convert":
            test_data = load_fashion_mnist(source=args.source)[1]
            result = convert_checkpoint(args.checkpoint, args.output, dtype=args.dtype,
                                        test_data=test_data)
            accuracy = result["accuracy"]
            print(f"test accuracy: {accuracy['float32']:.4f} as trained (float32), "
                  f"{accuracy['written']:.4f} as written ({result['dtype']})")
            print(f"wrote {result['path']}: {result['bytes']:,} bytes")
            print(f'WEIGHTS_SHA256 = "{result["sha256"]}"')
        else:
            model = load_trained_vgg()
            x_test, y_test = load_fashion_mnist()[1]
            print(f"{WEIGHTS_PATH}: sha256 verified, weights stored as "
                  f"{', '.join(sorted(stored_dtypes(WEIGHTS_PATH)))}")
            print(f"test accuracy on {len(y_test):,} images: "
                  f"{_accuracy(model, (x_test, y_test)):.4f}")
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1 if isinstance(error, (FileNotFoundError, DataIntegrityError)) else 2
    return 0
