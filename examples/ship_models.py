"""Copy trained networks from a `mnist_noise.py` or `speech_noise.py` run into `saved_models/`.

    python examples/ship_models.py RUN_DIR [--task mnist|fsdd] [--out saved_models]
        [--networks ...] [--seeds 0] [--k-inference-factor F] [--name NAME] [--sparse-encoding]

For each network, `RUN_DIR/<network>_seed<seed>/model.keras` is reloaded (with
several `--seeds`, the seeds' models are combined by
`keras_sparse.models.ensemble`, mean of the members' softmax; with
`--k-inference-factor`, re-set by `keras_sparse.models.with_k_inference_factor`),
re-evaluated on the task's real test set (clean accuracy and the noise score
with `--noise-seed`), and written as

    <out>/<name>.keras    the Keras model (input: `INPUTS[task]`; 10 logits, or
                          10 probabilities for an ensemble)
    <out>/<name>.tflite   the same model for LiteRT
    <out>/<name>.json     test accuracy, noise score, noise seed, per-level
                          correct answers, the input and the training runs' metadata

`<name>` is `<task>_<network>` unless `--name` says otherwise. The numbers in
the JSON are those of the reloaded model, so `tests/test_saved_models.py` can
assert them exactly.
"""

import argparse
import functools
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    import keras_sparse  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


INPUTS = {
    "mnist": "float32 (28, 28, 1), (x/255 - 0.1307) / 0.3081",
    "fsdd": "float32 (16000,) raw waveform at 16 kHz in [-1, 1] (features inside the model); "
            "an FSDD clip is read as int16 / 32768, resampled 8 -> 16 kHz by "
            "scipy.signal.resample_poly(x, 2, 1), clipped to [-1, 1], then cut to its first "
            "16,000 samples or zero-padded at the end (keras_sparse.audio.load_fsdd)",
}


@functools.lru_cache(maxsize=2)
def _test_set(task, data_dir):
    """The task's test inputs (MNIST pixels in [0, 1], FSDD waveforms) and labels,
    read once per process: a run evaluates several models and factors."""
    from keras_sparse import datasets

    if task == "mnist":
        _, (x_test, y_test) = datasets.load_mnist(data_dir)
        return datasets.to_unit_interval(x_test), y_test
    if task == "fsdd":
        waveforms, labels, _ = datasets.load_fsdd(data_dir)["test"]
        return waveforms, labels
    raise ValueError(f"`task` must be one of {sorted(INPUTS)}. Received: task={task!r}")


def test_inputs(task, data_dir=None):
    """The task's clean test set as the shipped models take it (`INPUTS[task]`:
    normalized MNIST images, FSDD waveforms) and its labels."""
    from keras_sparse import datasets

    inputs, labels = _test_set(task, data_dir)
    return (datasets.normalize(inputs) if task == "mnist" else inputs), labels


def calibration_inputs(task, data_dir=None, samples=500):
    """The first `samples` training inputs of the task as the shipped models
    take them (`INPUTS[task]`): the int8 exports' representative data."""
    from keras_sparse import datasets

    if task == "mnist":
        (x_train, _), _ = datasets.load_mnist(data_dir)
        return datasets.normalize(datasets.to_unit_interval(x_train[:samples]))
    if task == "fsdd":
        return datasets.load_fsdd(data_dir)["train"][0][:samples]
    raise ValueError(f"`task` must be one of {sorted(INPUTS)}. Received: task={task!r}")


