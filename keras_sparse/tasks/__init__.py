"""The experiments as data: one `Task` per task, and the registry.

- `mnist`: MNIST (`keras_sparse.tasks.mnist`).
- `fsdd`, `gsc-v0.01`: spoken digits, FSDD and Speech Commands v0.01
  (`keras_sparse.tasks.speech`).

    task = keras_sparse.tasks.get("fsdd")
    splits = task.load(data_dir)                      # clean inputs and labels
    noisy = task.corrupt(splits["test"][0], 0.3, 0)   # the noise protocol at one level
    result = keras_sparse.noise.evaluate_noise(model, task, data_dir=data_dir)

A new experiment is one `Task` (a module here, added to `TASKS`) and its page in docs/.
"""

from keras_sparse.tasks._task import HYPER_PARAMETERS, Task, evaluate  # noqa: F401
from keras_sparse.tasks.mnist import MNIST
from keras_sparse.tasks.speech import FSDD, SPEECH_COMMANDS

TASKS = {task.name: task for task in (MNIST, FSDD, SPEECH_COMMANDS)}


def get(name):
    """The task named `name` (a key of `TASKS`); a `Task` is returned as it is."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise ValueError(f"`name` must be one of {sorted(TASKS)}. Received: name={name!r}")
    return TASKS[name]


def names():
    """The registered task names."""
    return tuple(TASKS)


def from_model_name(model_name):
    """The task of a shipped model named `<task>_<network>` (e.g. `fsdd_sparse_cnn2`)."""
    if not isinstance(model_name, str):
        raise ValueError(f"`model_name` must be a string '<task>_<network>'. Received: {model_name!r}")
    for name, task in TASKS.items():
        if model_name.startswith(name + "_"):
            return task
    raise ValueError(f"`model_name` must start with a task name {sorted(TASKS)} and '_'. "
                     f"Received: model_name={model_name!r}")
