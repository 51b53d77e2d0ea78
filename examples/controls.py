"""The paper's MNIST claims against fair controls (docs/controls.md).

Trains every chosen network of `keras_sparse.models.controls` (Sparse CNN-2,
Dense CNN-2, the equal-size dense twin, Dense CNN-2 with dropout / L2 / batch
norm / random shifts, Sparse CNN-2 with DropConnect, without boosting, with
WTA lifetime sparsity instead of boosting, with a straight-through gradient)
for every seed with the paper's MNIST protocol (`keras_sparse.experiment.run`:
each control with the hyper-parameters of the network it comes from), tests
it against the paper's noise after every epoch, and reports the last epoch
and the paper's selection side by side (`experiment_report.py`).

Examples:

    # reduced scale (what docs/controls.md reports): 3 epochs on 20,000 images,
    # the paper's batch 4 first epoch, tested on the first 2,000 test images
    python examples/controls.py --data-dir ../shared/datasets/mnist --seeds 0 1 2 \\
        --epochs 3 --train-samples 20000 --first-epoch-batch 4 --test-samples 2000 \\
        --no-export --out runs/controls

    # the paper's protocol (10-15 epochs on 60,000 images, batch 4 first epoch)
    python examples/controls.py --full --seeds 0 1 2 --out runs/controls_full

Writes `results.json`, `results.md` and `noise_curve.png` under `--out`, and
each run's model and `run.json` in its own folder. `--ship RUN_DIR` trains
nothing: it re-scores `--networks` (seed `--seeds`) of a finished run on the
whole test set and writes them into `--ship-to` as
`mnist_controls_<network>.keras`, `.tflite` and `.json`
(`keras_sparse.shipping.ship`).
"""

import argparse
import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import experiment_report  # noqa: E402  (beside this script; puts the checkout on the path if needed)
import mnist_noise  # noqa: E402
from keras_sparse import tasks  # noqa: E402
from keras_sparse.models import controls  # noqa: E402

TASK = dataclasses.replace(tasks.MNIST, name="mnist_controls", title="MNIST controls",
                           networks=controls.CONTROL_NETWORKS, builder=controls.build_control)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mnist_noise.add_scale_arguments(p)
    p.add_argument("--first-epoch-batch", type=int, default=None,
                   help="the first-epoch batch size of the networks trained as Sparse CNN-2 "
                        "(paper: 4; the dense ones keep 64)")
    p.add_argument("--ship", default=None, metavar="RUN_DIR",
                   help="ship --networks of this finished run instead of training")
    p.add_argument("--ship-to", default="saved_models", help="where --ship writes (default: saved_models)")
    experiment_report.add_run_arguments(p, TASK, tuple(TASK.networks), "controls_out")
    args = p.parse_args(argv)
    experiment_report.check_run_arguments(p, args)
    if args.first_epoch_batch is not None and args.first_epoch_batch < 1:
        p.error(f"--first-epoch-batch must be >= 1, got {args.first_epoch_batch}")
    if args.hidden_block is not None:
        p.error("--hidden-block does not apply: the controls keep the paper's hidden weights")
    return args


def train_one(network, seed, data, args):
    """Trains and evaluates one control (`keras_sparse.experiment.run`); returns its result dict."""
    from keras_sparse import experiment

    config = TASK.network(network)
    own_first_epoch = config["from_network"] == "sparse_cnn2"
    return experiment.run(
        TASK, network, seed, data, args.out, initializer=args.initializer,
        k_inference_factor=args.k_inference_factor,
        hyper_parameters=dict(epochs=mnist_noise.epochs(args),
                              first_epoch_batch=args.first_epoch_batch if own_first_epoch else None),
        per_epoch_eval=True, noise_seed=args.noise_seed, export=not args.no_export, verbose=args.verbose,
        fit_data=lambda batch_size, seed: mnist_noise.training_data(data.x_train, data.y_train, batch_size,
                                                                    config["shift"], seed),
        settings=dict(from_network=config["from_network"], augment_shift=config["shift"]))


def main(argv=None):
    args = parse_args(argv)
    if args.ship:
        from keras_sparse import shipping

        return shipping.ship(args.ship, TASK, args.networks, args.seeds, args.ship_to,
                             noise_seed=args.noise_seed, data_dir=args.data_dir)
    return experiment_report.run_all(args, argv, train_one, mnist_noise.prepare_data(TASK, args), TASK)


if __name__ == "__main__":
    main()
