"""Ship int8 versions of the models in `saved_models/`, for LiteRT and TFLite Micro.

    python examples/ship_int8.py [NAME ...] [--saved saved_models] [--data-dir DIR]
        [--calibration 500] [--micro-samples 10000] [--slice 1000]

For each `NAME` (default: the shipped MNIST models; `fsdd_dense_cnn2
fsdd_sparse_cnn2` with the FSDD `--data-dir`), `<saved>/<NAME>.keras` is
converted by `keras_sparse.export.to_tflite(quantize="int8", target="micro")`,
calibrated on the first `--calibration` training inputs (normalized as the
float model's JSON `input` says, `keras_sparse.shipping.calibration_inputs`), and
written beside it as

    <NAME>_int8.tflite   int8 weights, activations, input and output; only
                         ops in `keras_sparse.export.MICRO_OPS`, so it runs in
                         TFLite Micro as well as LiteRT
    <NAME>_int8.json     how it was made; test accuracy and noise score of the
                         file on LiteRT (the float JSON's protocol and noise
                         seed, full test set); its argmax agreement with the
                         float `.keras` model; the correct answers of LiteRT on
                         the first `--slice` test inputs; and TFLite Micro
                         against LiteRT on the first `--micro-samples` test
                         inputs and on the first 100 (identical int8 outputs,
                         largest output code difference, argmax agreement)

so that `tests/test_saved_models.py` can assert its numbers exactly. A model
the conversion refuses (e.g. ops TFLite Micro lacks) is reported and not
shipped; the script then exits with status 1.

An FSDD model takes raw audio through its log-mel front end
(`keras_sparse.audio.LogMelSpectrogram`); its int8 file is the network
behind that front end, which takes the float features quantized: the front
end stays float32 on the host, as a microcontroller computes its features
outside the network (int8 cannot hold its 80 dB range before the log, and
TFLite Micro lacks the `REDUCE_PROD` its shape arithmetic converts to). The
accuracy, noise score and agreement are those of front end + int8 file.
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

import numpy as np  # noqa: E402

from keras_sparse import tasks  # noqa: E402
from keras_sparse.shipping import (  # noqa: E402
    calibration_inputs, evaluate_saved, int8_network, micro_vs_litert, test_inputs)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_MODELS = ("mnist_dense_cnn2", "mnist_sparse_cnn2", "mnist_sparse_cnn2_ensemble3")
FSDD_MODELS = ("fsdd_dense_cnn2", "fsdd_sparse_cnn2")
FEATURES_INPUT = ("float32 (32, 32, 1) log-mel dB features (keras_sparse.audio.log_mel_spectrogram "
                  "with the float model's LogMelSpectrogram settings) of: ")
MICRO_CHECK_SAMPLES = 100  # the slice tests/test_saved_models.py runs in TFLite Micro


def int8_file_name(name, target):
    """The shipped int8 file's name (no extension): `<name>_int8` for TFLite
    Micro (runs on LiteRT too), `<name>_int8_litert` for LiteRT only."""
    return f"{name}_int8" if target == "micro" else f"{name}_int8_litert"


def ship_int8(name, saved="saved_models", data_dir=None, calibration=500, micro_samples=10000,
              slice_samples=1000, command=None, target="micro"):
    """Writes `<saved>/<name>_int8.tflite` and `.json` (module doc; with
    `target="litert"`, `<name>_int8_litert.*`: k-winners by `TOPK_V2`, for
    LiteRT only, no TFLite Micro comparison) and returns the JSON's dict.

    Raises `ValueError` (from `to_tflite`, no file written) if the model
    cannot be exported int8 for the target.
    """
    import ai_edge_litert
    import keras
    import tflite_micro

    from keras_sparse.export import TFLiteModel, tflite_op_names, to_tflite

    task = tasks.from_model_name(name)
    with open(os.path.join(saved, f"{name}.json")) as f:
        float_info = json.load(f)
    model = keras.models.load_model(os.path.join(saved, f"{name}.keras"))
    network, features = int8_network(model)
    same = lambda inputs: inputs  # noqa: E731
    to_network = features or same
    path = os.path.join(saved, f"{int8_file_name(name, target)}.tflite")
    to_tflite(network, path, quantize="int8", target=target,
              representative_data=to_network(calibration_inputs(task, data_dir, calibration)))

    lite = TFLiteModel(path)
    accuracy, noisy = evaluate_saved(lite, task, data_dir, float_info["noise_seed"], features=features)
    inputs, labels = test_inputs(task, data_dir)
    network_inputs = to_network(inputs)
    predictions = lite.predict(network_inputs).argmax(1)
    float_predictions = model.predict(inputs, batch_size=512, verbose=0).argmax(1)
    (in_scale, in_zero), (out_scale, out_zero) = lite.input_quantization, lite.output_quantization
    info = {
        "source": f"{name}.keras",
        "command": command,
        "quantize": "int8", "target": target,
        "calibration": f"the first {calibration} {task.name.upper()} training inputs, as `input` says",
        "bytes": os.path.getsize(path),
        "tflite_ops": tflite_op_names(path),
        "input": f"{FEATURES_INPUT if features else ''}{task.input_description}, then int8: "
                 f"q = clip(round(x / {in_scale!r}) + {in_zero}, -128, 127)",
        "output": f"{float_info['output']}, as int8 codes q: value = (q - {out_zero}) * {out_scale!r}",
        "input_quantization": [float(in_scale), int(in_zero)],
        "output_quantization": [float(out_scale), int(out_zero)],
        "runtime": f"LiteRT (ai_edge_litert {ai_edge_litert.__version__}, default XNNPACK delegate)",
        "micro_runtime": f"TFLite Micro (tflite-micro {tflite_micro.__version__}, host build)",
        "test_accuracy": accuracy, "noise_score": noisy["noise_score"],
        "noise_seed": noisy["seed"], "noise_levels": noisy["levels"], "noise_correct": noisy["correct"],
        "test_slice": {"samples": min(slice_samples, len(labels)),
                       "litert_correct": int(np.sum(predictions[:slice_samples] == labels[:slice_samples]))},
        "argmax_agreement_with_float": float(np.mean(predictions == float_predictions)),
        "vs_float": {
            "float_test_accuracy": float_info["test_accuracy"],
            "float_noise_score": float_info["noise_score"],
            "accuracy_points": round(100 * (accuracy - float_info["test_accuracy"]), 2),
            "noise_score_relative": round(noisy["noise_score"] / float_info["noise_score"] - 1, 4),
        },
    }
    if target == "micro":
        info["micro_vs_litert"] = micro_vs_litert(path, network_inputs[:micro_samples])
        info["micro_vs_litert_first_100"] = micro_vs_litert(path, network_inputs[:MICRO_CHECK_SAMPLES])
    with open(os.path.join(saved, f"{int8_file_name(name, target)}.json"), "w") as f:
        json.dump(info, f, indent=2)
    return info


def _task_name(model_name):
    """The task name of a shipped model's name, None if no task's."""
    try:
        return tasks.from_model_name(model_name).name
    except ValueError:
        return None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", default=list(MNIST_MODELS),
                   help="models in --saved to quantize, of one task (default: the MNIST ones; "
                        f"the FSDD ones: {' '.join(FSDD_MODELS)})")
    p.add_argument("--saved", default=os.path.join(REPO, "saved_models"))
    p.add_argument("--data-dir", default=None,
                   help="the task's data (default: $KERAS_SPARSE_MNIST / $KERAS_SPARSE_FSDD)")
    p.add_argument("--calibration", type=int, default=500, help="training inputs to calibrate on")
    p.add_argument("--micro-samples", type=int, default=10000,
                   help="test inputs to run in TFLite Micro (one per invocation)")
    p.add_argument("--slice", type=int, default=1000, dest="slice_samples",
                   help="first test inputs whose LiteRT correct count the JSON stores")
    p.add_argument("--target", choices=("micro", "litert"), default="micro",
                   help="micro (default): <NAME>_int8.tflite, TFLite Micro's ops, runs on both "
                        "runtimes; litert: <NAME>_int8_litert.tflite, k-winners by TOPK_V2 (faster on LiteRT)")
    args = p.parse_args(argv)
    for option in ("calibration", "micro_samples", "slice_samples"):
        if getattr(args, option) < 1:
            flag = "--slice" if option == "slice_samples" else "--" + option.replace("_", "-")
            raise ValueError(f"`{flag}` must be >= 1. Received: {getattr(args, option)}")
    if len({_task_name(name) for name in args.names}) > 1:
        raise ValueError(f"`names` must be models of one task (one --data-dir). Received: {args.names}")
    for name in args.names:
        if _task_name(name) is None or not os.path.isfile(os.path.join(args.saved, f"{name}.keras")):
            raise ValueError(f"`names`: {name!r} is not a shipped model (<task>_<network> with a "
                             f".keras and .json in {args.saved}, task one of {sorted(tasks.TASKS)})")
    return args


def main(argv=None):
    args = parse_args(argv)
    command = "python examples/ship_int8.py " + " ".join(sys.argv[1:] if argv is None else argv)
    failed = []
    for name in args.names:
        try:
            info = ship_int8(name, args.saved, args.data_dir, args.calibration, args.micro_samples,
                             args.slice_samples, command.strip(), args.target)
        except ValueError as error:
            failed.append(name)
            print(f"{name}: not shipped: {error}", flush=True)
            continue
        print(f"{int8_file_name(name, args.target)}: accuracy {100 * info['test_accuracy']:.2f}%, noise score "
              f"{info['noise_score']:,}, agreement with float {100 * info['argmax_agreement_with_float']:.2f}%, "
              f"TFLite Micro vs LiteRT {json.dumps(info.get('micro_vs_litert'))}", flush=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
