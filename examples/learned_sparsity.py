"""Learned sparsity on MNIST and FSDD: fixed random mask vs magnitude pruning vs SET vs RigL.

Trains, per seed (docs/learned_sparsity.md states the protocol and the results):

- Dense CNN-2 (`keras_sparse.models.mnist_dense_cnn2`), dense, and with its
  hidden layer (480 -> 1000) made learned (`keras_sparse.sparsify(model, s,
  layers=["hidden"])`): magnitude-pruned to 90% during training
  (`keras_sparse.callbacks.MagnitudePruning(0.9, ...)`), unstructured and in
  1x4 blocks (what TFLite runs block-sparse), or started at a random 90% mask
  that SET or RigL change;
- Sparse CNN-2 (`mnist_sparse_cnn2`, k-winners everywhere) with its hidden
  layer (1024 -> 700) at 70%, 90% or 95% sparsity: the fixed random mask (the
  paper's at 70%), the same mask learned by SET and by RigL, and magnitude
  pruning from dense (at 90% and 95% also in 1x4 blocks);
- the same without k-winners (`sparse_cnn2_relu`: Sparse CNN-2 with a ReLU in
  place of each k-winners layer, its hidden layer as above at 70%).

Protocol (the paper's, shortened): SGD at the network's learning rate and
momentum (Dense CNN-2: 0.01, 0.9; Sparse CNN-2: 0.02, 0), batch 64 (Sparse
CNN-2's first epoch at `--first-epoch-batch`, 16 here, 4 in the paper),
`lr * 0.8 ** epoch`, boost strength decay 0.85 per epoch, the first
`--train-samples` training images. Schedules, in optimizer steps of the whole
run (`T` steps): magnitude pruning from step `0.1 T` to `0.6 T`, every 50
steps, from 0 (cubic); SET and RigL every 100 steps until `0.75 T`, drop
fraction 0.3 (RigL's annealed by the cosine), RigL's dense gradient on 256
training images per update. Scores: clean accuracy on the 10,000 test images,
and the paper's noise score on the first `--noise-samples` test images (11
levels of the paper's noise, seed 0).

`--full` trains MNIST at the paper's full protocol instead, with the runner
of the shipped models (`keras_sparse.experiment.run`, as `examples/mnist_noise.py`):
Dense CNN-2 15 epochs, Sparse CNN-2 10 with the first at batch 4, all 60,000
training images unless `--epochs` / `--train-samples`, the schedules as above
over the run's `T` steps, the noise score on all 10,000 test images (maximum
110,000). `--task fsdd` (spoken digits, docs/speech.md) always runs so: the
same variants of the task's networks (hidden layer 1600 -> 1000 in both;
Sparse CNN-2's 60% sparse, so its fixed mask is `fixed_60`) at the task's
protocol (SGD with weight decay 0.01, Dense CNN-2 20 epochs at batch 64,
Sparse CNN-2 30 at batch 16, on the 2,700 training clips), the noise score on
the 300 test clips (maximum 3,300).

Usage:
    python examples/learned_sparsity.py --data-dir ../shared/datasets/mnist \\
        --seeds 0 1 2 --epochs 3 --train-samples 20000 --out runs/learned_sparsity
    python examples/learned_sparsity.py --data-dir ../shared/datasets/mnist --full \\
        --seeds 0 1 2 --variants dense_cnn2/magnitude_90 sparse_cnn2/rigl_70 --out runs/ls_mnist_full
    python examples/learned_sparsity.py --task fsdd --data-dir ../shared/datasets/fsdd \\
        --seeds 0 1 2 --variants dense_cnn2/dense sparse_cnn2/fixed_60 sparse_cnn2/rigl_60 --out runs/ls_fsdd

Writes every run to `runs.json` and the table to `summary.json` under
`--out`, and the first seed's models that `benchmarks/bench_pruned.py` times
(`SAVED`: Dense CNN-2 dense and pruned to 90% in 1x4 blocks, Sparse CNN-2
with its fixed mask and pruned to 90% in 1x4 blocks), on either task.
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

def _variants(paper_percent):
    """name -> (network, hidden layer, mask schedule). The hidden layer: None as
    the network builds it, else `sparsity` (and `block`) of a learned mask
    (`mask` "fixed": Sparse CNN-2's fixed mask at another sparsity).
    `paper_percent`: the sparsity of the task's Sparse CNN-2 hidden weights."""
    table = {
        "dense_cnn2/dense": ("dense_cnn2", None, None),
        "dense_cnn2/magnitude_90": ("dense_cnn2", dict(sparsity=0.0), "magnitude_0.9"),
        "dense_cnn2/magnitude_90_block1x4": ("dense_cnn2", dict(sparsity=0.0, block=(1, 4)), "magnitude_0.9"),
        "dense_cnn2/set_90": ("dense_cnn2", dict(sparsity=0.9), "set"),
        "dense_cnn2/rigl_90": ("dense_cnn2", dict(sparsity=0.9), "rigl"),
    }
    for network, percents in (("sparse_cnn2", (paper_percent, 90, 95)), ("sparse_cnn2_relu", (paper_percent,))):
        for percent in percents:
            sparsity = percent / 100
            table[f"{network}/fixed_{percent}"] = (
                network, None if percent == paper_percent else dict(sparsity=sparsity, mask="fixed"), None)
            table[f"{network}/magnitude_{percent}"] = (network, dict(sparsity=0.0), f"magnitude_{sparsity}")
            if network == "sparse_cnn2" and percent > paper_percent:  # in TFLite's block-sparse shape
                table[f"{network}/magnitude_{percent}_block1x4"] = (
                    network, dict(sparsity=0.0, block=(1, 4)), f"magnitude_{sparsity}")
            table[f"{network}/set_{percent}"] = (network, dict(sparsity=sparsity), "set")
            table[f"{network}/rigl_{percent}"] = (network, dict(sparsity=sparsity), "rigl")
    return table


PAPER_PERCENT = {"mnist": 70, "fsdd": 60}  # the sparsity of each task's Sparse CNN-2 hidden weights
TASK_VARIANTS = {task: _variants(percent) for task, percent in PAPER_PERCENT.items()}
VARIANTS = TASK_VARIANTS["mnist"]
# The first seed's models that benchmarks/bench_pruned.py times, by task and file name: Dense CNN-2 and
# Sparse CNN-2 (its paper's fixed mask), each against its hidden layer magnitude-pruned to 90% in 1x4 blocks.
SAVED = {task: {"dense_cnn2/dense": "dense.keras", "dense_cnn2/magnitude_90_block1x4": "pruned_block.keras",
                f"sparse_cnn2/fixed_{percent}": "sparse_fixed.keras",
                "sparse_cnn2/magnitude_90_block1x4": "sparse_pruned_block.keras"}
         for task, percent in PAPER_PERCENT.items()}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=tuple(TASK_VARIANTS), default="mnist")
    p.add_argument("--data-dir", default=None, help="the task's data: the folder holding mnist.npz, or FSDD's")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--full", action="store_true",
                   help="MNIST at the paper's full protocol (keras_sparse.experiment.run); FSDD always is")
    p.add_argument("--epochs", type=int, default=None,
                   help="MNIST: default 3 (--full: the network's); FSDD: default the task's")
    p.add_argument("--train-samples", type=int, default=None, help="MNIST: default 20,000 (--full: all); FSDD: all")
    p.add_argument("--noise-samples", type=int, default=None,
                   help="MNIST without --full only: default 2,000 (else all the test inputs)")
    p.add_argument("--first-epoch-batch", type=int, default=None,
                   help="MNIST without --full only: Sparse CNN-2's first-epoch batch size, default 16 "
                        "(the paper's, and --full's: 4; Dense CNN-2 always 64)")
    p.add_argument("--variants", nargs="+", default=None, choices=sorted(set().union(*TASK_VARIANTS.values())))
    p.add_argument("--out", default="runs/learned_sparsity")
    args = p.parse_args(argv)
    for name in ("epochs", "train_samples", "noise_samples", "first_epoch_batch"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    table = TASK_VARIANTS[args.task]
    wrong = [v for v in args.variants or () if v not in table]
    if wrong:
        p.error(f"--variants {wrong} are not variants of --task {args.task} (its Sparse CNN-2 is "
                f"{PAPER_PERCENT[args.task]}% sparse)")
    args.variants = args.variants or list(table)
    args.full = args.full or args.task != "mnist"
    if args.full:
        given = [f"--{name.replace('_', '-')}" for name in ("noise_samples", "first_epoch_batch")
                 if getattr(args, name) is not None]
        if given:
            p.error(f"{' and '.join(given)}: the full protocol's are fixed (the network's first-epoch "
                    "batch, every test input)")
    else:
        args.epochs, args.train_samples = args.epochs or 3, args.train_samples or 20000
        args.noise_samples, args.first_epoch_batch = args.noise_samples or 2000, args.first_epoch_batch or 16
    return args


def build(network, hidden, seed):
    """The MNIST network (`sparse_cnn2_relu`: Sparse CNN-2 with ReLU for
    k-winners), its hidden layer changed as `hidden` says."""
    import keras

    from keras_sparse import models

    keras.utils.set_random_seed(seed)
    return with_hidden(models.build_mnist(network.removesuffix("_relu")), network, hidden, seed)


def with_hidden(model, network, hidden, seed):
    """`model` (the task's `network` without the `_relu` suffix) with ReLU for
    k-winners when `network` ends in `_relu`, its hidden layer as `hidden`
    says; freshly initialized from `seed` when changed."""
    import keras

    import keras_sparse as ks

    if hidden is None and not network.endswith("_relu"):
        return model
    if network == "dense_cnn2":
        return ks.sparsify(model, hidden["sparsity"], layers=["hidden"], seed=seed, block=hidden.get("block"))
    # Sparse CNN-2 from its config: ReLU for k-winners, the hidden SparseDense's mask learned (or fixed
    # at another sparsity).
    config = model.get_config()
    for layer in config["layers"]:
        if network.endswith("_relu") and layer["module"] == "keras_sparse.kwinners":
            relu = keras.saving.serialize_keras_object(keras.layers.ReLU(name=layer["name"]))
            layer.update(relu, build_config=None)
            for node in layer["inbound_nodes"]:
                node["kwargs"].pop("mask", None)  # a k-winners call argument
        if layer["config"]["name"] == "hidden" and hidden is not None:
            layer["config"].update(mask=hidden.get("mask", "learned"), sparsity=hidden["sparsity"],
                                   block=hidden.get("block"))
    keras.utils.set_random_seed(seed)
    return keras.Model.from_config(config)


def schedule(kind, total_steps, x, y, seed):
    import keras_sparse as ks

    if kind is None:
        return []
    if kind.startswith("magnitude"):
        begin = int(0.1 * total_steps)
        return [ks.callbacks.MagnitudePruning(float(kind.split("_")[1]), begin_step=begin,
                                              end_step=max(begin + 1, int(0.6 * total_steps)), frequency=50)]
    end = max(1, int(0.75 * total_steps))  # at least 1 (a test run of a few steps)
    if kind == "set":
        return [ks.callbacks.SET(100, 0.3, end_step=end, seed=seed)]
    return [ks.callbacks.RigL(100, 0.3, end_step=end, data=(x[:256], y[:256]), batch_size=256)]


def first_epoch_batch(params):
    """The first epoch's batch size: `first_epoch_batch` when set, else `batch_size`."""
    return params["first_epoch_batch"] or params["batch_size"]


def run_steps(params, samples):
    """A run's optimizer steps: the first epoch at `first_epoch_batch(params)`,
    the others at `batch_size`."""
    return -(-samples // first_epoch_batch(params)) + (params["epochs"] - 1) * -(-samples // params["batch_size"])


def train_mnist(variant, seed, data, args):
    import keras
    import numpy as np

    from keras_sparse import callbacks, datasets, models, noise

    network, hidden, kind = VARIANTS[variant]
    x_train, y_train, x_test, y_test, noise01 = data
    cfg = models.MNIST_NETWORKS[network.removesuffix("_relu")]
    model = build(network, hidden, seed)
    model.compile(optimizer=keras.optimizers.SGD(cfg["lr"], momentum=cfg["momentum"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    first_batch = args.first_epoch_batch if network.startswith("sparse") else models.MNIST_BATCH_SIZE
    steps = run_steps(dict(first_epoch_batch=first_batch, batch_size=models.MNIST_BATCH_SIZE,
                           epochs=args.epochs), len(x_train))
    cbs = [keras.callbacks.LearningRateScheduler(lambda epoch: cfg["lr"] * models.MNIST_LR_DECAY**epoch),
           callbacks.UpdateBoostStrength()] + schedule(kind, steps, x_train, y_train, seed)
    start = time.time()
    keras.utils.set_random_seed(seed)
    # Epoch 1 at the first-epoch batch size, the rest at 64 (the callbacks carry on).
    model.fit(**datasets.fit_inputs(x_train, y_train, batch_size=first_batch), epochs=1, callbacks=cbs, verbose=0)
    if args.epochs > 1:
        model.fit(**datasets.fit_inputs(x_train, y_train, batch_size=models.MNIST_BATCH_SIZE),
                  epochs=args.epochs, initial_epoch=1, callbacks=cbs, verbose=0)
    train_seconds = time.time() - start
    accuracy = float(model.evaluate(**datasets.predict_inputs(x_test, y_test, batch_size=512), verbose=0)[1])
    scored = noise.evaluate_noise(model, noise01, y_test[:len(noise01)], seed=0)
    result = dict(
        variant=variant, seed=seed, epochs=args.epochs, train_samples=len(x_train), steps=steps,
        first_epoch_batch=first_batch,
        test_accuracy=accuracy, noise_score=int(scored["noise_score"]), noise_samples=len(noise01),
        **hidden_counts(model), train_seconds=round(train_seconds, 1),
    )
    print(json.dumps(result), flush=True)
    save_first_seed(model, "mnist", variant, seed, args)
    return result


def train_task(variant, seed, data, args):
    """One run at the task's full protocol (`keras_sparse.experiment.run`:
    SGD, `lr * decay ** epoch`, the network's batch sizes and epochs unless
    `--epochs`), the noise score on every test input."""
    from keras_sparse import experiment, tasks

    network, hidden, kind = TASK_VARIANTS[args.task][variant]
    task = tasks.get(args.task)
    params = task.hyper_parameters(network.removesuffix("_relu"), epochs=args.epochs)
    steps = run_steps(params, len(data.y_train))
    trained = []

    def adapt(model):
        trained.append(with_hidden(model, network, hidden, seed))
        return trained[0], schedule(kind, steps, data.x_train, data.y_train, seed), None

    run = experiment.run(task, network.removesuffix("_relu"), seed, data,
                         os.path.join(args.out, "runs", variant.replace("/", "_")), hyper_parameters=params,
                         per_epoch_eval=False, export=False, verbose=0, adapt=adapt)
    result = dict(variant=variant, seed=seed, epochs=params["epochs"], train_samples=len(data.y_train), steps=steps,
                  first_epoch_batch=first_epoch_batch(params),
                  test_accuracy=run["test_accuracy"], noise_score=run["noise_score"],
                  noise_samples=len(data.y_test), **hidden_counts(trained[0]),
                  train_seconds=round(run["train_seconds"], 1))
    print(json.dumps(result), flush=True)
    save_first_seed(trained[0], args.task, variant, seed, args)
    return result


def save_first_seed(model, task, variant, seed, args):
    """Saves the first seed's model of a variant that benchmarks/bench_pruned.py times."""
    if seed == args.seeds[0] and variant in SAVED[task]:
        model.save(os.path.join(args.out, SAVED[task][variant]))


def hidden_counts(model):
    """The hidden layer's density (its mask's, for a learned mask) and non-zero weights."""
    import keras
    import numpy as np

    layer = model.get_layer("hidden")
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    kept = layer.kernel_mask if hasattr(layer, "kernel_mask") else kernel != 0
    return dict(hidden_density=float(kept.mean()), hidden_nonzero=int(np.count_nonzero(kernel)))


def summarize(results, variants):
    import numpy as np

    table = {}
    for variant in variants:
        runs = [r for r in results if r["variant"] == variant]
        if not runs:
            continue
        acc = np.array([100 * r["test_accuracy"] for r in runs])
        score = np.array([r["noise_score"] for r in runs])
        table[variant] = dict(seeds=[r["seed"] for r in runs], accuracy_mean=float(acc.mean()),
                              accuracy_sd=float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                              noise_mean=float(score.mean()),
                              noise_sd=float(score.std(ddof=1)) if len(score) > 1 else 0.0,
                              hidden_density=runs[0]["hidden_density"])
    return table


def main(argv=None):
    args = parse_args(argv)
    from keras_sparse import datasets, experiment

    os.makedirs(args.out, exist_ok=True)
    if not args.full:
        (x_train, y_train), (x_test, y_test) = datasets.load_mnist(args.data_dir)
        test01 = datasets.to_unit_interval(x_test)
        data = (datasets.normalize(datasets.to_unit_interval(x_train[:args.train_samples])),
                y_train[:args.train_samples], datasets.normalize(test01), y_test, test01[:args.noise_samples])
        train, train_samples = train_mnist, len(data[0])
    else:
        data = experiment.prepare(args.task, args.data_dir, args.train_samples)
        train, train_samples = train_task, len(data.y_train)
    epochs = args.epochs or "the task's"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; task {args.task}; seeds {args.seeds}; "
          f"{epochs} epochs on {train_samples} training inputs", flush=True)
    results = []
    for seed in args.seeds:
        for variant in args.variants:
            results.append(train(variant, seed, data, args))
            with open(os.path.join(args.out, "runs.json"), "w") as f:
                json.dump(results, f, indent=1)
    table = summarize(results, TASK_VARIANTS[args.task])
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(table, f, indent=1)
    print("| variant | seeds | hidden density | accuracy % (mean ± sd) | noise score (mean ± sd) |")
    print("|---|---|---|---|---|")
    for variant, row in table.items():
        print(f"| {variant} | {len(row['seeds'])} | {row['hidden_density']:.3f} | "
              f"{row['accuracy_mean']:.2f} ± {row['accuracy_sd']:.2f} | "
              f"{row['noise_mean']:,.0f} ± {row['noise_sd']:,.0f} |")


if __name__ == "__main__":
    main()
