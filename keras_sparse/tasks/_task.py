"""`Task`: one experiment's data, inputs, noise protocol, networks and training,
and the noise evaluation every task shares.

The noise evaluation of a task (docs/mnist.md, docs/speech.md): for every
level `levels[i]` of the clean test inputs `x`,

    noisy_i = task.prepare(task.corrupt(x, levels[i], SeedSequence([seed, i])))
    correct_i = count(argmax(model(features(noisy_i))) == label)

(`features` only when given: a network on features rather than the shipped
model's inputs), and the noise score is the sum of `correct_i`
(`keras_sparse.noise.score_levels`).
"""

import dataclasses
import functools
from collections.abc import Callable, Mapping

import numpy as np

from keras_sparse import noise
from keras_sparse._validation import check_equal_lengths, check_float, check_int

# The training hyper-parameters a task resolves for each network (`Task.hyper_parameters`).
HYPER_PARAMETERS = ("lr", "lr_decay", "momentum", "batch_size", "first_epoch_batch", "epochs",
                    "weight_decay")
SUBSAMPLE_RULES = ("first", "random")


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """One experiment, as data (the registry is `keras_sparse.tasks`).

    Fields:
        name: the registry key; shipped models are named `<name>_<network>`.
        title: the task in tables and plot titles.
        loader: `data_dir -> {"train": (inputs, labels), "test": (inputs, labels)}`,
            clean inputs as the noise protocol takes them (MNIST: float32
            pixels in [0, 1]; audio: float32 16 kHz waveforms in [-1, 1]);
            `data_dir=None` reads `data_env_var`, else downloads.
        data_env_var: the environment variable naming a local copy.
        input_name: the inputs' name in error messages (`images01`, `waveforms`).
        input_shape: one input of the shipped model (after `prepare`).
        input_description: the shipped model's input in words (its JSON's `input`).
        prepare: clean or noisy inputs -> the shipped model's inputs
            (MNIST: `(x - 0.1307) / 0.3081`; audio: the waveforms themselves).
        corrupt: `(inputs, level, rng) -> noisy copy`, the noise protocol at one
            level; `rng` a seed, `numpy.random.SeedSequence` or `Generator`.
        noise_description: what a level means (the noise plot's x label).
        networks: network name -> hyper-parameters and paper numbers
            (`keras_sparse.models.MNIST_NETWORKS`, `SPEECH_NETWORKS`).
        builder: `(network, initializer, k_inference_factor, hidden_block,
            weight_decay) -> Keras model` taking `prepare`'s output, or
            `features`' output when the task has features.
        training: hyper-parameters common to the task's networks (the
            networks' own override them; `HYPER_PARAMETERS`).
        levels: the noise levels (default the paper's 11).
        features: None, or the front end from the shipped model's inputs to
            the network's (audio: log-mel spectrograms), computed outside
            the network in training.
        with_features: None, or `network -> model` putting the front end
            inside (`keras_sparse.models.waveform_model`): what is shipped.
        subsample: how `--train-samples N` picks: the `"first"` N, or N drawn
            `"random"`ly (seed 0) and kept in order.
    """

    name: str
    title: str
    loader: Callable
    data_env_var: str
    input_name: str
    input_shape: tuple
    input_description: str
    prepare: Callable
    corrupt: Callable
    noise_description: str
    networks: Mapping
    builder: Callable
    training: Mapping
    levels: tuple = noise.NOISE_LEVELS
    features: Callable = None
    with_features: Callable = None
    subsample: str = "first"

    def __post_init__(self):
        if self.subsample not in SUBSAMPLE_RULES:
            raise ValueError(f"`subsample` must be one of {SUBSAMPLE_RULES}. "
                             f"Received: subsample={self.subsample!r}")
        if (self.features is None) != (self.with_features is None):
            raise ValueError("`features` and `with_features` must be given together (or neither).")
        unknown = set(self.training) - set(HYPER_PARAMETERS)
        if unknown:
            raise ValueError(f"`training` keys must be in {HYPER_PARAMETERS}. Received: {sorted(unknown)}")

    def __repr__(self):
        return f"Task({self.name!r})"

    # ------------------------------------------------------------- data

    def load(self, data_dir=None, train_samples=None, test_samples=None):
        """`{"train": (inputs, labels), "test": (inputs, labels)}` from the loader,
        each split cut to `train_samples` / `test_samples` (None: all) by the
        task's `subsample` rule. The loader runs once per `data_dir`."""
        for name, value in (("train_samples", train_samples), ("test_samples", test_samples)):
            if value is not None:
                check_int(name, value, 1)
        splits = _load(self, None if data_dir is None else str(data_dir))
        return {"train": self._subsample(splits["train"], train_samples),
                "test": self._subsample(splits["test"], test_samples)}

    def _subsample(self, split, n):
        inputs, labels = split
        if n is None or n >= len(labels):
            return inputs, labels
        if self.subsample == "first":
            return inputs[:n], labels[:n]
        keep = np.sort(np.random.default_rng(0).choice(len(labels), n, replace=False))
        return inputs[keep], labels[keep]

    def network_inputs(self, inputs):
        """What the network trains on: `features(prepare(inputs))` (or `prepare(inputs)`)."""
        prepared = self.prepare(inputs)
        return prepared if self.features is None else self.features(prepared)

    def noisy_sets(self, inputs, levels=None, seed=0, features=None):
        """Yields `(level, noisy inputs)` for every level (default the task's):
        `prepare(corrupt(inputs, level, SeedSequence([seed, i])))`, passed
        through `features` when given (e.g. `task.features`)."""
        check_int("seed", seed, 0)
        levels = noise.check_levels(self.levels if levels is None else levels)
        if features is not None and not callable(features):
            raise ValueError("`features` must be None or a function of the inputs. "
                             f"Received: features={features!r}")
        for i, level in enumerate(levels):
            noisy = self.prepare(self.corrupt(inputs, level, noise._level_seed(seed, i)))
            yield level, noisy if features is None else np.asarray(features(noisy))

    # --------------------------------------------------------- networks

    def network(self, network):
        """The configuration of `network` (a key of `networks`)."""
        if network not in self.networks:
            raise ValueError(f"`network` must be one of {sorted(self.networks)} for task "
                             f"{self.name!r}. Received: network={network!r}")
        return self.networks[network]

    def hyper_parameters(self, network, **overrides):
        """`network`'s training hyper-parameters (`HYPER_PARAMETERS`): the
        task's `training`, then the network's own, then `overrides` that are
        not None. `first_epoch_batch` None: every epoch at `batch_size`."""
        config = self.network(network)
        unknown = set(overrides) - set(HYPER_PARAMETERS)
        if unknown:
            raise ValueError(f"`overrides` must be hyper-parameters {HYPER_PARAMETERS}. "
                             f"Received: {sorted(unknown)}")
        params = dict.fromkeys(HYPER_PARAMETERS)
        params.update(self.training)
        params.update({key: config[key] for key in HYPER_PARAMETERS if key in config})
        params.update({key: value for key, value in overrides.items() if value is not None})
        for key in ("batch_size", "epochs"):
            check_int(key, params[key], 1)
        if params["first_epoch_batch"] is not None:
            check_int("first_epoch_batch", params["first_epoch_batch"], 1)
        check_float("lr", params["lr"], 0, None, low_open=True)
        check_float("lr_decay", params["lr_decay"], 0, 1)
        check_float("momentum", params["momentum"], 0, 1, high_open=True)
        check_float("weight_decay", params["weight_decay"], 0)
        return params

    def build(self, network, initializer="pytorch", k_inference_factor=None, hidden_block=None,
              weight_decay=None):
        """A fresh `network` (`builder`); `None` arguments take the builder's defaults."""
        self.network(network)
        options = dict(initializer=initializer, k_inference_factor=k_inference_factor,
                       hidden_block=hidden_block, weight_decay=weight_decay)
        return self.builder(network, **{key: value for key, value in options.items() if value is not None})

    def shipped_model(self, network, name=None):
        """The model that takes the task's inputs (`input_shape`): `network`
        behind the front end when the task has features, else `network`."""
        return network if self.with_features is None else self.with_features(network, name=name)


@functools.lru_cache(maxsize=4)
def _load(task, data_dir):
    """The loader's splits, read once per (task, data_dir): a process evaluates
    several models (the `data_dir=None` case reads the environment then)."""
    return task.loader(data_dir)


def evaluate(model, task, inputs, labels, levels=None, seed=0, batch_size=512, features=None):
    """The task's noise evaluation (module docstring) of `model` on the clean
    test `inputs` and `labels`: `score_levels`' dict plus `seed`."""
    labels = noise.check_labels(labels)
    count = np.shape(check_equal_lengths(task.input_name, inputs))[0]
    if count != labels.shape[0]:
        raise ValueError(f"`labels` must have one entry per input: {count} {task.input_name}, "
                         f"received labels of shape {labels.shape}")
    levels = noise.check_levels(task.levels if levels is None else levels)
    noisy = task.noisy_sets(inputs, levels, seed, features)
    return dict(noise.score_levels(model, noisy, labels, batch_size), seed=int(seed))
