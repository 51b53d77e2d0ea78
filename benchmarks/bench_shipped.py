"""LiteRT batch-1 latency of `.tflite` files as they are shipped, interleaved.

    python benchmarks/bench_shipped.py FILE.tflite [FILE.tflite ...] [--data-dir DIR]
        [--invocations 3000] [--threads 1] [--out runs/bench_shipped.json]

Every file takes an MNIST image (28, 28, 1) normalized as the shipped
models' JSON `input` says (float32 files) or quantized by the file's own
input scale and zero point (int8 files); the input is the first clean test
image. The files are loaded once each (`ai_edge_litert`, default XNNPACK
delegate, `--threads`) and invoked in alternating blocks of 100 calls
(`benchmarks/timing.py`) until each has `--invocations`, so background load
hits them alike; the median is reported, and every ratio is to the first
file. To compare a file with an earlier release's, take it from git first:

    git show 4cf0760:saved_models/mnist_sparse_cnn2.tflite > runs/mnist_sparse_cnn2_at_4cf0760.tflite
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_inference import litert_invokers  # noqa: E402
from timing import cpu_name, interleaved_us  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--invocations", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/bench_shipped.json")
    args = parser.parse_args(argv)
    for name in ("invocations", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    missing = [path for path in args.files if not os.path.isfile(path)]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")

    import numpy as np

    from keras_sparse.shipping import test_inputs

    sample = np.asarray(test_inputs("mnist", args.data_dir)[0][:1], np.float32)
    times = interleaved_us(litert_invokers({path: path for path in args.files}, sample, args.threads),
                           args.invocations)
    medians = {path: statistics.median(values) for path, values in times.items()}
    first = medians[args.files[0]]
    print(f"LiteRT batch 1, {args.threads} thread(s), median of {args.invocations} interleaved calls:\n")
    print("| file | bytes | µs | / first |\n|---|---|---|---|")
    for path in args.files:
        print(f"| `{path}` | {os.path.getsize(path):,} | {medians[path]:.1f} | {medians[path] / first:.2f} |")
    results = {"machine": f"{cpu_name()}, {os.cpu_count()} cores, {platform.machine()}",
               "date": datetime.date.today().isoformat(), "threads": args.threads,
               "invocations": args.invocations, "median_us": medians}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
