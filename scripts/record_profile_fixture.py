"""Writes tests/data/profile-smoke.xplane.pb: a small recorded TensorFlow profile for the tests.

It profiles one training step of the ``smoke`` preset at batch 8 (after one
warm-up step), as ``vggcourse.bench.profile.profile_training`` does, and keeps
what ``op_times`` reads: the host CPU plane with its ``tf_Compute`` lines,
one other line of that plane (cut to 20 events), and the name of one other
plane, both of which the reader must skip. About 55 kB.

Usage:
    python scripts/record_profile_fixture.py [OUTPUT]
"""

import pathlib
import sys
import tempfile

from vggcourse import data, train
from vggcourse.bench.measure import short_run
from vggcourse.bench.profile import _ProfileSteps

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "profile-smoke.xplane.pb"


def record(logdir):
    config = short_run(train.PRESETS["smoke"].replace(batch_size=8), steps=1, warmup_steps=1, kind="profile")
    with tempfile.TemporaryDirectory() as backup_dir:
        train.train_vgg(config, data.load_fashion_mnist(source="sample"), backup_dir=backup_dir,
                        callbacks=[_ProfileSteps(logdir, 1, 1)], verbose=0)
    return sorted(pathlib.Path(logdir).rglob("*.xplane.pb"))[-1]


def trim(space):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    small = xplane_pb2.XSpace()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            if len(small.planes) == 0:
                small.planes.add().name = plane.name
            continue
        kept = small.planes.add()
        kept.id, kept.name = plane.id, plane.name
        other_line = None
        for line in plane.lines:
            if line.name.startswith("tf_Compute") or other_line is None:
                new = kept.lines.add()
                new.CopyFrom(line)
                if not line.name.startswith("tf_Compute"):
                    other_line = new
                    del new.events[20:]
        for metadata_id in {event.metadata_id for line in kept.lines for event in line.events}:
            kept.event_metadata[metadata_id].CopyFrom(plane.event_metadata[metadata_id])
    return small


def main(output=OUTPUT):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        space = xplane_pb2.XSpace()
        space.ParseFromString(record(logdir).read_bytes())
    pathlib.Path(output).write_bytes(trim(space).SerializeToString())
    print(f"{output}: {pathlib.Path(output).stat().st_size:,} bytes")


if __name__ == "__main__":
    main(*sys.argv[1:])
