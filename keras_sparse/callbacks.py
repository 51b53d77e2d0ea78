"""Callbacks for k-winners layers: boost-strength decay and entropy logging."""

import keras

from keras_sparse import metrics
from keras_sparse.kwinners import _KWinnersBase


def kwinners_layers(model):
    """Every `KWinners` / `KWinners2d` layer in `model`, nested models included."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, _KWinnersBase)
    ]


class UpdateBoostStrength(keras.callbacks.Callback):
    """After every epoch, `boost_strength *= boost_strength_factor` in every
    k-winners layer of the model (the paper's per-epoch boost decay)."""

    def on_epoch_end(self, epoch, logs=None):
        for layer in kwinners_layers(self.model):
            layer.decay_boost_strength()


class DutyCycleEntropy(keras.callbacks.Callback):
    """Logs, after every epoch, each k-winners layer's duty-cycle entropy
    relative to its maximum, as `"<layer name>_entropy"`:

        binary_entropy(duty_cycles) / max_entropy(m, m * k / n)

    with `m` duty cycles (units, or channels for `KWinners2d`) and `k` winners
    among `n` competing units, so that `k / n` is each duty cycle's target.

    The values go into the epoch's `logs`, so `History` and a `TensorBoard`
    callback listed after this one record them.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for layer in kwinners_layers(self.model):
            m = layer.duty_cycles.shape[0]
            ratio = metrics.binary_entropy(layer.duty_cycles) / metrics.max_entropy(
                m, m * layer.k / layer.n
            )
            logs[f"{layer.name}_entropy"] = float(ratio)
