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
`keras.datasets.mnist` (download).
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:  # run from a checkout without `pip install -e .`
    import keras_sparse  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import experiment_report  # noqa: E402  (examples/experiment_report.py, beside this script)

NETWORK_NAMES = ("dense_cnn1", "dense_cnn2", "sparse_cnn1", "sparse_cnn2", "sparse_cnn2_wide", "sparse_cnn2_small")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None,
                   help="directory with mnist.npz (default: $KERAS_SPARSE_MNIST, else download)")
    p.add_argument("--networks", nargs="+", default=["dense_cnn2", "sparse_cnn2"],
                   choices=NETWORK_NAMES, help="networks to train (default: dense_cnn2 sparse_cnn2)")
    p.add_argument("--full", action="store_true",
                   help="the paper's protocol: all 60,000 training images, paper epochs")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per network (default: 1, or the paper's with --full)")
    p.add_argument("--train-samples", type=int, default=None,
                   help="use the first N training images (default: 10000, or 60000 with --full)")
    p.add_argument("--test-samples", type=int, default=None,
                   help="evaluate on the first N test images (default: all 10,000)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    p.add_argument("--noise-seed", type=int, default=0, help="seed of the noisy test sets (default: 0)")
    p.add_argument("--initializer", choices=("pytorch", "keras", "pytorch_dense_fan_in"),
                   default="pytorch",
                   help="weight initialization (default: pytorch, as the paper's code; "
                        "see keras_sparse.models)")
    p.add_argument("--hidden-block", type=int, nargs=2, default=None, metavar=("UNITS", "INPUTS"),
                   help="keep the sparse networks' hidden weights in whole blocks, e.g. 1 4 "
                        "(TFLite's float32 block-sparse kernel) or 1 16 (int8); default: none")
    p.add_argument("--k-inference-factor", type=float, default=None,
                   help="winners at inference = k * this, in every k-winners layer "
                        "(paper: 1.5; see examples/k_inference.py)")
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
    p.add_argument("--out", default="mnist_noise_out", help="output directory (default: mnist_noise_out)")
    p.add_argument("--no-export", action="store_true", help="skip SavedModel/.tflite export")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras fit verbosity")
    args = p.parse_args(argv)
    if not 0 <= args.augment_shift <= 8:
        p.error(f"--augment-shift must be in [0, 8] pixels, got {args.augment_shift}")
    for name in ("epochs", "train_samples", "test_samples", "first_epoch_batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.momentum is not None and not 0 <= args.momentum < 1:
        p.error(f"--momentum must be in [0, 1), got {args.momentum}")
    if args.k_inference_factor is not None and not args.k_inference_factor > 0:
        p.error(f"--k-inference-factor must be > 0, got {args.k_inference_factor}")
    if args.noise_seed < 0 or any(s < 0 for s in args.seeds):
        p.error("--seeds and --noise-seed must be non-negative integers")
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


def _training_data(x, y, batch_size, shift, seed):
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
    """Builds, trains and evaluates one network; returns its result dict."""
    import keras

    from keras_sparse import callbacks, models
    from keras_sparse.export import to_tflite

    cfg = models.MNIST_NETWORKS[network]
    epochs = args.epochs or (cfg["epochs"] if args.full else 1)
    first_batch = args.first_epoch_batch or cfg["first_epoch_batch"]
    momentum = cfg["momentum"] if args.momentum is None else args.momentum
    x_train, y_train, y_test, noisy_sets = data

    keras.utils.set_random_seed(seed)
    k_inference_factor = args.k_inference_factor or models.K_INFERENCE_FACTOR
    hidden_block = tuple(args.hidden_block) if args.hidden_block and network.startswith("sparse") else None
    model = models.build_mnist(network, initializer=args.initializer,
                               k_inference_factor=k_inference_factor, hidden_block=hidden_block)
    rezero_callbacks, restore_constraints = [], None
    if args.rezero == "every-epoch":
        rezero_callback, restore_constraints = _rezero_at_epoch_end(model)
        rezero_callbacks = [rezero_callback]
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=cfg["lr"], momentum=momentum),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    base_lr = cfg["lr"]
    cbs = [
        # lr_epoch = lr * 0.8 ** epoch (the reference's StepLR(step_size=1, gamma=0.8))
        keras.callbacks.LearningRateScheduler(lambda epoch: base_lr * models.MNIST_LR_DECAY**epoch),
        callbacks.UpdateBoostStrength(),
        keras.callbacks.TerminateOnNaN(),
    ] + rezero_callbacks
    scorer = callbacks.EpochNoiseScore(noisy_sets, y_test)
    if args.per_epoch_eval:
        cbs.append(scorer)
    print(f"\n=== {cfg['title']} seed {seed}: {epochs} epoch(s) on {len(x_train)} images, "
          f"first-epoch batch {first_batch}, lr {base_lr}, momentum {momentum}, "
          f"init {args.initializer}"
          + (f", k_inference_factor {k_inference_factor}, rezero {args.rezero}"
             if network.startswith("sparse") else "")
          + (f", augment shift ±{args.augment_shift} px" if args.augment_shift else ""),
          flush=True)
    start = time.time()
    epoch_times = []
    # Epoch 1 at the network's first-epoch batch size, the rest at 64.
    t0 = time.time()
    model.fit(**_training_data(x_train, y_train, first_batch, args.augment_shift, seed),
              epochs=1, callbacks=cbs, verbose=args.verbose)
    epoch_times.append(time.time() - t0)
    if epochs > 1:
        t0 = time.time()
        model.fit(**_training_data(x_train, y_train, models.MNIST_BATCH_SIZE,
                                   args.augment_shift, seed + 1),
                  epochs=epochs, initial_epoch=1, callbacks=cbs, verbose=args.verbose)
        epoch_times.append(time.time() - t0)
    train_time = time.time() - start
    if restore_constraints is not None:
        restore_constraints()

    t0 = time.time()
    if not args.per_epoch_eval:  # once, after training
        scorer.set_model(model)
        scorer.on_epoch_end(epochs - 1)
    selected = experiment_report.selected_results(scorer.records, args.per_epoch_eval)
    last = selected["last"]
    eval_time = time.time() - t0
    print(f"{cfg['title']} seed {seed}: test accuracy {100 * last['test_accuracy']:.2f}%, "
          f"noise score {last['noise_score']:,} (train {train_time:.0f} s)"
          + (" | paper's selection: epoch {epoch}, {acc:.2f}%, {score:,}".format(
              epoch=selected["paper"]["epoch"], acc=100 * selected["paper"]["test_accuracy"],
              score=selected["paper"]["noise_score"]) if "paper" in selected else ""),
          flush=True)

    run_dir = os.path.join(args.out, f"{network}_seed{seed}")
    os.makedirs(run_dir, exist_ok=True)
    model.save(os.path.join(run_dir, "model.keras"))
    if not args.no_export:
        model.export(os.path.join(run_dir, "saved_model"), format="tf_saved_model", verbose=False)
        to_tflite(model, os.path.join(run_dir, "model.tflite"))
    result = {
        "network": network, "title": cfg["title"], "seed": seed, "epochs": epochs,
        "train_samples": int(len(x_train)), "test_samples": int(len(y_test)),
        "first_epoch_batch": first_batch, "initializer": args.initializer, "momentum": momentum,
        "k_inference_factor": k_inference_factor if network.startswith("sparse") else None,
        "hidden_block": hidden_block, "rezero": args.rezero, "augment_shift": args.augment_shift,
        "test_accuracy": last["test_accuracy"], "noise_score": last["noise_score"],
        "noise_seed": args.noise_seed, "noise_levels": scorer.records[-1]["levels"],
        "noise_accuracy": last["noise_accuracy"], "selected": selected,
        "epoch_records": scorer.records if args.per_epoch_eval else [],
        "train_seconds": train_time,
        "first_epoch_seconds": epoch_times[0], "eval_seconds": eval_time,
    }
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


def main(argv=None):
    args = parse_args(argv)
    from keras_sparse import datasets, models, noise

    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(args.data_dir)
    n_train = args.train_samples or (60000 if args.full else 10000)
    x_train, y_train = x_train[:n_train], y_train[:n_train]
    if args.test_samples:
        x_test, y_test = x_test[: args.test_samples], y_test[: args.test_samples]
    # The noisy test sets, made once: every run and epoch sees the same noise.
    noisy_sets = list(noise.noisy_test_sets(datasets.to_unit_interval(x_test), seed=args.noise_seed))
    data = (datasets.normalize(datasets.to_unit_interval(x_train)), y_train, y_test, noisy_sets)

    return experiment_report.run_all(args, argv, train_one, data, models.MNIST_NETWORKS,
                                     "MNIST accuracy vs noise: dense vs sparse",
                                     "noise level (fraction of pixels set to white)")


if __name__ == "__main__":
    main()
