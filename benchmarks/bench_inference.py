"""Inference latency of a sparse network against its ReLU twin and the dense
control, on every runtime the library ships to, with where the time goes.

    python benchmarks/bench_inference.py [--task mnist|fsdd] [--sparse saved_models/mnist_sparse_cnn2.keras]
        [--dense saved_models/mnist_dense_cnn2.keras] [--data-dir DIR]
        [--invocations 2000] [--micro-invocations 200] [--keras-batches 1 64 1024] [--keras-repeats 30]
        [--calibration 200] [--no-per-layer] [--keras-only] [--threads 1] [--out runs/bench_inference.json]

Models (all from the given `.keras` files):

- `sparse`: the sparse network as `keras_sparse.export.to_tflite` exports it
  today (float32: the layers' own inference path, `keras_sparse.selection`'s
  portable kernel per layer width; int8: the k-winners layers kept float32,
  their threshold by `TOPK_V2`).
- `sparse, 0.1 kernels`: the same weights exported the way release 0.1 did
  (float32: `top_k` of k values for every layer; int8: the 32-step threshold
  search), to show the change in the same run.
- `sparse, quantized k-winners` (int8 only): the k-winners layers quantized
  too (`TOPK_V2`, compare and select on int8 codes, no float32 islands),
  the int8 form `to_tflite` does not ship, to show why.
- `ReLU twin`: the same layers with `ReLU` in place of every k-winners layer
  and plain `Dense` / `Conv` kernels holding the same (sparse) weights: the
  cost floor of the architecture.
- `dense`: the paper's dense control (Dense CNN-2).

`--task fsdd` (with `--sparse saved_models/fsdd_sparse_cnn2.keras --dense
saved_models/fsdd_dense_cnn2.keras` and the FSDD `--data-dir`) times the
networks behind the float log-mel front end, on its features of the test
clips, as the shipped int8 FSDD files hold them.

Measured, in one process, interleaved (`benchmarks/timing.py`):

- LiteRT (`ai_edge_litert`, default XNNPACK delegate, `--threads`), batch 1,
  float32 and int8 (`quantize="int8"`, calibrated on the first
  `--calibration` training images): the median of `--invocations` calls.
- TFLite Micro (the host build of the microcontroller interpreter,
  `tflite-micro`), int8 files exported with `target="micro"` (k-winners by
  the threshold search), batch 1: the median of `--micro-invocations`
  calls, interleaved in blocks of 10. Per layer: the sparse file minus its
  twin is the k-winners layers' cost.
- Keras at each of `--keras-batches`: the median of `--keras-repeats` calls
  of `model.predict_on_batch(x)` (the graph Keras' trainer builds, where
  k-winners select by `NthElement`) and of `model(x, training=False)` in a
  `tf.function` (an exportable graph: the portable kernels).
  `--keras-only` skips everything else.
- Agreement: the argmax of every file on LiteRT against the Keras model's on
  the full test set (TFLite Micro: the first 1,000 test inputs) (the sparse files: `keras_sparse`'s exports must not
  change the answers).
- Where the time goes (LiteRT float32 and int8, batch 1): the model cut after
  each layer is exported and timed in the same interleaved run; a layer's cost
  is the difference between the cut after it and the cut before it.

Prints Markdown tables and writes everything to `--out` as JSON.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "examples"))

import numpy as np  # noqa: E402
from timing import cpu_name, interleaved_us, load_litert  # noqa: E402  (beside this script)

from keras_sparse.shipping import calibration_inputs, int8_network, test_inputs  # noqa: E402


def relu_twin(model):
    """`model` with `ReLU` for every k-winners layer and `Dense` / `Conv1D` /
    `Conv2D` for every sparse-weight layer, holding the same weights."""
    import keras

    from keras_sparse import kwinners, sparse_weights

    plain = {sparse_weights.SparseDense: keras.layers.Dense,
             sparse_weights.SparseConv1D: keras.layers.Conv1D,
             sparse_weights.SparseConv2D: keras.layers.Conv2D}

    class MaskedReLU(keras.layers.ReLU):
        """`ReLU` in a k-winners layer's place: the graph passes it `mask`."""

        def call(self, inputs, mask=None):
            return super().call(inputs)

    def clone_layer(layer):
        if isinstance(layer, kwinners.KWinnersBase):
            return MaskedReLU(name=layer.name)
        config = layer.get_config()
        if type(layer) in plain:
            for key in ("sparsity", "seed", "block", "kernel_constraint"):
                config.pop(key, None)
            return plain[type(layer)].from_config(config)
        return layer.__class__.from_config(config)

    twin = keras.models.clone_model(model, clone_function=clone_layer)
    for layer in model.layers:
        if layer.weights and not isinstance(layer, kwinners.KWinnersBase):
            twin.get_layer(layer.name).set_weights(layer.get_weights())
    return twin


