"""`to_tflite(quantize=..., target=...)`: the threshold search of
`keras_sparse.micro`, int8 k-winners exact on the model's own quantized
values (read from the intermediate tensors), TFLite Micro against LiteRT on
real MNIST, and clear errors that leave no file behind."""

import numpy as np
import pytest

import keras
import keras_sparse as ks
from keras_sparse import datasets, export, micro, tflite_model
from keras_sparse import ops as sparse_ops
from keras_sparse.callbacks import UpdateBoostStrength


def _kth_largest(rows, k):
    ranked = np.where(np.isnan(rows), -np.inf, rows)
    return -np.sort(-ranked, axis=1)[:, k - 1:k]


@pytest.mark.parametrize("seed", range(4))
def test_search_finds_the_kth_largest_float32_exactly(seed):
    rng = np.random.default_rng(seed)
    scales = np.float32(10.0) ** rng.integers(-30, 30, (6, 1)).astype(np.float32)
    rows = (rng.normal(size=(6, 300)) * scales).astype(np.float32)
    rows[0, :50] = rows[0, 50]  # ties at the threshold
    rows[1, :] = np.abs(rows[1])  # all positive; then the smallest normals, zeros, infinities
    rows[2, :100] = np.float32(2.0**-126) * rng.integers(0, 9, 100)
    rows[3, :5], rows[3, 5:10] = np.inf, -np.inf
    rows[4, :] = -np.abs(rows[4])
    rows[5, :20] = np.nan
    for k in (1, 7, 150, 280):
        got = keras.ops.convert_to_numpy(micro.kth_largest_by_search(keras.ops.convert_to_tensor(rows), k))
        np.testing.assert_array_equal(got, _kth_largest(rows, k), err_msg=f"k={k}")
    with pytest.raises(ValueError, match="`k` must be in \\[1, 300\\]"):
        micro.kth_largest_by_search(keras.ops.convert_to_tensor(rows), 0)


def test_search_grids_cover_float32_in_order():
    starts = micro.SEARCH_GRID_STARTS
    assert len(starts) == 2**micro.GRID_BITS and (np.diff(starts) > 0).all()
    offsets, slopes = micro.SEARCH_GRID_OFFSETS[1:-1], micro.SEARCH_GRID_SLOPES[1:-1]
    last = (micro.SEARCH_GRID_SCALES[1:-1].astype(np.float64)
            * (offsets + slopes * np.float32(2**23 - 1))).astype(np.float32)  # each grid's largest point
    # the next float after a grid's last point is the next grid's first; the
    # negative subnormals' grid ends on -0.0, the first point of the next
    after = np.nextafter(last[:-1], np.float32(np.inf))
    zero = np.flatnonzero(starts[2:-1] == 0)
    after[zero] = last[zero]
    np.testing.assert_array_equal(after, starts[2:-1])
    assert last[-1] == np.finfo(np.float32).max


