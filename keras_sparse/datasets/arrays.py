"""NumPy arrays into `fit`, `evaluate` and `predict` as Keras feeds them,
without the TensorFlow backend's wait at the end of every pass.

On the TensorFlow backend Keras feeds arrays through a `tf.data` pipeline
whose `map` and `prefetch` are autotuned. The autotuner is a background
thread that sleeps in periods that double (10 ms, 20 ms, 40 ms, ...), and
destroying the pipeline's iterator, which Keras does when the next epoch or
the next call starts, waits until that thread wakes: a pass that lasted t
can be followed by a wait of up to t. Measured on TensorFlow 2.21 (2-core
CPU, `benchmarks/bench_input_pipeline.py`): Sparse CNN-2's 28-29 s MNIST
epochs each followed by a 12-13 s wait (every epoch then ends near 40.96 s,
a period boundary), a 1.6 s `predict` of the test set taking 2.6 s (2.56 s).
Which passes wait depends on thread timing.

`fit_inputs` and `predict_inputs` build Keras' own pipeline for the arrays
(the same batches in the same order, so training is bit-identical to
passing the arrays) with autotuning off, which removes the wait, and with
its number of batches declared, so progress bars and callbacks know it from
the first epoch. Other backends feed arrays without `tf.data`; there the
arrays are returned as they are.

One property of Keras' TensorFlow pipeline it keeps (being that pipeline):
after `keras.utils.set_random_seed`, every pass over the data repeats one
shuffled order, so `fit(shuffle=True)` draws the order once, not every
epoch (the JAX and PyTorch backends draw a new order every epoch).
"""

import keras
import numpy as np

from keras_sparse._validation import check_int


def fit_inputs(x, y=None, sample_weight=None, batch_size=32, shuffle=True):
    """Keyword arguments that feed arrays to `model.fit`:

        model.fit(**fit_inputs(x, y, batch_size=64), epochs=10)

    Args:
        x: the inputs: an array, or a list / dict of arrays (as `fit`'s `x`).
        y: the targets, or None.
        sample_weight: per-sample weights, or None.
        batch_size: samples per batch, an integer >= 1.
        shuffle: True (the samples shuffled, `fit`'s default; see the module
            note on seeds), False, or "batch" (the order within each batch),
            as `fit`'s `shuffle`.

    Returns:
        On the TensorFlow backend `{"x": dataset, "shuffle": False}` (the
        dataset shuffles itself), Keras' pipeline for the arrays with
        autotuning off; on other backends the arrays, `batch_size` and
        `shuffle` as given.
    """
    if not (isinstance(shuffle, bool) or (isinstance(shuffle, str) and shuffle == "batch")):
        raise ValueError(f"`shuffle` must be True, False or \"batch\". Received: shuffle={shuffle!r}")
    dataset = _dataset(x, y, sample_weight, batch_size, shuffle)
    if dataset is None:
        return dict(x=x, y=y, sample_weight=sample_weight, batch_size=batch_size, shuffle=shuffle)
    return dict(x=dataset, shuffle=False)


def predict_inputs(x, y=None, sample_weight=None, batch_size=32):
    """Keyword arguments that feed arrays, in order, to `model.predict` or
    `model.evaluate`:

        scores = model.predict(**predict_inputs(x, batch_size=512))
        loss = model.evaluate(**predict_inputs(x, y, batch_size=512))

    Args and returns as `fit_inputs`, without shuffling: on the TensorFlow
    backend `{"x": dataset}`, elsewhere the arrays and `batch_size`.
    """
    dataset = _dataset(x, y, sample_weight, batch_size, False)
    if dataset is None:
        given = dict(x=x, y=y, sample_weight=sample_weight, batch_size=batch_size)
        return {key: value for key, value in given.items() if value is not None}
    return dict(x=dataset)


def _dataset(x, y, sample_weight, batch_size, shuffle):
    """Keras' `tf.data` pipeline for the arrays with autotuning off and its
    batch count declared; None off the TensorFlow backend (or if this Keras
    lacks its array adapter)."""
    check_int("batch_size", batch_size, 1)
    _check_samples(x)
    adapter_class = _array_data_adapter() if keras.backend.backend() == "tensorflow" else None
    if adapter_class is None:
        return None
    import tensorflow as tf

    adapter = adapter_class(x, y, sample_weight=sample_weight, batch_size=batch_size, shuffle=shuffle)
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = adapter.get_tf_dataset().apply(tf.data.experimental.assert_cardinality(adapter.num_batches))
    return dataset.with_options(options)


def _check_samples(x):
    counts = {np.shape(leaf)[0] if np.ndim(leaf) else 0 for leaf in keras.tree.flatten(x)}
    if len(counts) != 1 or min(counts) < 1:
        raise ValueError(
            "`x` must be an array, or a list / dict of arrays, with the same number (>= 1) of samples "
            f"in each. Received: x with sample counts {sorted(counts)}"
        )


def _array_data_adapter():
    """Keras' array adapter (not public API): None where this Keras lacks it,
    and the arrays then go to `fit` as they are."""
    try:
        from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
    except ImportError:
        return None
    return ArrayDataAdapter
