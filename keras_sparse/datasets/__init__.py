"""The datasets of the paper's experiments, from a local copy (an argument or
an environment variable) or the usual download:

- `mnist`: MNIST as the paper's code sees it (`load_mnist`, `normalize`,
  `to_unit_interval`; `$KERAS_SPARSE_MNIST`).
- `fsdd`: the Free Spoken Digit Dataset at 16 kHz (`load_fsdd`;
  `$KERAS_SPARSE_FSDD`).
- `arrays`: `fit_inputs` and `predict_inputs`, NumPy arrays into `fit`,
  `evaluate` and `predict` as Keras feeds them, without the TensorFlow
  backend's wait at the end of every pass.
- `speech_commands`: Speech Commands v0.01's digits (`load_speech_commands_v001`;
  `$KERAS_SPARSE_SPEECH_COMMANDS`) and tensorflow-datasets' v0.02
  (`load_speech_commands_tfds`).

The audio loaders return float32 waveforms `(N, 16000)` in [-1, 1], int64
labels and the file paths.
"""

from keras_sparse.datasets.arrays import fit_inputs, predict_inputs  # noqa: F401
from keras_sparse.datasets.fsdd import FSDD_ENV_VAR, load_fsdd  # noqa: F401
from keras_sparse.datasets.mnist import (  # noqa: F401
    ENV_VAR, MNIST_ENV_VAR, MNIST_MEAN, MNIST_STD, load_mnist, normalize, to_unit_interval,
)
from keras_sparse.datasets.speech_commands import (  # noqa: F401
    DIGITS, SPEECH_COMMANDS_ENV_VAR, SPEECH_COMMANDS_V001_URL, load_speech_commands_tfds,
    load_speech_commands_v001,
)
