"""Re-evaluate trained models (MNIST or FSDD) at other inference densities.

A k-winners layer keeps `k` winners in training and
`k_inference = round(k * k_inference_factor)` at inference (the paper: 1.5).
Training never looks at `k_inference`, so one trained model can be measured at
every factor without retraining: this script loads each `model.keras`, makes a
copy per factor with `keras_sparse.models.with_k_inference_factor`, and
reports clean test accuracy and the noise score (the paper's 11 levels, or at `--levels`) of each copy.

    python examples/k_inference.py runs/full/sparse_cnn2_seed0/model.keras \\
        --factors 1.0 1.25 1.5 --data-dir ../shared/datasets/mnist --out kif.json
    python examples/k_inference.py --task fsdd runs/speech/sparse_cnn2_seed0/model.keras \\
        --data-dir ../shared/datasets/fsdd
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:  # run from a checkout without `pip install -e .`
    import keras_sparse  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_sparse import tasks  # noqa: E402
from keras_sparse.shipping import evaluate_saved  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="trained .keras files")
    p.add_argument("--task", choices=tasks.names(), default="mnist",
                   help="the models' task: mnist (mnist_noise.py), fsdd or gsc-v0.01 (speech_noise.py, raw-audio models)")
    p.add_argument("--factors", type=float, nargs="+", default=[1.0, 1.25, 1.5],
                   help="k_inference_factor values to measure (default: 1.0 1.25 1.5)")
    p.add_argument("--data-dir", default=None,
                   help="the task's data (default: $KERAS_SPARSE_MNIST / $KERAS_SPARSE_FSDD, else download)")
    p.add_argument("--test-samples", type=int, default=None, help="first N test items (default: all)")
    p.add_argument("--levels", type=float, nargs="+", default=None,
                   help="noise levels, 0.0 first (default: the paper's 0.0, 0.05, ..., 0.5)")
    p.add_argument("--noise-seed", type=int, default=0, help="seed of the noisy test sets (default: 0)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    if any(f <= 0 for f in args.factors):
        p.error(f"--factors must be > 0, got {args.factors}")
    if args.levels is not None and (args.levels[0] != 0.0 or not all(0 <= a <= 1 for a in args.levels)):
        p.error(f"--levels must start with 0.0 (the clean test set) and lie in [0, 1], got {args.levels}")
    if args.test_samples is not None and args.test_samples < 1:
        p.error(f"--test-samples must be >= 1, got {args.test_samples}")
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras

    from keras_sparse import models

    results = []
    for path in args.models:
        trained = keras.models.load_model(path, compile=False)
        for factor in args.factors:
            model = models.with_k_inference_factor(trained, factor)
            accuracy, noisy = evaluate_saved(model, args.task, args.data_dir, args.noise_seed,
                                             args.test_samples, args.levels)
            results.append({
                "model": path, "task": args.task, "k_inference_factor": factor,
                "test_accuracy": accuracy, "noise_score": noisy["noise_score"],
                "noise_seed": args.noise_seed, "noise_levels": noisy["levels"],
                "noise_accuracy": noisy["accuracy"],
                "test_samples": noisy["num_images"],
            })
            print(f"{path}  k_inference_factor {factor:g}: test accuracy {100 * accuracy:.2f}%, "
                  f"noise score {noisy['noise_score']:,}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            command = " ".join(sys.argv if argv is None else ["k_inference.py"] + list(argv))
            json.dump({"command": command, "results": results}, f, indent=2)
    return results


if __name__ == "__main__":
    main()