def release_01_export(model, path, quantize, calibration):
    """`to_tflite` as release 0.1 exported `model`: `top_k` of k values in
    float32, the 32-step threshold search in int8."""
    from keras_sparse import export, micro, selection

    if quantize == "int8":
        original = micro.with_search_kwinners
        micro.with_search_kwinners = lambda m, kernel="search", **options: original(m, "search")
        try:
            return export.to_tflite(model, path, quantize="int8", representative_data=calibration)
        finally:
            micro.with_search_kwinners = original
    widest = selection.SAMPLED_MIN_UNITS
    selection.SAMPLED_MIN_UNITS = float("inf")
    try:
        return export.to_tflite(model, path)
    finally:
        selection.SAMPLED_MIN_UNITS = widest


def int8_kwinners_export(model, path, calibration):
    """`to_tflite(quantize="int8")` with the k-winners layers quantized too:
    no float32 islands, the boost, `TOPK_V2`, the compare and the select on
    int8 codes (winners: the k largest int8 boosted codes, ties kept). The
    int8 form `to_tflite` does not ship, timed beside the one it does."""
    import tensorflow as tf
    from tensorflow.lite.python import convert

    from keras_sparse import export

    shipped = export._quantize_int8
    export._quantize_int8 = lambda calibrated: convert.mlir_quantize(
        calibrated, fully_quantize=True, input_data_type=tf.int8, output_data_type=tf.int8)
    try:
        return export.to_tflite(model, path, quantize="int8", representative_data=calibration)
    finally:
        export._quantize_int8 = shipped


def cut_after(model, index):
    """The functional `model` up to and including its `index`-th layer."""
    import keras

    return keras.Model(model.inputs, model.layers[index].output)


def keras_latency_ms(models, batches, repeats, inputs):
    """`{batch: {name: median ms}}` of `model.predict_on_batch(x)` (the graph
    Keras' trainer builds: k-winners by `NthElement`) and, as `"<name>,
    tf.function"`, of `model(x, training=False)` compiled by `tf.function`
    (a graph that may be exported: the portable kernels), every call taking
    its turn."""
    import tensorflow as tf

    results = {}
    for batch in batches:
        x = tf.constant(np.resize(inputs, (batch, *inputs.shape[1:])))
        calls = {}
        for name, model in models.items():
            calls[name] = lambda x, m=model: m.predict_on_batch(x)
            function = tf.function(lambda x, m=model: m(x, training=False))
            calls[f"{name}, tf.function"] = lambda x, f=function: f(x).numpy()
        for call in calls.values():
            for _ in range(3):
                call(x)
        times = {name: [] for name in calls}
        for _ in range(repeats):
            for name, call in calls.items():
                start = datetime.datetime.now()
                call(x)
                times[name].append((datetime.datetime.now() - start).total_seconds() * 1e3)
        results[batch] = {name: statistics.median(t) for name, t in times.items()}
    return results


def litert_invokers(paths, sample, threads):
    invokers = {}
    for name, path in paths.items():
        interpreter = load_litert(path, threads)
        detail = interpreter.get_input_details()[0]
        x = sample
        if detail["dtype"] == np.int8:
            scale, zero_point = detail["quantization"]
            x = np.clip(np.round(sample / scale) + zero_point, -128, 127).astype(np.int8)
        interpreter.set_tensor(detail["index"], x)
        invokers[name] = interpreter.invoke
    return invokers


