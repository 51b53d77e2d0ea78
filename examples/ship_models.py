"""Copy trained networks from a `mnist_noise.py` or `speech_noise.py` run into `saved_models/`.

    python examples/ship_models.py RUN_DIR [--task mnist|fsdd|gsc-v0.01] [--out saved_models]
        [--networks ...] [--seeds 0] [--k-inference-factor F] [--name NAME] [--sparse-encoding]
        [--test-samples N]
    python examples/ship_models.py --reexport NAME [NAME ...] [--out saved_models] [--data-dir DIR]

For each network, `RUN_DIR/<network>_seed<seed>/model.keras` is reloaded (with
several `--seeds`, the seeds' models are combined by
`keras_sparse.models.ensemble`, mean of the members' softmax; with
`--k-inference-factor`, re-set by `keras_sparse.models.with_k_inference_factor`),
re-evaluated on the task's real test set (clean accuracy and the noise score
with `--noise-seed`), and written as `<out>/<name>.keras`, `.tflite` and
`.json` (`keras_sparse.shipping`, which does the work). `<name>` is
`<task>_<network>` unless `--name` says otherwise.

`--reexport NAME ...` rewrites the shipped `<out>/<NAME>.tflite` from its
`.keras` with this release's exporter (files shipped by an earlier release
keep its slower k-winners kernels until then) and records in `<NAME>.json`
on how many clean test inputs the file's argmax equals the Keras model's
(`keras_sparse.shipping.reexport_tflite`); the `.keras` and its numbers stay.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    import keras_sparse  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_sparse import shipping, tasks  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", nargs="?", help="the training run to ship from (not with --reexport)")
    p.add_argument("--reexport", nargs="+", default=None, metavar="NAME",
                   help="only rewrite these shipped models' .tflite with this release's exporter")
    p.add_argument("--task", choices=tasks.names(), default="mnist",
                   help="the run's task: mnist (mnist_noise.py), fsdd or gsc-v0.01 (speech_noise.py)")
    p.add_argument("--out", default="saved_models")
    p.add_argument("--networks", nargs="+", default=["dense_cnn2", "sparse_cnn2"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seed(s) to ship; several make an ensemble")
    p.add_argument("--k-inference-factor", type=float, default=None,
                   help="re-set every k-winners layer's inference density (default: as trained)")
    p.add_argument("--noise-seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--sparse-encoding", action="store_true",
                   help="store mostly-zero kernels of the .tflite in TFLite's sparse encoding (smaller file)")
    p.add_argument("--name", default=None, help="override the shipped name (one network only)")
    p.add_argument("--test-samples", type=int, default=None,
                   help="score on the first N test inputs only (a quick check; default: all)")
    args = p.parse_args(argv)
    if (args.run_dir is None) == (args.reexport is None):
        p.error("give exactly one of RUN_DIR and --reexport NAME ...")
    if args.reexport:
        records = {name: shipping.reexport_tflite(name, args.out, args.data_dir) for name in args.reexport}
        for name, record in records.items():
            print(f"{name}.tflite: argmax equal to Keras on {record['argmax_equal']:,} of "
                  f"{record['samples']:,} test inputs")
        return records
    if args.name and len(args.networks) > 1:
        p.error("--name needs exactly one network in --networks")
    return shipping.ship(args.run_dir, args.task, args.networks, args.seeds, args.out,
                         args.k_inference_factor, args.noise_seed, args.data_dir,
                         args.sparse_encoding, args.name, args.test_samples)


if __name__ == "__main__":
    main()
