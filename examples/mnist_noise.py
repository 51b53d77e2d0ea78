"""Reproduce the paper's MNIST table: accuracy and noise robustness of dense vs
sparse CNNs (Ahmad & Scheinkman, 2019, Table 1 / Fig. 5B).

For every chosen network and seed this script

1. builds the network (`keras_sparse.models`),
2. trains it with the paper's protocol: SGD (momentum per network), batch 64,
   `lr_epoch = lr * 0.8 ** epoch`, the first epoch at batch 4 for the sparse
   networks, and k-winners boost decay after every epoch
   (`keras_sparse.callbacks.UpdateBoostStrength`),
3. measures clean test accuracy and the noise score (`keras_sparse.noise`:
   11 levels, `int(784 * p)` pixels set to `0.1307 + 2 * 0.3081`) after the
   last epoch, or with `--per-epoch-eval` after every epoch, reporting the
   paper's selection (per seed, the epoch of highest test accuracy) beside
   the last epoch (`experiment_report.py`),
4. exports `model.keras`, a SavedModel and `model.tflite`,

then writes `results.json`, `results.md` (paper vs measured, mean ± sd over
seeds) and `noise_curve.png` (accuracy vs noise level, one line per network).

Examples:

    # minutes on a laptop CPU: 1 epoch on 10,000 images
    python examples/mnist_noise.py --data-dir ../shared/datasets/mnist

    # the paper's protocol (all 60,000 images, 10-15 epochs), 3 seeds
    python examples/mnist_noise.py --full --seeds 0 1 2 --out runs/full

MNIST comes from `--data-dir`, else `$KERAS_SPARSE_MNIST`, else
`keras.datasets.mnist` (download). The task itself (data, noise protocol,
networks, hyper-parameters) is `keras_sparse.tasks.MNIST`; training and
evaluation are `keras_sparse.experiment.run`; this script adds its flags.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import experiment_report  # noqa: E402  (beside this script; puts the checkout on the path if needed)
from keras_sparse.tasks import MNIST as TASK  # noqa: E402


def add_scale_arguments(p):
    """The MNIST scripts' data and scale flags (`mnist_noise.py`, `controls.py`):
    `--data-dir`, `--full`, `--epochs`, `--train-samples`; read back by
    `epochs` and `prepare_data`."""
    p.add_argument("--data-dir", default=None,
                   help="directory with mnist.npz (default: $KERAS_SPARSE_MNIST, else download)")
    p.add_argument("--full", action="store_true",
                   help="the paper's protocol: all 60,000 training images, paper epochs")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per network (default: 1, or the paper's with --full)")
    p.add_argument("--train-samples", type=int, default=None,
                   help="use the first N training images (default: 10000, or 60000 with --full)")


def epochs(args):
    """`--epochs`, else None (each network's own) with `--full`, else 1."""
    return args.epochs or (None if args.full else 1)


def prepare_data(task, args):
    """The task's `experiment.Data` at the scale of the flags: the first
    `--train-samples` images (10,000, or 60,000 with `--full`)."""
    from keras_sparse import experiment

    return experiment.prepare(task, args.data_dir, args.train_samples or (60000 if args.full else 10000),
                              args.test_samples, args.noise_seed)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scale_arguments(p)
    p.add_argument("--first-epoch-batch", type=int, default=None,
                   help="override the first-epoch batch size of every network (paper: 4 sparse, 64 dense)")
    p.add_argument("--momentum", type=float, default=None,
                   help="override the SGD momentum of every network (paper: 0.9 dense, 0 sparse)")
    p.add_argument("--rezero", choices=("every-step", "every-epoch"), default="every-step",
                   help="when the sparse hidden layer's masked weights are zeroed: after every "
                        "optimizer step (default, keras_sparse's constraint), or only at the end of "
                        "every epoch, as Numenta's public PyTorch MNIST example does (the masked "
                        "weights then train within an epoch)")
    p.add_argument("--augment-shift", type=int, default=0,
                   help="train on images shifted by up to this many pixels in x and y "
                        "(random per image and epoch; default 0: no augmentation, the paper's protocol)")
    p.add_argument("--per-epoch-eval", action="store_true",
                   help="evaluate test accuracy and noise score after every epoch and report the "
                        "paper's selection (per seed, the epoch of highest test accuracy) beside "
                        "the last epoch (~15 s more per epoch on 2 CPU cores)")
    experiment_report.add_run_arguments(p, TASK, ("dense_cnn2", "sparse_cnn2"), "mnist_noise_out")
    args = p.parse_args(argv)
    experiment_report.check_run_arguments(p, args)
    if not 0 <= args.augment_shift <= 8:
        p.error(f"--augment-shift must be in [0, 8] pixels, got {args.augment_shift}")
    if args.first_epoch_batch is not None and args.first_epoch_batch < 1:
        p.error(f"--first-epoch-batch must be >= 1, got {args.first_epoch_batch}")
    if args.momentum is not None and not 0 <= args.momentum < 1:
        p.error(f"--momentum must be in [0, 1), got {args.momentum}")
    return args


def _rezero_at_epoch_end(model):
    """`--rezero every-epoch`: lifts the sparse layers' per-step constraint and
    returns (a callback zeroing the masked weights after every epoch, and so
    before evaluation; a function putting the constraint back after training)."""
    import keras

    from keras_sparse.constraints import sparse_weight_layers

    sparse = sparse_weight_layers(model)
    for layer in sparse:
        layer.kernel.constraint = None

    def rezero(epoch, logs=None):
        for layer in sparse:
            layer.kernel.assign(layer.kernel_constraint(layer.kernel))

    def restore():
        for layer in sparse:
            layer.kernel.constraint = layer.kernel_constraint

    return keras.callbacks.LambdaCallback(on_epoch_end=rezero), restore


def training_data(x, y, batch_size, shift, seed):
    """`fit` arguments for one training phase: the arrays themselves, or with
    `shift` a tf.data pipeline that shuffles and translates every image by a
    random whole number of pixels in [-shift, shift] (the border is filled with
    the normalized background value)."""
    if not shift:
        return dict(x=x, y=y, batch_size=batch_size, shuffle=True)
    import keras
    import tensorflow as tf

    from keras_sparse import datasets

    translate = keras.layers.RandomTranslation(
        shift / 28, shift / 28, fill_mode="constant", interpolation="nearest",
        fill_value=(0.0 - datasets.MNIST_MEAN) / datasets.MNIST_STD, seed=seed,
    )
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(lambda images, labels: (translate(images, training=True), labels),
             num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    return dict(x=ds, shuffle=False)  # the pipeline shuffles; fit would only warn


def train_one(network, seed, data, args):
    """Trains and evaluates one network (`keras_sparse.experiment.run`); returns its result dict."""
    from keras_sparse import experiment

    adapt = None
    if args.rezero == "every-epoch":
        def adapt(model):
            callback, restore = _rezero_at_epoch_end(model)
            return model, [callback], restore

    return experiment.run(
        TASK, network, seed, data, args.out, initializer=args.initializer,
        k_inference_factor=args.k_inference_factor, hidden_block=args.hidden_block,
        hyper_parameters=dict(epochs=epochs(args),
                              first_epoch_batch=args.first_epoch_batch, momentum=args.momentum),
        per_epoch_eval=args.per_epoch_eval, noise_seed=args.noise_seed, export=not args.no_export,
        verbose=args.verbose, adapt=adapt,
        fit_data=lambda batch_size, seed: training_data(data.x_train, data.y_train, batch_size,
                                                         args.augment_shift, seed),
        settings=dict(rezero=args.rezero, augment_shift=args.augment_shift))


def main(argv=None):
    args = parse_args(argv)
    return experiment_report.run_all(args, argv, train_one, prepare_data(TASK, args), TASK)


if __name__ == "__main__":
    main()