def micro_invokers(paths, sample):
    """`{name: invoke}` of TFLite Micro interpreters holding `sample` (quantized)."""
    from tflite_micro.python.tflite_micro import runtime

    invokers = {}
    for name, path in paths.items():
        with open(path, "rb") as f:
            interpreter = runtime.Interpreter.from_bytes(f.read())
        parameters = interpreter.get_input_details(0)["quantization_parameters"]
        scale, zero_point = parameters["scales"][0], parameters["zero_points"][0]
        interpreter.set_input(np.clip(np.round(sample / scale) + zero_point, -128, 127).astype(np.int8), 0)
        invokers[name] = interpreter.invoke
    return invokers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("mnist", "fsdd"), default="mnist")
    parser.add_argument("--sparse", default=None, help="default: saved_models/<task>_sparse_cnn2.keras")
    parser.add_argument("--dense", default=None, help="default: saved_models/<task>_dense_cnn2.keras")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--invocations", type=int, default=2000)
    parser.add_argument("--keras-batches", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--keras-repeats", type=int, default=30)
    parser.add_argument("--micro-invocations", type=int, default=200)
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--no-per-layer", action="store_true")
    parser.add_argument("--keras-only", action="store_true", help="time Keras only (no TFLite files)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/bench_inference.json")
    args = parser.parse_args(argv)
    args.sparse = args.sparse or str(REPO / "saved_models" / f"{args.task}_sparse_cnn2.keras")
    args.dense = args.dense or str(REPO / "saved_models" / f"{args.task}_dense_cnn2.keras")
    for name in ("invocations", "micro_invocations", "keras_repeats", "calibration", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")

    import keras

    import keras_sparse  # noqa: F401  (registers the layers)

    # FSDD: the networks behind the float front end, on its features
    sparse, features = int8_network(keras.models.load_model(args.sparse))
    dense, _ = int8_network(keras.models.load_model(args.dense))
    models = {"sparse": sparse, "ReLU twin": relu_twin(sparse), "dense": dense}
    to_network = features or (lambda inputs: inputs)
    x_test, _ = test_inputs(args.task, args.data_dir)
    x_test = np.asarray(to_network(x_test), np.float32)
    calibration = to_network(calibration_inputs(args.task, args.data_dir, args.calibration))
    sample = x_test[:1].astype(np.float32)

    results = {"machine": f"{cpu_name()}, {os.cpu_count()} cores, {platform.machine()}",
               "date": datetime.date.today().isoformat(), "threads": args.threads,
               "sparse_model": args.sparse, "dense_model": args.dense}
    if not args.keras_only:
        results.update(litert_and_micro(args, models, x_test, calibration, sample))
    results["keras_ms"] = keras_latency_ms(models, args.keras_batches, args.keras_repeats, x_test)
    print_tables(results, models)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1, default=str)
    print(f"\nwrote {args.out}")


def litert_and_micro(args, models, x_test, calibration, sample):
    """Exports every model (and the per-layer cuts), times them on LiteRT and
    TFLite Micro, and checks their answers against Keras'."""
    from keras_sparse import export

    sparse = models["sparse"]
    work = tempfile.mkdtemp(prefix="bench_inference_")
    paths = {"float32": {}, "int8": {}}
    for quantize in paths:
        q = None if quantize == "float32" else "int8"
        rep = calibration if q else None
        for name, model in models.items():
            paths[quantize][name] = export.to_tflite(model, f"{work}/{name}_{quantize}.tflite".replace(" ", "_"),
                                                     quantize=q, representative_data=rep)
        paths[quantize]["sparse, 0.1 kernels"] = release_01_export(sparse, f"{work}/old_{quantize}.tflite",
                                                                   q, rep)
    paths["int8"]["sparse, quantized k-winners"] = int8_kwinners_export(
        sparse, f"{work}/int8_kwinners.tflite", calibration)
    micro_paths = {name: export.to_tflite(model, f"{work}/{name}_micro.tflite".replace(" ", "_"), quantize="int8",
                                          representative_data=calibration, target="micro")
                   for name, model in models.items()}
    per_layer = {"float32": {}, "int8": {}}
    if not args.no_per_layer:
        for quantize in per_layer:
            q = None if quantize == "float32" else "int8"
            for name in ("sparse", "ReLU twin"):
                model = models[name]
                for index in range(1, len(model.layers)):
                    key = f"{name} | {model.layers[index].name}"
                    per_layer[quantize][key] = export.to_tflite(
                        cut_after(model, index), f"{work}/{name}_{index}_{quantize}.tflite".replace(" ", "_"),
                        quantize=q, representative_data=calibration if q else None)

    results = {"litert_us": {}, "layers_us": {},
               "bytes": {q: {n: os.path.getsize(p) for n, p in ps.items()} for q, ps in paths.items()},
               "ops": {q: {n: export.tflite_op_names(p) for n, p in ps.items()} for q, ps in paths.items()}}
    for quantize in paths:
        timed = interleaved_us(litert_invokers({**paths[quantize], **per_layer[quantize]}, sample, args.threads),
                               args.invocations)
        medians = {name: statistics.median(t) for name, t in timed.items()}
        results["litert_us"][quantize] = {name: medians[name] for name in paths[quantize]}
        results["layers_us"][quantize] = {}
        for name in ("sparse", "ReLU twin"):
            before = 0.0
            for index in range(1, len(models[name].layers)):
                key = f"{name} | {models[name].layers[index].name}"
                if key in medians:
                    results["layers_us"][quantize][key] = medians[key] - before
                    before = medians[key]
    timed = interleaved_us(micro_invokers(micro_paths, sample), args.micro_invocations, warmup=5, block=10)
    results["micro_us"] = {name: statistics.median(t) for name, t in timed.items()}
    results["argmax_agreement_with_keras"] = {}
    for quantize, files in (*paths.items(), ("micro int8", micro_paths)):
        for name, path in files.items():
            keras_answers = models[name.split(",")[0]].predict(x_test, batch_size=512, verbose=0).argmax(1)
            runtime = "micro" if quantize.startswith("micro") else "litert"
            inputs = x_test[:1000] if runtime == "micro" else x_test  # Micro: one sample per invocation
            keras_answers = keras_answers[:len(inputs)]
            answers = export.TFLiteModel(path, runtime).predict(inputs).argmax(1)
            results["argmax_agreement_with_keras"][f"{name} {quantize}"] = float(np.mean(answers == keras_answers))
    return results


def print_tables(results, models):
    print(f"# bench_inference ({results['machine']}; {results['date']}; {results['threads']} LiteRT thread)\n")
    print("| runtime | sparse | sparse, 0.1 kernels | ReLU twin | dense | sparse / twin | sparse / dense |")
    print("|---|---|---|---|---|---|---|")
    for quantize, row in results.get("litert_us", {}).items():
        print(f"| LiteRT {quantize}, batch 1 (µs) | {row['sparse']:.1f} | {row['sparse, 0.1 kernels']:.1f} | "
              f"{row['ReLU twin']:.1f} | {row['dense']:.1f} | {row['sparse'] / row['ReLU twin']:.2f} | "
              f"{row['sparse'] / row['dense']:.2f} |")
    if "micro_us" in results:
        row = results["micro_us"]
        print(f"| TFLite Micro int8, batch 1 (µs) | {row['sparse']:.0f} | – | {row['ReLU twin']:.0f} | "
              f"{row['dense']:.0f} | {row['sparse'] / row['ReLU twin']:.2f} | {row['sparse'] / row['dense']:.2f} |")
    for batch, row in results["keras_ms"].items():
        for how, suffix in (("predict_on_batch", ""), ("tf.function", ", tf.function")):
            sparse, twin, dense = (row[name + suffix] for name in ("sparse", "ReLU twin", "dense"))
            print(f"| Keras {how}, batch {batch} (ms) | {sparse:.2f} | – | {twin:.2f} | {dense:.2f} | "
                  f"{sparse / twin:.2f} | {sparse / dense:.2f} |")
    quantized = results.get("litert_us", {}).get("int8", {}).get("sparse, quantized k-winners")
    if quantized is not None:
        shipped = results["litert_us"]["int8"]["sparse"]
        print(f"\nLiteRT int8 with the k-winners layers quantized too (no float islands): "
              f"{quantized:.1f} µs, {quantized / shipped:.2f}× the shipped int8 form")
    if "argmax_agreement_with_keras" in results:
        print("\nargmax agreement with Keras on the full test set: " + ", ".join(
            f"{name} {100 * share:.2f}%" for name, share in results["argmax_agreement_with_keras"].items()))
    for quantize, layers in results.get("layers_us", {}).items():
        if layers:
            print(f"\nWhere the time goes, LiteRT {quantize} batch 1 (µs; cut after the layer minus cut before):\n")
            print("| layer | sparse | ReLU twin |\n|---|---|---|")
            for layer in models["sparse"].layers[1:]:
                print(f"| {layer.name} | {layers.get('sparse | ' + layer.name, float('nan')):.1f} | "
                      f"{layers.get('ReLU twin | ' + layer.name, float('nan')):.1f} |")


if __name__ == "__main__":
    main()
