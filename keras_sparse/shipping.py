"""Shipping trained networks (`saved_models/`): a run's models reloaded,
re-evaluated on their task's real test set, and written with their numbers.

`ship(run_dir, task, ...)` reads `RUN_DIR/<network>_seed<seed>/model.keras`
(a `keras_sparse.experiment` run; several seeds make an ensemble,
`keras_sparse.models.ensemble`, the mean of the members' softmax) and writes

    <out>/<name>.keras    the Keras model (input: the task's `input_description`;
                          10 logits, or 10 probabilities for an ensemble)
    <out>/<name>.tflite   the same model for LiteRT
    <out>/<name>.json     test accuracy, noise score, noise seed, per-level
                          correct answers, the input and the training runs' metadata

with `<name> = <task>_<network>` unless given. The JSON's numbers are those
of the reloaded file, so `tests/test_saved_models.py` can assert them exactly.
`reexport_tflite(name)` rewrites a shipped `.tflite` with this release's
exporter (the `.keras` and its numbers stay). For the int8 files
(`examples/ship_int8.py`): `int8_network(model)` splits a
shipped model into the network an int8 file holds and its float front end,
and `micro_vs_litert(path, inputs)` compares an int8 file's outputs on the
two runtimes.
"""

import json
import os

import numpy as np

from keras_sparse import noise, tasks
from keras_sparse._validation import check_bool, check_float, check_int
from keras_sparse.datasets import predict_inputs

# The training hyper-parameters a shipped JSON copies from each run.
RUN_KEYS = ("seed", "epochs", "train_samples", "first_epoch_batch", "batch_size", "lr", "lr_decay",
            "momentum", "weight_decay", "initializer", "train_seconds")


def test_inputs(task, data_dir=None):
    """The task's clean test set as the shipped models take it (`Task.prepare`:
    normalized MNIST images, waveforms) and its labels."""
    task = tasks.get(task)
    inputs, labels = task.load(data_dir)["test"]
    return task.prepare(inputs), labels


def calibration_inputs(task, data_dir=None, samples=500):
    """The first `samples` training inputs of the task as the shipped models
    take them (`Task.prepare`): the int8 exports' representative data."""
    task = tasks.get(task)
    check_int("samples", samples, 1)
    return task.prepare(task.load(data_dir)["train"][0][:samples])


def evaluate_saved(model, task="mnist", data_dir=None, noise_seed=0, test_samples=None,
                   levels=None, features=None):
    """(test accuracy, noise result dict) of `model` on the task's test set
    (the first `test_samples` of it if given) at the task's noise levels or
    `levels` (`keras_sparse.noise.evaluate_noise`); `features` maps the noisy
    inputs to `model`'s (a model behind the task's front end). The test
    accuracy is the level 0.0, the clean test set."""
    task = tasks.get(task)
    if test_samples is not None:
        check_int("test_samples", test_samples, 1)
    inputs, labels = task.load(data_dir)["test"]
    noisy = noise.evaluate_noise(model, task, inputs[:test_samples], labels[:test_samples], levels,
                                 seed=noise_seed, batch_size=512, features=features)
    return noise.clean_accuracy(noisy), noisy


def load_for_inference(path, task):
    """The model at `path` without optimizer state. A model behind the task's
    front end (a speech run's raw-audio model) is rebuilt around its network
    (`Task.shipped_model`), which leaves the nested model's SGD momentum behind."""
    import keras

    task = tasks.get(task)
    model = keras.models.load_model(path, compile=False)
    return model if task.with_features is None else task.shipped_model(model.layers[-1], name=model.name)


def common_k_inference_factor(model):
    """The k-winners layers' common `k_inference_factor` (None without k-winners)."""
    from keras_sparse.kwinners import kwinners_layers

    factors = {layer.k_inference_factor for layer in kwinners_layers(model)}
    if len(factors) > 1:
        raise ValueError(f"`model` has k-winners layers with different k_inference_factor: {sorted(factors)}")
    return factors.pop() if factors else None