def evaluate_saved(model, task="mnist", data_dir=None, noise_seed=0, test_samples=None,
                   levels=None, features=None):
    """(test accuracy, noise result dict) of `model` on the task's test set
    (MNIST's 10,000 images, FSDD's 300 official test clips; the first
    `test_samples` of them if given), at the paper's 11 noise levels or `levels`.
    FSDD only: `features` maps the noisy waveforms to `model`'s input (a model
    on spectrograms).

    The test accuracy is the noise evaluation's level 0.0, the clean test set."""
    from keras_sparse import noise

    inputs, labels = _test_set(task, data_dir)
    levels = noise.NOISE_LEVELS if levels is None else levels
    if task == "mnist":
        noisy = noise.evaluate_noise(model, inputs[:test_samples], labels[:test_samples], levels,
                                     seed=noise_seed, batch_size=512)
    else:
        noisy = noise.evaluate_audio_noise(model, inputs[:test_samples], labels[:test_samples], levels,
                                           seed=noise_seed, batch_size=512, features=features)
    return noise.clean_accuracy(noisy), noisy


def _load_for_inference(path, task):
    """The model at `path` without optimizer state. A speech run's raw-audio
    model is rebuilt around its spectrogram model (`waveform_model`), which
    leaves the nested model's SGD momentum behind."""
    import keras

    from keras_sparse import models

    model = keras.models.load_model(path, compile=False)
    return models.waveform_model(model.layers[-1], name=model.name) if task == "fsdd" else model


def _k_inference_factor(model):
    """The k-winners layers' common `k_inference_factor` (None without k-winners)."""
    from keras_sparse.kwinners import kwinners_layers

    factors = {layer.k_inference_factor for layer in kwinners_layers(model)}
    if len(factors) > 1:
        raise ValueError(f"k-winners layers with different k_inference_factor: {sorted(factors)}")
    return factors.pop() if factors else None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--task", choices=sorted(INPUTS), default="mnist",
                   help="the run's task: mnist (mnist_noise.py) or fsdd (speech_noise.py)")
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
    args = p.parse_args(argv)
    if args.name and len(args.networks) > 1:
        p.error("--name needs exactly one network in --networks")

    import keras

    from keras_sparse import models
    from keras_sparse.export import to_tflite

    os.makedirs(args.out, exist_ok=True)
    for network in args.networks:
        sources = [os.path.join(args.run_dir, f"{network}_seed{seed}") for seed in args.seeds]
        name = args.name or f"{args.task}_{network}"
        keras_path = os.path.join(args.out, f"{name}.keras")
        members = [_load_for_inference(os.path.join(src, "model.keras"), args.task) for src in sources]
        if args.k_inference_factor is not None:
            members = [models.with_k_inference_factor(m, args.k_inference_factor) for m in members]
        model = members[0] if len(members) == 1 else models.ensemble(members, name=f"{name}_ensemble")
        model.save(keras_path)
        model = keras.models.load_model(keras_path)  # the numbers are the shipped file's
        accuracy, noisy = evaluate_saved(model, args.task, args.data_dir, args.noise_seed)
        to_tflite(model, os.path.join(args.out, f"{name}.tflite"), sparse_encoding=args.sparse_encoding)
        runs = []
        for src in sources:
            with open(os.path.join(src, "run.json")) as f:
                run = json.load(f)
            runs.append({k: run[k] for k in ("seed", "epochs", "train_samples", "first_epoch_batch",
                                             "batch_size", "lr", "lr_decay", "momentum",
                                             "weight_decay", "initializer", "train_seconds")
                         if k in run})
        info = {
            "network": network, "test_accuracy": accuracy, "noise_score": noisy["noise_score"],
            "noise_seed": args.noise_seed, "noise_levels": noisy["levels"],
            "noise_correct": noisy["correct"],
            "k_inference_factor": _k_inference_factor(model),
            "tflite_sparse_encoding": args.sparse_encoding,
            "training": runs[0] if len(runs) == 1 else runs,
            "input": INPUTS[args.task],
            "output": "10 logits" if len(runs) == 1 else
                      f"10 probabilities, the mean softmax of {len(runs)} members",
        }
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump(info, f, indent=2)
        print(f"{name}: accuracy {100 * accuracy:.2f}%, noise score {noisy['noise_score']:,}")


if __name__ == "__main__":
    main()
