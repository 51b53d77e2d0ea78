"""Copy trained MNIST networks from a `mnist_noise.py` run into `saved_models/`.

    python examples/ship_mnist_models.py RUN_DIR [--out saved_models] [--networks ...] [--seed 0]

For each network, `RUN_DIR/<network>_seed<seed>/model.keras` is reloaded,
re-evaluated on the real MNIST test set (clean accuracy and the noise score
with `--noise-seed`), and written as

    <out>/mnist_<network>.keras    the Keras model (input (28, 28, 1) float32,
                                   normalized (x/255 - 0.1307) / 0.3081; 10 logits)
    <out>/mnist_<network>.tflite   the same model for LiteRT
    <out>/mnist_<network>.json     test accuracy, noise score, noise seed,
                                   per-level accuracy and the training run's metadata

The numbers in the JSON are those of the reloaded model, so
`tests/test_saved_models.py` can assert them exactly.
"""

import argparse
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    import keras_sparse  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def evaluate_saved(model, data_dir=None, noise_seed=0):
    """(test accuracy, noise result dict) of `model` on the full MNIST test set."""
    import numpy as np

    from keras_sparse import datasets, noise

    _, (x_test, y_test) = datasets.load_mnist(data_dir)
    x01 = datasets.to_unit_interval(x_test)
    scores = model.predict(datasets.normalize(x01), batch_size=512, verbose=0)
    accuracy = float(np.mean(np.argmax(scores, -1) == y_test))
    return accuracy, noise.evaluate_noise(model, x01, y_test, seed=noise_seed, batch_size=512)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--out", default="saved_models")
    p.add_argument("--networks", nargs="+", default=["dense_cnn2", "sparse_cnn2"])
    p.add_argument("--seed", type=int, default=0, help="which training seed to ship")
    p.add_argument("--noise-seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--name", default=None, help="override the shipped name (one network only)")
    args = p.parse_args(argv)

    import keras

    from keras_sparse.export import to_tflite

    os.makedirs(args.out, exist_ok=True)
    for network in args.networks:
        src = os.path.join(args.run_dir, f"{network}_seed{args.seed}")
        name = args.name or f"mnist_{network}"
        model = keras.models.load_model(os.path.join(src, "model.keras"))
        accuracy, noisy = evaluate_saved(model, args.data_dir, args.noise_seed)
        shutil.copyfile(os.path.join(src, "model.keras"), os.path.join(args.out, f"{name}.keras"))
        to_tflite(model, os.path.join(args.out, f"{name}.tflite"))
        with open(os.path.join(src, "run.json")) as f:
            run = json.load(f)
        info = {
            "network": network, "test_accuracy": accuracy, "noise_score": noisy["noise_score"],
            "noise_seed": args.noise_seed, "noise_levels": noisy["levels"],
            "noise_correct": noisy["correct"], "training": {
                k: run[k] for k in ("seed", "epochs", "train_samples", "first_epoch_batch",
                                    "initializer", "train_seconds") if k in run},
            "input": "float32 (28, 28, 1), (x/255 - 0.1307) / 0.3081", "output": "10 logits",
        }
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump(info, f, indent=2)
        print(f"{name}: accuracy {100 * accuracy:.2f}%, noise score {noisy['noise_score']:,}")


if __name__ == "__main__":
    main()
