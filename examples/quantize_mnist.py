"""int8 against float32 for the shipped MNIST models, on LiteRT and TFLite Micro.

    python examples/quantize_mnist.py [--data-dir DIR] [--calibration 500] [--noise-seed 0]
        [--micro-samples 10000] [--out examples/results/quantize_mnist.json]

For `saved_models/mnist_sparse_cnn2.keras` and its dense ReLU control
`mnist_dense_cnn2.keras`, converted the same way by
`keras_sparse.export.to_tflite` (float32; `quantize="int8"` calibrated on the
first `--calibration` training images): clean accuracy and noise score
(`keras_sparse.noise`, the paper's 11 levels, `--noise-seed`) of the float32
and int8 files on LiteRT over the full test set, the argmax agreement of int8
with float32 on the clean test set, and, for the int8 files on the first
`--micro-samples` test images, how TFLite Micro's outputs compare with
LiteRT's (identical int8 outputs, largest difference in output codes,
argmax agreement). Writes the JSON to `--out` and prints it.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from keras_sparse.shipping import calibration_inputs, evaluate_saved, micro_vs_litert, test_inputs  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--calibration", type=int, default=500)
    p.add_argument("--noise-seed", type=int, default=0)
    p.add_argument("--micro-samples", type=int, default=10000)
    p.add_argument("--out", default=os.path.join(REPO, "examples", "results", "quantize_mnist.json"))
    args = p.parse_args(argv)

    import keras

    from keras_sparse.export import TFLiteModel, to_tflite

    calibration = calibration_inputs("mnist", args.data_dir, args.calibration)
    clean, _ = test_inputs("mnist", args.data_dir)
    results = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
               "cpus": os.cpu_count(), "calibration_images": args.calibration,
               "noise_seed": args.noise_seed, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("mnist_sparse_cnn2", "mnist_dense_cnn2"):
            model = keras.models.load_model(os.path.join(REPO, "saved_models", f"{name}.keras"))
            row, predictions = {}, {}
            for quantize in (None, "int8"):
                label = quantize or "float32"
                path = os.path.join(tmp, f"{name}_{label}.tflite")
                start = time.perf_counter()
                to_tflite(model, path, quantize=quantize,
                          representative_data=calibration if quantize else None, target="micro")
                convert_s = time.perf_counter() - start
                lite = TFLiteModel(path)
                predictions[label] = lite.predict(clean).argmax(1)
                accuracy, noisy = evaluate_saved(lite, "mnist", args.data_dir, args.noise_seed)
                row[label] = {"bytes": os.path.getsize(path), "convert_seconds": round(convert_s, 1),
                              "test_accuracy": accuracy,
                              "noise_score": noisy["noise_score"], "noise_correct": noisy["correct"]}
                if quantize and args.micro_samples:
                    start = time.perf_counter()
                    comparison = micro_vs_litert(path, clean[:args.micro_samples])
                    row[label]["micro_vs_litert"] = dict(comparison, seconds=round(time.perf_counter() - start, 1))
            f, q = row["float32"], row["int8"]
            row["int8_vs_float32"] = {
                "accuracy_points": round(100 * (q["test_accuracy"] - f["test_accuracy"]), 2),
                "noise_score_relative": round(q["noise_score"] / f["noise_score"] - 1, 4),
                "argmax_agreement": float(np.mean(predictions["int8"] == predictions["float32"])),
            }
            results["models"][name] = row
            print(name, json.dumps(row["int8_vs_float32"]), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
