"""Trained models on devices: every `to_tflite` export, its size, speed and accuracy,
on LiteRT and on TFLite Micro.

    python benchmarks/bench_devices.py [--models NAME=PATH.keras ...] [--task mnist]
        [--data-dir DIR] [--eval-samples N] [--micro-samples 1000] [--invocations 1000]
        [--micro-invocations 1000] [--calibration 500] [--noise-seed 0] [--threads 1]
        [--keep-dir DIR] [--out runs/bench_devices.json]

For each model (default: the shipped `saved_models/mnist_dense_cnn2.keras` and
`mnist_sparse_cnn2.keras`; any `.keras` file of the task works, e.g. a
block-sparse one) × quantize {float32, dynamic, int8} × `sparse_encoding`
{False, True} (True only for a model with sparse-weight layers), the model
is exported by `keras_sparse.export.to_tflite` (int8 calibrated on the first
`--calibration` training inputs) and measured:

- the file: bytes, its ops, and the encoding the converter *produced*, read
  from the file: `dense`, `sparse (DENSIFY)` (unstructured: expanded to dense
  at load time) or `block-sparse RxC (no DENSIFY)` (kept sparse, run by the
  block-sparse kernels);
- LiteRT (default XNNPACK delegate, `--threads`): load time (`Interpreter` +
  `allocate_tensors`, median of 20), batch-1 latency (median of
  `--invocations` `invoke()` calls after 100 warm-up calls, every file timed
  in alternating blocks of 100, one run: ratios hold within a run), test
  accuracy and noise score (`keras_sparse.noise`, the paper's 11 levels,
  `--noise-seed`) on the real test set (its first `--eval-samples`, default
  all), and argmax agreement with the Keras model on the clean test set;
- TFLite Micro (the `tflite-micro` host interpreter, one sample per
  invocation): the same export with `target="micro"` (float32 and int8 only),
  its load time (`Interpreter.from_bytes`, median of 20), accuracy on the
  first `--micro-samples` clean test inputs and batch-1 latency (median of
  `--micro-invocations` after 10 warm-up calls, interleaved alike), or
  "does not run" and why (no hybrid kernels for dynamic; ops it lacks, e.g.
  `DENSIFY` for an unstructured sparse encoding).

Prints a Markdown table and writes everything (per-level noise results, op
lists, latency percentiles) as JSON to `--out`.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "examples"))

import numpy as np  # noqa: E402
from timing import cpu_name, interleaved_us, load_litert, median_ms  # noqa: E402  (beside this script)

from keras_sparse.shipping import calibration_inputs, evaluate_saved, test_inputs  # noqa: E402
from keras_sparse.tasks import TASKS  # noqa: E402

DEFAULT_MODELS = (f"mnist_dense_cnn2={REPO / 'saved_models' / 'mnist_dense_cnn2.keras'}",
                  f"mnist_sparse_cnn2={REPO / 'saved_models' / 'mnist_sparse_cnn2.keras'}")
QUANTIZE = {"float32": None, "dynamic": "dynamic", "int8": "int8"}


def parse_models(specs):
    """`{name: path}` from `NAME=PATH.keras` strings; `ValueError` naming `--models` otherwise."""
    models = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not re.fullmatch(r"[\w.-]+", name) or not path.endswith(".keras"):
            raise ValueError(f"`--models` entries must be NAME=PATH.keras (NAME of letters, digits, "
                             f"'_', '-', '.'). Received: {spec!r}")
        if not os.path.isfile(path):
            raise ValueError(f"`--models`: no file at {path!r} (for {name!r})")
        if name in models:
            raise ValueError(f"`--models`: the name {name!r} is given twice")
        models[name] = path
    return models


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="NAME=PATH.keras")
    p.add_argument("--task", default="mnist", help=f"the models' task, one of {sorted(TASKS)}")
    p.add_argument("--data-dir", default=None,
                   help="the task's data (default: $KERAS_SPARSE_MNIST / $KERAS_SPARSE_FSDD)")
    p.add_argument("--eval-samples", type=int, default=None,
                   help="first N test inputs for the LiteRT accuracy and noise score (default: all)")
    p.add_argument("--micro-samples", type=int, default=1000,
                   help="first N clean test inputs for the TFLite Micro accuracy")
    p.add_argument("--invocations", type=int, default=1000, help="timed LiteRT invocations per file")
    p.add_argument("--micro-invocations", type=int, default=1000, help="timed TFLite Micro invocations per file")
    p.add_argument("--calibration", type=int, default=500, help="training inputs calibrating int8")
    p.add_argument("--noise-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="LiteRT interpreter threads")
    p.add_argument("--keep-dir", default=None, help="keep the .tflite files here (default: a temporary folder)")
    p.add_argument("--out", default="runs/bench_devices.json", help="the JSON results")
    args = p.parse_args(argv)
    if args.task not in TASKS:
        raise ValueError(f"`--task` must be one of {sorted(TASKS)}. Received: {args.task!r}")
    for option in ("micro_samples", "invocations", "micro_invocations", "calibration", "threads"):
        if getattr(args, option) < 1:
            raise ValueError(f"`--{option.replace('_', '-')}` must be >= 1. Received: {getattr(args, option)}")
    if args.eval_samples is not None and args.eval_samples < 1:
        raise ValueError(f"`--eval-samples` must be >= 1. Received: {args.eval_samples}")
    if args.noise_seed < 0:
        raise ValueError(f"`--noise-seed` must be >= 0. Received: {args.noise_seed}")
    args.models = parse_models(args.models)
    return args


def has_sparse_weights(model):
    """Whether any layer of `model` (nested models included) has a sparse-weights kernel."""
    from keras_sparse.constraints import sparse_weight_layers

    return bool(sparse_weight_layers(model))


def produced_encoding(path):
    """How the converter stored the constant tensors of the `.tflite` at `path`:
    `"dense"`, or one label per kind of sparse tensor, e.g. `"sparse (DENSIFY)"`
    (unstructured, expanded by a `DENSIFY` op) or `"block-sparse 1x4 (no DENSIFY)"`
    (the block shape from the tensor's block map; read by its consumer as is)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(pathlib.Path(path).read_bytes()), 0)
    densify = {i for i, code in enumerate(model.operatorCodes)
               if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.DENSIFY}
    labels = set()
    for graph in model.subgraphs:
        densified = {i for op in graph.operators if op.opcodeIndex in densify for i in op.inputs}
        for index, tensor in enumerate(graph.tensors):
            if tensor.sparsity is None:
                continue
            block_map = [] if tensor.sparsity.blockMap is None else list(tensor.sparsity.blockMap)
            rank = len(tensor.shape)
            block = [1] * rank
            for j, axis in enumerate(block_map):
                block[axis] = tensor.sparsity.dimMetadata[rank + j].denseSize
            kind = f"block-sparse {'x'.join(map(str, block))}" if block_map else "sparse"
            labels.add(f"{kind} ({'DENSIFY' if index in densified else 'no DENSIFY'})")
    return ", ".join(sorted(labels)) or "dense"


def why_not(error):
    """A short reason from a `to_tflite` or runtime error, for the table."""
    message = str(error)
    lacks = re.search(r"lacks: (\[[^\]]*\])", message)
    if lacks:
        return f"needs ops TFLite Micro lacks: {lacks.group(1)}"
    if "no TFLite Micro kernels" in message:
        return "no hybrid (dynamic-range) kernels in TFLite Micro"
    refused = re.search(r"`sparse_encoding` must be False or 'auto' with [^:]*: (.*?)(?: \(see [^)]*\))?\. Received",
                        message)
    if refused:  # the reason of the target's entry in keras_sparse.targets.TARGET_RULES
        return f"refused: {refused.group(1)}"
    if "needs every sparse kernel made of 1x16 blocks" in message:
        return "refused: int8 encodes 1x16 blocks only (int8 DENSIFY fails in XNNPACK)"
    return message.splitlines()[0][:120]


def check_outputs(tflite_model, model, inputs):
    """`RuntimeError` if the file's outputs do not have the Keras model's shape
    (a broken export, e.g. an empty graph whose output is its input)."""
    shape = tflite_model.predict(inputs[:1]).shape[1:]
    if shape != tuple(model.output_shape[1:]):
        raise RuntimeError(f"broken file: outputs of shape {shape}, the Keras model's are "
                           f"{tuple(model.output_shape[1:])}")


def export_and_evaluate(model, name, quantize, sparse_encoding, out_dir, data, args):
    """One row: the LiteRT file's size, ops, encoding, accuracy and noise score,
    and the TFLite Micro export's accuracy or why it does not run."""
    from keras_sparse.export import TFLiteModel, tflite_op_names, to_tflite

    stem = os.path.join(out_dir, f"{name}_{quantize}_{'sparse' if sparse_encoding else 'dense'}")
    calibration = data["calibration"] if quantize == "int8" else None
    row = {"model": name, "quantize": quantize, "sparse_encoding": sparse_encoding}
    try:
        path = to_tflite(model, stem + ".tflite", quantize=QUANTIZE[quantize],
                         representative_data=calibration, sparse_encoding=sparse_encoding)
    except ValueError as error:
        return dict(row, litert={"error": str(error)}, micro={"runs": False, "why": why_not(error)})
    lite = TFLiteModel(path)
    row.update(path=path, bytes=os.path.getsize(path), ops=tflite_op_names(path),
               encoding=produced_encoding(path))
    try:
        check_outputs(lite, model, data["inputs"])
        accuracy, noisy = evaluate_saved(lite, args.task, args.data_dir, args.noise_seed, args.eval_samples)
        predictions = lite.predict(data["inputs"]).argmax(1)
    except RuntimeError as error:  # e.g. a kernel refusing its quantized input, a broken file
        row["litert"] = {"error": str(error)}
    else:
        row["litert"] = {"test_accuracy": accuracy, "noise_score": noisy["noise_score"],
                         "noise_correct": noisy["correct"], "samples": noisy["num_images"],
                         "agreement_with_keras": float(np.mean(predictions == data["keras_predictions"]))}
    row["micro"] = micro_row(model, quantize, sparse_encoding, stem, data, args)
    return row


def micro_row(model, quantize, sparse_encoding, stem, data, args):
    """The `target="micro"` export of the same model in TFLite Micro, or why it does not run."""
    from keras_sparse.export import TFLiteModel, tflite_op_names, to_tflite

    calibration = data["calibration"] if quantize == "int8" else None
    try:
        path = to_tflite(model, stem + "_micro.tflite", quantize=QUANTIZE[quantize], target="micro",
                         representative_data=calibration, sparse_encoding=sparse_encoding)
        micro = TFLiteModel(path, runtime="micro")
        check_outputs(micro, model, data["inputs"])
        predictions = micro.predict(data["inputs"][:args.micro_samples]).argmax(1)
    except (ValueError, RuntimeError) as error:
        return {"runs": False, "why": why_not(error), "error": str(error)}
    return {"runs": True, "path": path, "bytes": os.path.getsize(path), "ops": tflite_op_names(path),
            "samples": len(predictions),
            "test_accuracy": float(np.mean(predictions == data["labels"][:len(predictions)]))}


def time_rows(rows, data, args):
    """Adds LiteRT and TFLite Micro load times and batch-1 latencies to `rows`,
    all files of a runtime timed together in interleaved blocks."""
    from tflite_micro.python.tflite_micro import runtime as micro_runtime

    from keras_sparse.export import TFLiteModel

    sample = data["inputs"][:1]
    litert, micro = {}, {}
    for i, row in enumerate(rows):
        if "path" in row and "error" not in row["litert"]:
            row["litert"]["load_ms"] = median_ms(lambda: load_litert(row["path"], args.threads))
            interpreter = load_litert(row["path"], args.threads)
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                                   TFLiteModel(row["path"]).quantize_inputs(sample))
            litert[i] = interpreter.invoke
        if row["micro"]["runs"]:
            flatbuffer = pathlib.Path(row["micro"]["path"]).read_bytes()
            row["micro"]["load_ms"] = median_ms(lambda: micro_runtime.Interpreter.from_bytes(flatbuffer))
            interpreter = micro_runtime.Interpreter.from_bytes(flatbuffer)
            interpreter.set_input(TFLiteModel(row["micro"]["path"], runtime="micro").quantize_inputs(sample), 0)
            micro[i] = interpreter.invoke
    for runtime, invokers, invocations, warmup in (("litert", litert, args.invocations, 100),
                                                   ("micro", micro, args.micro_invocations, 10)):
        for i, times in interleaved_us(invokers, invocations, warmup=warmup).items():
            rows[i][runtime].update(latency_us=float(np.median(times)), latency_calls=len(times),
                                    latency_p10_p90_us=[float(np.percentile(times, q)) for q in (10, 90)])


