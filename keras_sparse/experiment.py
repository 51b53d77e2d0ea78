"""One experiment run for any task (`keras_sparse.tasks`): train a network with
the task's hyper-parameters, noise-test it, select the epoch, save the model
and its `run.json`. `examples/mnist_noise.py` and `examples/speech_noise.py`
are this runner with their task and flags.

Training (`Task.hyper_parameters`): SGD with the network's `lr` and
`momentum`, `lr_epoch = lr * lr_decay ** epoch`, k-winners boost decay after
every epoch (`callbacks.UpdateBoostStrength`), `batch_size` per step; with a
`first_epoch_batch`, epoch 1 is its own `fit` at that batch size and the
rest a second `fit` at `batch_size`.

Evaluation: the task's noisy test sets (`Task.noisy_sets`, made once, so
every run and epoch sees the same noise) after every epoch (`per_epoch_eval`)
or once after training; the selection rules of `keras_sparse.noise.select_epoch`.
"""

import dataclasses
import json
import os
import time

import numpy as np

from keras_sparse import noise, tasks
from keras_sparse._validation import check_bool, check_int
from keras_sparse.datasets.arrays import fit_inputs


@dataclasses.dataclass(frozen=True, eq=False)
class Data:
    """An experiment's data, prepared once for all its runs (`prepare`).

    Fields:
        x_train: the training inputs as the network sees them (`Task.network_inputs`).
        y_train: their labels.
        train_inputs: the same inputs clean, as the noise protocol takes them
            (for augmentation that works on them, e.g. on waveforms).
        y_test: the test labels.
        noisy_sets: `(level, network inputs)` for every noise level.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    train_inputs: np.ndarray
    y_test: np.ndarray
    noisy_sets: list


def prepare(task, data_dir=None, train_samples=None, test_samples=None, noise_seed=0):
    """The task's `Data`: its splits cut to `train_samples` / `test_samples`
    (`Task.load`), and the noisy test sets with `noise_seed`."""
    task = tasks.get(task)
    check_int("noise_seed", noise_seed, 0)
    splits = task.load(data_dir, train_samples, test_samples)
    train_inputs, y_train = splits["train"]
    x_test, y_test = splits["test"]
    noisy_sets = list(task.noisy_sets(x_test, seed=noise_seed, features=task.features))
    return Data(task.network_inputs(train_inputs), y_train, train_inputs, y_test, noisy_sets)


def selected_results(records, per_epoch):
    """`{"last": ..., "paper": ...}` from a run's per-epoch `EpochNoiseScore`
    records; only `last` when the run was evaluated once, after training."""
    rules = noise.SELECTION_RULES if per_epoch else ("last",)
    selected = {}
    for rule in rules:
        record = noise.select_epoch(records, rule)
        selected[rule] = {
            "epoch": record.get("epoch"),
            "test_accuracy": noise.clean_accuracy(record),
            "noise_score": record["noise_score"],
            "noise_accuracy": record["accuracy"],
        }
    return selected


def _array_fit_data(data):
    return lambda batch_size, seed: fit_inputs(data.x_train, data.y_train, batch_size=batch_size)


def _fit(model, fit_data, params, seed, callbacks, verbose):
    """Trains `model` (module docstring); returns the first epoch's seconds
    when it is its own `fit`, else None. A first epoch stopped early (e.g. by
    `TerminateOnNaN`) ends the run: the second `fit` would reset Keras'
    `stop_training` and train on."""
    if params["first_epoch_batch"] is None:
        model.fit(**fit_data(params["batch_size"], seed), epochs=params["epochs"], callbacks=callbacks,
                  verbose=verbose)
        return None
    start = time.time()
    model.fit(**fit_data(params["first_epoch_batch"], seed), epochs=1, callbacks=callbacks, verbose=verbose)
    first_epoch = time.time() - start
    if params["epochs"] > 1 and not model.stop_training:
        model.fit(**fit_data(params["batch_size"], seed + 1), epochs=params["epochs"], initial_epoch=1,
                  callbacks=callbacks, verbose=verbose)
    return first_epoch


def run(task, network, seed, data, out, *, initializer="pytorch", k_inference_factor=None,
        hidden_block=None, hyper_parameters=None, per_epoch_eval=True, noise_seed=0, export=True,
        verbose=1, adapt=None, fit_data=None, settings=None):
    """Builds, trains and noise-tests `network` of `task` with `seed`; writes
    `<out>/<network>_seed<seed>/` (`model.keras`, the shipped model of
    `Task.shipped_model`; with `export`, `saved_model/` and `model.tflite`;
    `run.json`) and returns the run's dict (`run.json`'s content).

    Args:
        task: a `keras_sparse.tasks.Task` or its name.
        network: one of the task's networks.
        seed: training seed, >= 0 (`keras.utils.set_random_seed`).
        data: the task's `Data` (`prepare`).
        out: the experiment's output folder.
        initializer: the builders' weight initialization.
        k_inference_factor: None (the network's own default: 1.5, the
            paper's, for the paper's networks, 1.0 for the speed networks)
            or > 0; the JSON records the value the model has.
        hidden_block: None or `(units, inputs)` blocks of the sparse
            networks' hidden weights (ignored for dense networks).
        hyper_parameters: overrides of `Task.hyper_parameters` (None values ignored).
        per_epoch_eval: noise-test after every epoch (both selection rules)
            or once after training (the last epoch only).
        noise_seed: recorded in the JSON (the noisy sets are `data`'s).
        export: also write the SavedModel and `.tflite`.
        verbose: Keras `fit` verbosity, 0-2.
        adapt: None or `model -> (model, callbacks, after_fit)`, called
            before `compile` (e.g. a wrapper, extra callbacks, a function
            to call after training, or None).
        fit_data: None (the arrays of `data`, shuffled) or
            `(batch_size, seed) -> fit keyword arguments` for each `fit`.
        settings: extra entries for the JSON (the script's own flags).
    """
    import keras

    from keras_sparse import callbacks
    from keras_sparse.export import to_tflite
    from keras_sparse.shipping import common_k_inference_factor

    task = tasks.get(task)
    check_int("seed", seed, 0)
    check_int("verbose", verbose, 0, 2)
    check_bool("per_epoch_eval", per_epoch_eval)
    check_bool("export", export)
    for name, hook in (("adapt", adapt), ("fit_data", fit_data)):
        if hook is not None and not callable(hook):
            raise ValueError(f"`{name}` must be None or a function. Received: {name}={hook!r}")
    if not isinstance(data, Data):
        raise ValueError(f"`data` must be a keras_sparse.experiment.Data (`prepare`). Received: {data!r}")
    params = task.hyper_parameters(network, **(hyper_parameters or {}))
    sparse = not network.startswith("dense")
    hidden_block = tuple(hidden_block) if hidden_block and sparse else None
    settings = dict(settings or {})

    keras.utils.set_random_seed(seed)
    model = task.build(network, initializer, k_inference_factor, hidden_block, params["weight_decay"])
    k_inference_factor = common_k_inference_factor(model)
    model, extra_callbacks, after_fit = adapt(model) if adapt is not None else (model, [], None)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=params["lr"], momentum=params["momentum"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    lr, decay = params["lr"], params["lr_decay"]
    scorer = callbacks.EpochNoiseScore(data.noisy_sets, data.y_test)
    cbs = [keras.callbacks.LearningRateScheduler(lambda epoch: lr * decay**epoch),
           callbacks.UpdateBoostStrength(), keras.callbacks.TerminateOnNaN(), *extra_callbacks]
    if per_epoch_eval:
        cbs.append(scorer)
    title = task.network(network)["title"]
    print(f"\n=== {title} seed {seed}: {params['epochs']} epoch(s) on {len(data.y_train)} inputs, "
          + ", ".join(f"{key} {value}" for key, value in params.items() if key != "epochs")
          + f", init {initializer}"
          + (f", k_inference_factor {k_inference_factor}" if k_inference_factor is not None else "")
          + "".join(f", {key} {value}" for key, value in settings.items()), flush=True)
    start = time.time()
    first_epoch_seconds = _fit(model, fit_data or _array_fit_data(data), params, seed, cbs, verbose)
    train_time = time.time() - start  # with the per-epoch evaluation
    epochs_trained = model.history.epoch[-1] + 1  # the last `fit`'s History; an epoch stopped early counts
    stopped_early = bool(model.stop_training)
    if after_fit is not None:
        after_fit()

    start = time.time()
    if not per_epoch_eval:  # once, after training
        scorer.set_model(model)
        scorer.on_epoch_end(epochs_trained - 1)
    selected = selected_results(scorer.records, per_epoch_eval)
    eval_time = time.time() - start
    last = selected["last"]
    paper = selected.get("paper")
    print(f"{title} seed {seed}: last epoch {100 * last['test_accuracy']:.2f}% / noise score "
          f"{last['noise_score']:,} (train {train_time:.0f} s"
          + (f", stopped early in epoch {epochs_trained})" if stopped_early else ")")
          + (f"; paper's selection: epoch {paper['epoch']}, {100 * paper['test_accuracy']:.2f}% / "
             f"{paper['noise_score']:,}" if paper else ""), flush=True)

    run_dir = os.path.join(out, f"{network}_seed{seed}")
    os.makedirs(run_dir, exist_ok=True)
    shipped = task.shipped_model(model)
    shipped.save(os.path.join(run_dir, "model.keras"))
    if export:
        shipped.export(os.path.join(run_dir, "saved_model"), format="tf_saved_model", verbose=False)
        to_tflite(shipped, os.path.join(run_dir, "model.tflite"))
    result = {
        "network": network, "title": title, "seed": seed, "task": task.name, **settings,
        "epochs": params["epochs"], "epochs_trained": epochs_trained, "stopped_early": stopped_early,
        "train_samples": int(len(data.y_train)),
        "test_samples": int(len(data.y_test)),
        **{key: value for key, value in params.items() if key != "epochs"},
        "initializer": initializer, "k_inference_factor": k_inference_factor,
        "hidden_block": hidden_block,
        "test_accuracy": last["test_accuracy"], "noise_score": last["noise_score"],
        "noise_seed": noise_seed, "noise_levels": scorer.records[-1]["levels"],
        "noise_accuracy": last["noise_accuracy"], "selected": selected,
        "epoch_records": scorer.records if per_epoch_eval else [],
        "train_seconds": train_time, "first_epoch_seconds": first_epoch_seconds, "eval_seconds": eval_time,
    }
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result
