"""Run in a fresh process (logical devices must be set before TF starts):
one epoch under MirroredStrategy over 2 logical CPUs and on one device, same
initial weights and global batches, RigL updating a learned mask every 2
steps; prints the k-winners state and each replica's mask and kernel as JSON."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import keras_sparse as ks  # noqa: E402


def build():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(6, 3)(inputs)
    x = ks.KWinners2D(0.1, boost_strength=1.5, duty_cycle_period=50, name="kw2d")(x)
    x = ks.layers.SparseDense(20, 0.5, seed=3, mask="learned", name="sparse")(keras.layers.Flatten()(x))
    x = ks.KWinners(0.2, boost_strength=1.5, duty_cycle_period=50, name="kw")(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def state(model, strategy):
    out = {}
    for name in ("kw2d", "kw"):
        layer = model.get_layer(name)
        replicas = []
        for variable in (layer.duty_cycles, layer.learning_iterations):
            values = strategy.experimental_local_results(variable.value)
            replicas.append([np.asarray(v).tolist() for v in values])
        out[name] = {"duty_cycles": replicas[0], "learning_iterations": replicas[1]}
    layer = model.get_layer("sparse")
    out["sparse"] = {name: [np.asarray(v).astype(float).tolist() for v in
                            strategy.experimental_local_results(variable.value)]
                     for name, variable in (("mask", layer.learned_mask), ("kernel", layer.kernel))}
    return out


rng = np.random.default_rng(0)
x = rng.normal(size=(256, 8, 8, 1)).astype(np.float32)
y = rng.integers(0, 3, 256)
results = {}
for label, strategy in [
    ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
    ("single", tf.distribute.get_strategy()),
]:
    with strategy.scope():
        model = build()
    rigl = ks.callbacks.RigL(2, 0.5, end_step=8, data=(x[:64], y[:64]))
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=[rigl])
    results[label] = state(model, strategy)
    results[label + "_replicas"] = strategy.num_replicas_in_sync
json.dump(results, sys.stdout)
