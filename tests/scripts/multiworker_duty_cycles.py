"""One worker of a two-process MultiWorkerMirroredStrategy run on 127.0.0.1
(or, with `single`, the same on one device): training-mode forward passes of
a KWinners model over the same global batches (the dataset is sharded by data
across the workers); prints the k-winners state as JSON.

    python multiworker_duty_cycles.py single
    python multiworker_duty_cycles.py <worker index> <port 0> <port 1>
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if sys.argv[1] != "single":
    index, ports = int(sys.argv[1]), sys.argv[2:4]
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
        "task": {"type": "worker", "index": index},
    })
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras  # noqa: E402
import keras_sparse as ks  # noqa: E402

if sys.argv[1] == "single":
    strategy = tf.distribute.get_strategy()
else:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()

rng = np.random.default_rng(0)
x = rng.normal(size=(128, 12)).astype(np.float32)
y = rng.integers(0, 3, 128)
dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)  # global batches of 32
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
dataset = dataset.with_options(options)

with strategy.scope():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((12,))
    h = ks.KWinners(0.25, boost_strength=1.5, duty_cycle_period=50, name="kw")(keras.layers.Dense(16)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(h))
# Keras 3's `fit` does not run under MultiWorkerMirroredStrategy
# (keras-team/keras#20585: "Attempt to convert a value (PerReplica...)"), so
# the training-mode forward passes that update the duty cycles run in a
# custom loop; the weights stay fixed, so every batch is the same on one device.
forward = tf.function(lambda batch: strategy.run(lambda x: model(x, training=True), args=(batch,)))
for _ in range(2):
    for batch, _labels in strategy.experimental_distribute_dataset(dataset):
        forward(batch)
layer = model.get_layer("kw")
json.dump({"replicas": strategy.num_replicas_in_sync,
           "duty_cycles": np.asarray(layer.duty_cycles.value).tolist(),
           "learning_iterations": int(np.asarray(layer.learning_iterations.value))}, sys.stdout)