def _trained_mnist_cnn(mnist, relu=False):
    keras.utils.set_random_seed(0)
    x = datasets.normalize(datasets.to_unit_interval(mnist["x_train"][:600]))
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 5), keras.layers.MaxPooling2D(2),
        ks.KWinners2D(100 / 1152, boost_strength=1.5, relu=relu, name="kw_conv"),
        keras.layers.Flatten(), keras.layers.Dense(64),
        ks.KWinners(0.2, boost_strength=1.5, relu=relu, name="kw_dense"),
        keras.layers.Dense(10),
    ])
    model.compile(keras.optimizers.SGD(0.02, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, mnist["y_train"][:600], batch_size=32, epochs=2, verbose=0, callbacks=[UpdateBoostStrength()])
    return model, x


def _layer_io_tensors(flatbuffer, layer_name):
    """(int8 input index, int8 output indices, loser mask index) of a search
    k-winners layer: the DEQUANTIZE that feeds its ops, the QUANTIZEs of its
    results (the converter may quantize the layer's output both before and
    after its final reshape, for different consumers) and the condition of
    its last `SELECT_V2`, `where(loser, 0, x)` (the inference form)."""
    schema, model = tflite_model._read_model(flatbuffer)
    graph = model.subgraphs[0]
    code = {op_code: max(c.builtinCode, c.deprecatedBuiltinCode) for op_code, c in enumerate(model.operatorCodes)}
    marker = layer_name + micro.SEARCH_LAYER_SUFFIX
    inside = [op for op in graph.operators
              if any(marker in graph.tensors[t].name.decode() for t in op.outputs)]
    produced = {t for op in inside for t in op.outputs}
    dequantize = [op for op in graph.operators if code[op.opcodeIndex] == schema.BuiltinOperator.DEQUANTIZE
                  and any(t in produced or marker in graph.tensors[t].name.decode() for t in op.outputs)
                  or code[op.opcodeIndex] == schema.BuiltinOperator.DEQUANTIZE
                  and any(t in {i for o in inside for i in o.inputs} for t in op.outputs)]
    quantize = [op for op in graph.operators if code[op.opcodeIndex] == schema.BuiltinOperator.QUANTIZE
                and any(t in produced for t in op.inputs)]
    select = [op for op in inside if code[op.opcodeIndex] == schema.BuiltinOperator.SELECT_V2]
    assert len(dequantize) == 1 and quantize and select, (len(dequantize), len(quantize), len(select))
    return dequantize[0].inputs[0], [op.outputs[0] for op in quantize], select[-1].inputs[0]


@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
def test_int8_winners_are_the_k_largest_of_the_models_own_values(mnist, tmp_path, relu):
    """Reads the int8 input, winner mask and int8 output of every k-winners
    layer of the int8 model (LiteRT, all tensors preserved) and recomputes
    the layer from the input codes: boosted = dequantized input * boost
    factors (float32), winners = boosted >= its k-th largest (ties included)
    and, with relu, boosted > 0; output = the input's value at the winners,
    requantized; bit-identical. With relu (both layers) some rows have fewer
    than k positive values, and relu must drop units the k-th largest rule
    admits: seen in the mask (an input at exactly 0 outputs 0 either way)."""
    from ai_edge_litert.interpreter import Interpreter

    model, x_train = _trained_mnist_cnn(mnist, relu)
    path = export.to_tflite(model, tmp_path / "int8.tflite", quantize="int8", representative_data=x_train[:200])
    flatbuffer = open(path, "rb").read()
    interpreter = Interpreter(model_content=flatbuffer, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    lite = export.TFLiteModel(path)
    images = lite.quantize_inputs(datasets.normalize(datasets.to_unit_interval(mnist["x_test"][:40])))
    layers = {layer.name: layer for layer in model.layers if isinstance(layer, ks.kwinners.KWinnersBase)}
    io = {name: _layer_io_tensors(flatbuffer, name) for name in layers}
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    extra_winners = relu_dropped = 0
    for image in images:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        for name, layer in layers.items():
            input_index, output_indices, mask_index = io[name]
            scale_in, zero_in = details[input_index]["quantization"]
            codes = interpreter.get_tensor(input_index).reshape(1, -1)
            values = (codes.astype(np.float32) - zero_in) * np.float32(scale_in)
            factors = keras.ops.convert_to_numpy(sparse_ops.boost_factors(layer.duty_cycles, layer.boost_strength))
            boosted = values * np.tile(factors, values.shape[1] // factors.size)
            k = layer.k_inference
            winners = boosted >= _kth_largest(boosted, k)
            if layer.relu:
                relu_dropped += (winners & (boosted <= 0)).sum()
                winners &= boosted > 0
            assert winners.sum() >= (k if not layer.relu else min(k, (boosted > 0).sum()))
            losers = interpreter.get_tensor(mask_index).reshape(1, -1)
            np.testing.assert_array_equal(~losers, winners, err_msg=name)
            assert (boosted > _kth_largest(boosted, k)).sum() < k
            extra_winners += winners.sum() - k
            for index in output_indices:
                scale_out, zero_out = details[index]["quantization"]
                expected = np.clip(np.round(np.where(winners, values, 0) / np.float32(scale_out)) + zero_out,
                                   -128, 127).astype(np.int8)
                np.testing.assert_array_equal(interpreter.get_tensor(index).reshape(1, -1), expected, err_msg=name)
    print(f"winners beyond k from ties (less those relu dropped), over 40 images x 2 layers: "
          f"{extra_winners}; units relu dropped: {relu_dropped}")
    assert relu_dropped > 0 if relu else relu_dropped == 0


def test_micro_runs_exported_files_like_litert(mnist, tmp_path):
    """float32 and int8 files for target='micro' hold only TFLite Micro ops
    and run in its interpreter. float32: within 1e-5 of LiteRT (different
    summation order). int8: each runtime requantizes with its own rounding
    (the same happens with a dense ReLU model), so outputs may differ by a
    code; the argmax agrees."""
    model, x_train = _trained_mnist_cnn(mnist)
    test = datasets.normalize(datasets.to_unit_interval(mnist["x_test"][:150]))
    for quantize in (None, "int8"):
        path = export.to_tflite(model, tmp_path / f"{quantize}.tflite", quantize=quantize,
                                representative_data=x_train[:200] if quantize else None, target="micro")
        ops = export.tflite_op_names(path)
        assert set(ops) <= export.MICRO_OPS and "TOPK_V2" not in ops and "TILE" not in ops, ops
        on_micro = export.TFLiteModel(path, runtime="micro").predict_raw(test)
        on_litert = export.TFLiteModel(path).predict_raw(test)
        if quantize is None:
            np.testing.assert_allclose(on_micro, on_litert, atol=1e-5)
            np.testing.assert_allclose(on_litert, model.predict(test, verbose=0), atol=1e-5)
        else:
            assert on_micro.dtype == np.int8
            assert np.abs(on_micro.astype(int) - on_litert).max() <= 2
            assert np.mean((on_micro == on_litert).all(1)) >= 0.8
        assert np.mean(on_micro.argmax(1) == on_litert.argmax(1)) >= 0.99


@pytest.mark.parametrize("make_layer, input_shape", [
    (lambda: ks.KWinners(0.25, relu=True), (10, 8)),
    (lambda: ks.KWinners2D(0.5, local=True, break_ties=True, data_format="channels_first"), (4, 5, 6)),
    (lambda: ks.KWinners3D(0.4, local=True), (2, 3, 4, 5)),
], ids=["sequence", "2d-local-channels_first", "3d-local"])
def test_micro_int8_rows_of_several_positions_per_sample(make_layer, input_shape, tmp_path):
    """int8 for target='micro' with several rows per sample (a sequence, a
    local feature map): TFLite Micro prepares every RESHAPE (one sample per
    invocation) and gives LiteRT's int8 outputs (whole batch) within a code."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, *input_shape)).astype(np.float32)
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(make_layer()(inputs))))
    path = export.to_tflite(model, tmp_path / "int8.tflite", quantize="int8", representative_data=x,
                            target="micro")
    assert set(export.tflite_op_names(path)) <= export.MICRO_OPS
    on_micro = export.TFLiteModel(path, runtime="micro").predict_raw(x)
    on_litert = export.TFLiteModel(path).predict_raw(x)
    assert on_micro.dtype == np.int8 and np.abs(on_micro.astype(int) - on_litert).max() <= 1


def test_int8_sequence_of_unknown_length(tmp_path):
    """A KWinners over (batch, time, n) with the time axis unknown exports to
    int8 (LiteRT): at the calibrated length it gives the int8 outputs of the
    same layers exported with that length fixed, and at any length each
    position is computed on its own (a prefix gives the same outputs)."""
    rng = np.random.default_rng(1)
    data = rng.normal(size=(32, 5, 6)).astype(np.float32)
    layers = [keras.layers.Dense(6), ks.KWinners(0.5), keras.layers.Dense(4)]

    def exported(time, name):
        inputs = x = keras.Input((time, 6))
        for layer in layers:
            x = layer(x)
        return export.TFLiteModel(export.to_tflite(keras.Model(inputs, x), tmp_path / name,
                                                   quantize="int8", representative_data=data))

    unknown, fixed = exported(None, "unknown.tflite"), exported(5, "fixed.tflite")
    x = rng.normal(size=(3, 7, 6)).astype(np.float32)
    np.testing.assert_array_equal(unknown.predict_raw(x[:, :5]), fixed.predict_raw(x[:, :5]))
    got = unknown.predict_raw(x)
    assert got.shape == (3, 7, 4)
    np.testing.assert_array_equal(got[:, :5], fixed.predict_raw(x[:, :5]))
    np.testing.assert_array_equal(got[:, 5:], unknown.predict_raw(x[:, 5:]))


def _small_model():
    inputs = keras.Input((12,))
    return keras.Model(inputs, ks.KWinners(0.25)(keras.layers.Dense(12)(inputs)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(quantize="int4"), "`quantize` must be one of"),
    (dict(quantize="INT8"), "`quantize` must be one of"),
    (dict(target="arduino"), "`target` must be one of"),
    (dict(quantize="int8"), "needs `representative_data`"),
    (dict(quantize="int8", representative_data=np.zeros((4, 5), np.float32)), "must have shape \\(N >= 1, 12\\)"),
    (dict(quantize="int8", representative_data=np.zeros((0, 12), np.float32)), "must have shape"),
    (dict(quantize="int8", representative_data=np.full((4, 12), np.nan, np.float32)), "must be finite"),
    (dict(quantize=None, representative_data=np.zeros((4, 12), np.float32)), "calibrates quantize='int8' only"),
    (dict(quantize="dynamic", target="micro"), "no TFLite Micro kernels"),
    (dict(sparse_encoding="yes"), "`sparse_encoding` must be True, False or 'auto'"),
])
def test_bad_arguments_raise_and_leave_no_file(kwargs, message, tmp_path):
    path = tmp_path / "model.tflite"
    with pytest.raises(ValueError, match=message):
        export.to_tflite(_small_model(), path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_ops_the_target_lacks_raise_and_leave_no_file(tmp_path):
    inputs = keras.Input((12,))
    top3 = keras.layers.Lambda(lambda x: keras.ops.top_k(x, 3)[0])(keras.layers.Dense(12)(inputs))
    model = keras.Model(inputs, top3)
    with pytest.raises(ValueError, match=r"ops TFLite Micro lacks: \['TOPK_V2'\]"):
        export.to_tflite(model, tmp_path / "model.tflite", target="micro")
    assert list(tmp_path.iterdir()) == []
    export.to_tflite(model, tmp_path / "model.tflite")  # LiteRT has TOPK_V2
    assert "TOPK_V2" in export.tflite_op_names(tmp_path / "model.tflite")


def test_tflite_model_validates_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="`runtime` must be one of"):
        export.TFLiteModel(tmp_path / "x.tflite", runtime="gpu")
    with pytest.raises(ValueError, match="existing .tflite file"):
        export.TFLiteModel(tmp_path / "missing.tflite")