def markdown_table(rows, micro_samples):
    """The rows as a Markdown table (full op lists below it)."""
    lines = ["| model | quantize | encoding (as converted) | bytes | ops | load ms | batch-1 µs, median (p10) | "
             "accuracy | noise score | = Keras argmax | TFLM accuracy "
             f"(first {micro_samples:,}) | TFLM batch-1 µs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    op_lists = {}
    for row in rows:
        lite, micro = row["litert"], row["micro"]
        if "path" not in row:
            lines.append(f"| {row['model']} | {row['quantize']} | export fails: {why_not(lite['error'])} |"
                         + " — |" * 9)
            continue
        ops = ", ".join(row["ops"]) or "(none)"
        key = op_lists.setdefault(ops, chr(ord("A") + len(op_lists)))
        flags = "".join(f", **{op}**" for op in ("DENSIFY", "TOPK_V2") if op in row["ops"])
        asked = " (asked sparse)" if row["sparse_encoding"] and row["encoding"] == "dense" else ""
        cells = [row["model"], row["quantize"], row["encoding"] + asked, f"{row['bytes']:,}",
                 f"{len(row['ops'])} ({key}){flags}"]
        if "error" in lite:
            cells += [f"fails: {why_not(lite['error'])}"] + ["—"] * 4
        else:
            cells += [f"{lite['load_ms']:.2f}",
                      f"{lite['latency_us']:.1f} ({lite['latency_p10_p90_us'][0]:.1f})",
                      f"{100 * lite['test_accuracy']:.2f}%", f"{lite['noise_score']:,}",
                      f"{100 * lite['agreement_with_keras']:.2f}%"]
        if micro["runs"]:
            cells += [f"{100 * micro['test_accuracy']:.2f}%", f"{micro['latency_us']:,.0f}"]
        else:
            cells += [f"does not run: {micro['why']}", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- ops ({key}): {ops}" for ops, key in op_lists.items()]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    import ai_edge_litert
    import keras
    import tensorflow as tf
    import tflite_micro

    import keras_sparse  # noqa: F401  (registers the layers for load_model)

    inputs, labels = test_inputs(args.task, args.data_dir)
    data = {"inputs": inputs[:args.eval_samples], "labels": labels[:args.eval_samples],
            "calibration": calibration_inputs(args.task, args.data_dir, args.calibration)}
    out_dir = args.keep_dir or tempfile.mkdtemp(prefix="bench_devices_")
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for name, path in args.models.items():
        model = keras.models.load_model(path)
        data["keras_predictions"] = model.predict(data["inputs"], batch_size=512, verbose=0).argmax(1)
        encodings = (False, True) if has_sparse_weights(model) else (False,)
        for quantize in QUANTIZE:
            for sparse_encoding in encodings:
                rows.append(dict(export_and_evaluate(model, name, quantize, sparse_encoding, out_dir, data, args),
                                 source=path))
                print(json.dumps({k: rows[-1][k] for k in ("model", "quantize", "sparse_encoding")}),
                      rows[-1].get("encoding"), flush=True)
    time_rows(rows, data, args)

    table = markdown_table(rows, args.micro_samples)
    results = {
        "command": "python benchmarks/bench_devices.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.date.today().isoformat(),
        "machine": f"{cpu_name()}, {platform.machine()}, {os.cpu_count()} CPUs",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "ai_edge_litert": ai_edge_litert.__version__, "tflite_micro": tflite_micro.__version__},
        "settings": {k: v for k, v in vars(args).items() if k not in ("models", "out", "keep_dir")},
        "models": args.models, "files": out_dir, "rows": rows, "table": table,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"{results['machine']}; LiteRT threads: {args.threads}; files in {out_dir}")
    print(table)


if __name__ == "__main__":
    main()
