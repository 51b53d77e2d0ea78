"""The report of the experiment scripts (`mnist_noise.py`, `speech_noise.py`),
whose runs are `keras_sparse.experiment.run`: all runs of an experiment,
results tables and the noise plot.

Selection rules (`keras_sparse.noise.select_epoch`), reported side by side:

- `last`: the model after its last epoch (honest; what the scripts save).
- `paper`: per seed, the epoch with the highest clean test accuracy, as the
  paper's code chose every row it reported (the test set picks the epoch).
"""

import json
import os
import sys

import numpy as np

try:  # the scripts run from a checkout without `pip install -e .`
    import keras_sparse  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def add_run_arguments(parser, task, default_networks, default_out):
    """The flags of `keras_sparse.experiment.run` that every experiment script
    takes (with `check_run_arguments`); a script adds `--data-dir`, `--epochs`,
    `--train-samples` and its own."""
    names = tuple(task.networks)
    pick = "the first N" if task.subsample == "first" else "N drawn at random (seed 0) from the"
    parser.add_argument("--networks", nargs="+", default=list(default_networks), choices=names,
                        help=f"networks to train (default: {' '.join(default_networks)})")
    parser.add_argument("--test-samples", type=int, default=None,
                        help=f"evaluate on {pick} test inputs (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    parser.add_argument("--noise-seed", type=int, default=0, help="seed of the noisy test sets (default: 0)")
    parser.add_argument("--initializer", choices=("pytorch", "keras", "pytorch_dense_fan_in"),
                        default="pytorch", help="weight initialization (default: pytorch, as the paper's "
                                                "code; see keras_sparse.models)")
    parser.add_argument("--hidden-block", type=int, nargs=2, default=None, metavar=("UNITS", "INPUTS"),
                        help="keep the sparse networks' hidden weights in whole blocks, e.g. 1 4 "
                             "(TFLite's float32 block-sparse kernel) or 1 16 (int8); default: none")
    parser.add_argument("--k-inference-factor", type=float, default=None,
                        help="winners at inference = k * this, in every k-winners layer (default: the "
                             "network's own, the paper's 1.5 or the speed networks' 1.0; see "
                             "examples/k_inference.py)")
    parser.add_argument("--out", default=default_out, help=f"output directory (default: {default_out})")
    parser.add_argument("--no-export", action="store_true", help="skip SavedModel/.tflite export")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras fit verbosity")


def check_run_arguments(parser, args):
    """`parser.error` for a value of the shared flags out of range."""
    for name in ("epochs", "train_samples", "test_samples"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.k_inference_factor is not None and not args.k_inference_factor > 0:
        parser.error(f"--k-inference-factor must be > 0, got {args.k_inference_factor}")
    if args.noise_seed < 0 or any(s < 0 for s in args.seeds):
        parser.error("--seeds and --noise-seed must be non-negative integers")


def mean_sd(values):
    """(mean, sample sd); sd is None for a single value (JSON null, not NaN)."""
    values = np.asarray(values, float)
    sd = float(values.std(ddof=1)) if len(values) > 1 else None
    return float(values.mean()), sd


def summarize(runs, networks):
    """Per network (in the order of `networks`, a name -> config dict with
    `title`, `paper_accuracy`, `paper_noise_score`): mean ± sd over seeds of
    accuracy and noise score under each selection rule the runs carry."""
    rows = []
    for network, cfg in networks.items():
        mine = [r for r in runs if r["network"] == network]
        if not mine:
            continue
        row = {
            "network": network, "title": cfg["title"], "seeds": [r["seed"] for r in mine],
            "epochs": mine[0]["epochs"], "train_samples": mine[0]["train_samples"],
            "test_samples": mine[0]["test_samples"],
            "paper_accuracy": cfg["paper_accuracy"], "paper_noise_score": cfg["paper_noise_score"],
            "train_seconds_mean": float(np.mean([r["train_seconds"] for r in mine])),
            "noise_levels": mine[0]["noise_levels"],
        }
        for rule in ("last", "paper"):
            if not all(rule in r["selected"] for r in mine):
                continue
            picks = [r["selected"][rule] for r in mine]
            acc, acc_sd = mean_sd([100 * p["test_accuracy"] for p in picks])
            score, score_sd = mean_sd([p["noise_score"] for p in picks])
            row[rule] = {
                "accuracy_mean": acc, "accuracy_sd": acc_sd,
                "noise_score_mean": score, "noise_score_sd": score_sd,
                "epochs": [p["epoch"] for p in picks],
                "noise_accuracy_mean": np.mean([p["noise_accuracy"] for p in picks], 0).tolist(),
            }
        rows.append(row)
    return rows


def _pm(mean, sd, fmt):
    return fmt.format(mean) + ("" if sd is None else " ± " + fmt.format(sd))


def markdown_table(rows):
    """Paper vs measured, both selection rules side by side (— where a run
    was not evaluated after every epoch)."""
    lines = [
        "| network | seeds | epochs | train samples | paper accuracy % | accuracy %, last epoch "
        "| accuracy %, paper's selection | paper noise score | noise score, last epoch "
        "| noise score, paper's selection | wall time / run (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        paper_acc = paper_noise = "—"
        if r["paper_accuracy"] is not None:
            paper_acc = "{:.2f} ± {:.2f}".format(*r["paper_accuracy"])
            paper_noise = "{:,} ± {:,}".format(*r["paper_noise_score"])
        cells = {}
        for rule in ("last", "paper"):
            s = r.get(rule)
            cells[rule] = ("—", "—") if s is None else (
                _pm(s["accuracy_mean"], s["accuracy_sd"], "{:.2f}"),
                _pm(s["noise_score_mean"], s["noise_score_sd"], "{:,.0f}"),
            )
        lines.append(
            f"| {r['title']} | {len(r['seeds'])} | {r['epochs']} | {r['train_samples']} "
            f"| {paper_acc} | {cells['last'][0]} | {cells['paper'][0]} "
            f"| {paper_noise} | {cells['last'][1]} | {cells['paper'][1]} "
            f"| {r['train_seconds_mean']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot_noise_curves(rows, path, title, xlabel):
    """Accuracy vs noise level, one line per network (last epoch, mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    many = len(rows) > 4  # the legend beside the axes, not over the lines
    fig, ax = plt.subplots(figsize=(10, 4) if many else (6, 4))
    for r in rows:
        last = r["last"]
        style = "--" if r["network"].startswith("dense") else "-"
        ax.plot(r["noise_levels"], [100 * a for a in last["noise_accuracy_mean"]], style,
                marker="o", label=f"{r['title']} (score {last['noise_score_mean']:,.0f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if many:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(out, command, runs, networks, plot_title, plot_xlabel):
    """Writes `results.json`, `results.md` and `noise_curve.png` into `out`
    (called after every run, so partial results survive); returns the rows."""
    rows = summarize(runs, networks)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"command": command, "runs": runs, "summary": rows}, f, indent=2)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(markdown_table(rows))
    plot_noise_curves(rows, os.path.join(out, "noise_curve.png"), plot_title, plot_xlabel)
    return rows


def run_all(args, argv, train_one, data, task):
    """Runs `train_one(network, seed, data, args)` for every seed and network
    of `args` (seed by seed), rewriting the results in `args.out` after each
    run (partial results survive), prints the table and returns the runs. The results
    record the command: the script and `argv` (its arguments, None for
    `sys.argv`'s)."""
    command = " ".join([os.path.basename(sys.argv[0]) if argv is None else "main"]
                       + list(sys.argv[1:] if argv is None else argv))
    os.makedirs(args.out, exist_ok=True)
    runs, rows = [], []
    for seed in args.seeds:  # every network's first seed first: a partial run compares them all
        for network in args.networks:
            runs.append(train_one(network, seed, data, args))
            rows = write_results(args.out, command, runs, task.networks,
                                 f"{task.title} accuracy vs noise: dense vs sparse", task.noise_description)
    print("\n" + markdown_table(rows))
    print(f"outputs in {os.path.abspath(args.out)}")
    return runs