def ship(run_dir, task="mnist", networks=("dense_cnn2", "sparse_cnn2"), seeds=(0,), out="saved_models",
         k_inference_factor=None, noise_seed=0, data_dir=None, sparse_encoding=False, name=None,
         test_samples=None):
    """Ships every network of `networks` from `run_dir` (module docstring) and
    returns the JSON dicts written.

    Args:
        run_dir: a run's output folder (`<network>_seed<seed>/model.keras` and `run.json`).
        task: the run's `keras_sparse.tasks.Task` or its name.
        networks: network names of the task.
        seeds: one training seed, or several for an ensemble.
        out: the folder to write into.
        k_inference_factor: None (as trained), or > 0: every k-winners
            layer's inference density re-set (`models.with_k_inference_factor`).
        noise_seed: the noise evaluation's seed.
        data_dir: the task's data (None: its environment variable or download).
        sparse_encoding: store mostly-zero `.tflite` kernels in TFLite's sparse encoding.
        name: the shipped name (one network only); default `<task>_<network>`.
        test_samples: None (the whole test set, what `saved_models/` holds) or
            score on the first `test_samples` test inputs only (a quick
            check; the JSON then records `test_samples`).
    """
    import keras

    from keras_sparse import models
    from keras_sparse.export import to_tflite

    task = tasks.get(task)
    networks, seeds = list(networks), list(seeds)
    if not networks:
        raise ValueError(f"`networks` must name at least one network. Received: networks={networks!r}")
    for network in networks:
        task.network(network)
    if not seeds:
        raise ValueError(f"`seeds` must hold at least one seed. Received: seeds={seeds!r}")
    for seed in seeds:
        check_int("seeds[i]", seed, 0)
    if k_inference_factor is not None:
        check_float("k_inference_factor", k_inference_factor, 0, None, low_open=True)
    check_int("noise_seed", noise_seed, 0)
    check_bool("sparse_encoding", sparse_encoding)
    if test_samples is not None:
        check_int("test_samples", test_samples, 1)
    if name is not None and (not isinstance(name, str) or not name or len(networks) > 1):
        raise ValueError(f"`name` must be None or a non-empty string with exactly one network. "
                         f"Received: name={name!r}, networks={networks!r}")
    os.makedirs(out, exist_ok=True)
    infos = []
    for network in networks:
        sources = [os.path.join(run_dir, f"{network}_seed{seed}") for seed in seeds]
        shipped = name or f"{task.name}_{network}"
        keras_path = os.path.join(out, f"{shipped}.keras")
        members = [load_for_inference(os.path.join(src, "model.keras"), task) for src in sources]
        if k_inference_factor is not None:
            members = [models.with_k_inference_factor(m, k_inference_factor) for m in members]
        model = members[0] if len(members) == 1 else models.ensemble(members, name=f"{shipped}_ensemble")
        model.save(keras_path)
        model = keras.models.load_model(keras_path)  # the numbers are the shipped file's
        accuracy, noisy = evaluate_saved(model, task, data_dir, noise_seed, test_samples)
        to_tflite(model, os.path.join(out, f"{shipped}.tflite"), sparse_encoding=sparse_encoding)
        runs = []
        for src in sources:
            with open(os.path.join(src, "run.json")) as f:
                run = json.load(f)
            runs.append({key: run[key] for key in RUN_KEYS if key in run})
        info = {
            "network": network, "test_accuracy": accuracy, "noise_score": noisy["noise_score"],
            "noise_seed": noise_seed, "noise_levels": noisy["levels"], "noise_correct": noisy["correct"],
            "k_inference_factor": common_k_inference_factor(model),
            "tflite_sparse_encoding": sparse_encoding,
            "training": runs[0] if len(runs) == 1 else runs,
            **({} if test_samples is None else {"test_samples": test_samples}),
            "input": task.input_description,
            "output": "10 logits" if len(runs) == 1 else
                      f"10 probabilities, the mean softmax of {len(runs)} members",
        }
        with open(os.path.join(out, f"{shipped}.json"), "w") as f:
            json.dump(info, f, indent=2)
        print(f"{shipped}: accuracy {100 * accuracy:.2f}%, noise score {noisy['noise_score']:,}")
        infos.append(info)
    return infos


def reexport_tflite(name, saved="saved_models", data_dir=None):
    """Rewrites `<saved>/<name>.tflite` from `<saved>/<name>.keras` with this
    release's exporter (a file shipped by an earlier release keeps its slower
    k-winners kernels until then; the winners are the same) and records in
    `<name>.json`, as `tflite_vs_keras`, on how many of the task's clean test
    inputs the file's argmax equals the Keras model's. Returns that record.
    """
    import keras

    from keras_sparse.export import TFLiteModel, tflite_op_names, to_tflite

    if not isinstance(name, str) or not all(os.path.isfile(os.path.join(saved, f"{name}{suffix}"))
                                            for suffix in (".keras", ".json")):
        raise ValueError(f"`name` must be a shipped model with a .keras and .json in {saved!r}. Received: {name!r}")
    task = tasks.from_model_name(name)
    json_path = os.path.join(saved, f"{name}.json")
    with open(json_path) as f:
        info = json.load(f)
    model = keras.models.load_model(os.path.join(saved, f"{name}.keras"))
    path = os.path.join(saved, f"{name}.tflite")
    to_tflite(model, path, sparse_encoding=info.get("tflite_sparse_encoding", False))
    inputs, _ = test_inputs(task, data_dir)
    lite = TFLiteModel(path).predict(inputs).argmax(1)
    expected = model.predict(**predict_inputs(inputs, batch_size=512), verbose=0).argmax(1)
    info["tflite_vs_keras"] = {"samples": len(inputs), "argmax_equal": int(np.sum(lite == expected)),
                               "tflite_ops": tflite_op_names(path)}
    with open(json_path, "w") as f:
        json.dump(info, f, indent=2)
    return info["tflite_vs_keras"]


def micro_vs_litert(path, inputs):
    """How TFLite Micro's outputs of the int8 file `path` compare with LiteRT's
    on `inputs` (float, as the model takes them): the fraction of inputs with
    identical int8 outputs, the largest difference in output codes and the
    argmax agreement."""
    from keras_sparse.export import TFLiteModel

    litert = TFLiteModel(path).predict_raw(inputs).astype(int)
    micro = TFLiteModel(path, runtime="micro").predict_raw(inputs).astype(int)
    return {
        "samples": len(inputs),
        "identical_outputs": float(np.mean((micro == litert).all(1))),
        "max_code_difference": int(np.abs(micro - litert).max()),
        "argmax_agreement": float(np.mean(micro.argmax(1) == litert.argmax(1))),
    }


def int8_network(model):
    """`(network, features)`: what the int8 file holds and the float function
    from the model's inputs to the network's (None: the model itself)."""
    import keras

    from keras_sparse.audio import LogMelSpectrogram

    front_ends = [layer for layer in model.layers if isinstance(layer, LogMelSpectrogram)]
    if not front_ends:
        return model, None
    (front_end,), (network,) = front_ends, [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return network, lambda waveforms: np.concatenate([
        keras.ops.convert_to_numpy(front_end(waveforms[i:i + 256])) for i in range(0, len(waveforms), 256)])
