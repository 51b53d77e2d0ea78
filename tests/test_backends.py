"""Keras 3 everywhere: the backend-agnostic tests on JAX and PyTorch, with
TensorFlow made unimportable, and one model giving the same numbers on all three.

Each backend runs in a subprocess (the backend is fixed at `import keras`):

    KERAS_BACKEND=jax KERAS_SPARSE_BLOCK_TENSORFLOW=1 python -m pytest \\
        tests/test_selection.py tests/test_properties.py tests/test_layers.py tests/test_masking.py \\
        tests/test_quantization.py \\
        tests/test_kwinners.py::test_layers_agree_with_numpy_on_random_cases \\
        tests/test_models_any_backend.py \\
        tests/test_batch_sparsity.py tests/test_drop_connect.py \\
        tests/test_learned_sparsity.py::test_masks_are_the_same_on_every_backend ...

(`tensorflow_only` tests, SavedModel and TFLite, are skipped there.) Both
run fewer random cases than TensorFlow (`BUDGET`; JAX compiles every new shape).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

AGNOSTIC_TESTS = [
    "tests/test_selection.py",
    "tests/test_properties.py",
    "tests/test_layers.py",
    "tests/test_masking.py",
    "tests/test_quantization.py",
    "tests/test_kwinners.py::test_layers_agree_with_numpy_on_random_cases",
    "tests/test_kwinners.py::test_straight_through_gradient_trains_like_winners_but_passes_every_gradient",
    "tests/test_models_any_backend.py",
    "tests/test_batch_sparsity.py",
    "tests/test_drop_connect.py",
    # learned masks: the same masks, zeros, counts, gradients and resume on every backend
    "tests/test_learned_sparsity.py::test_masks_are_the_same_on_every_backend",
    "tests/test_learned_sparsity.py::test_zeros_outside_the_mask_after_every_step[adamw]",
    "tests/test_learned_sparsity.py::test_zeros_outside_the_mask_after_every_step[lion]",
    "tests/test_learned_sparsity.py::test_drop_and_grow_keeps_every_count_and_grows_zeros",
    "tests/test_learned_sparsity.py::test_dense_gradient_is_the_backend_autodiff_and_leaves_state_alone",
    "tests/test_learned_sparsity.py::test_resume_mid_schedule_is_bit_identical[magnitude]",
    "tests/test_learned_sparsity.py::test_bad_input_is_refused_and_changes_nothing",
]
BUDGET = {  # environment per backend: how many random cases
    # JAX compiles every new shape; both re-check what TensorFlow's run checks
    # in full (400 examples, 600 cases), so a sample keeps CI within budget.
    "jax": {"KERAS_SPARSE_HYPOTHESIS_EXAMPLES": "15", "KERAS_SPARSE_RANDOM_CASES": "10",
            "KERAS_SPARSE_HARNESS": "core"},
    "torch": {"KERAS_SPARSE_HYPOTHESIS_EXAMPLES": "60", "KERAS_SPARSE_RANDOM_CASES": "150"},
}


def _env(backend, **extra):
    return dict(os.environ, KERAS_BACKEND=backend, KERAS_SPARSE_BLOCK_TENSORFLOW="1",
                TF_CPP_MIN_LOG_LEVEL="3", **BUDGET[backend], **extra)


@pytest.fixture(scope="module")
def agnostic_runs(tmp_path_factory):
    """The JAX and PyTorch runs, started together: each is one process that
    mostly compiles or runs small ops on one core, so on CI's two cores they
    take the time of the longer one rather than of both. Output goes to files
    (a full pipe would stall a run while the other is awaited)."""
    logs = tmp_path_factory.mktemp("backends")
    # JAX compiles every new function; tests that build the same model again
    # (the harness' round trips and resumes) find it in a persistent cache,
    # written for this run only (the JAX run alone on CI's 2-core machine: 442 -> 358 s).
    # LLVM's optimization off: these tests compile far more than they run (the
    # JAX run alone, beside the unchanged one on the same machine: 477 -> 444 s).
    jax_cache = dict(JAX_COMPILATION_CACHE_DIR=str(logs / "jax_cache"), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                     JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
                     XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip())
    runs = {}
    for backend in ("jax", "torch"):
        out, err = open(logs / f"{backend}.out", "w+"), open(logs / f"{backend}.err", "w+")
        env = _env(backend, **(jax_cache if backend == "jax" else {}))
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *AGNOSTIC_TESTS],
                                cwd=REPO, env=env, stdout=out, stderr=err, text=True)
        runs[backend] = proc, out, err
    yield runs
    for proc, out, err in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
        err.close()


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_agnostic_tests_pass_without_tensorflow(backend, agnostic_runs):
    proc, out, err = agnostic_runs[backend]
    proc.wait(timeout=1800)
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read(), err.read()
    assert proc.returncode == 0, stdout[-5000:] + stderr[-3000:]
    assert " passed" in stdout and " failed" not in stdout


_SAME_MODEL = r"""
import json, os, sys
if os.environ.get("KERAS_SPARSE_BLOCK_TENSORFLOW") == "1":
    sys.modules["tensorflow"] = None  # any `import tensorflow` fails
import numpy as np
import keras
import keras_sparse as ks

keras.utils.set_random_seed(0)
inputs = keras.Input((8, 8, 2))
h = ks.layers.SparseConv2D(4, 3, sparsity=0.5, seed=1)(inputs)
h = ks.KWinners2D(0.2, boost_strength=1.5, boost_strength_factor=0.5)(h)
h = ks.layers.SparseDense(16, sparsity=0.7, seed=2)(keras.layers.Flatten()(h))
h = ks.KWinners(0.25, break_ties=True)(h)
model = keras.Model(inputs, keras.layers.Dense(3)(h))
try:  # the first run (TensorFlow) writes its initial weights, the others load them
    model.set_weights(list(np.load(sys.argv[1], allow_pickle=True)))
except FileNotFoundError:
    np.save(sys.argv[1], np.array(model.get_weights(), dtype=object), allow_pickle=True)
model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=sys.argv[3] == "jit")
rng = np.random.default_rng(0)
x = np.round(rng.normal(size=(64, 8, 8, 2)) * 4).astype("float32") / 4  # ties
y = rng.integers(0, 3, 64)
model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
          callbacks=[ks.callbacks.UpdateBoostStrength()])
out = {"predict": model.predict(x, verbose=0).tolist(),
       "weights": {w.path: np.asarray(w).astype("float64").tolist() for w in model.weights}}
json.dump(out, open(sys.argv[2], "w"))
"""


def test_one_model_gives_the_same_numbers_on_every_backend(tmp_path):
    """Same initial weights and data, two epochs of `fit` (XLA on JAX, eager
    graphs on TensorFlow and PyTorch): the k-winners state (duty cycles, boost
    strength, learning iterations) and the sparse-weight masks are identical on
    every backend; weights and predictions agree to float32 rounding (1e-5),
    which is all the convolutions and matmuls of different libraries promise."""
    script = tmp_path / "same_model.py"
    script.write_text(_SAME_MODEL)
    initial = tmp_path / "initial.npy"
    results = {}
    for backend, mode in (("tensorflow", "eager"), ("jax", "jit"), ("torch", "eager")):
        if backend == "tensorflow":
            env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
        else:
            env = _env(backend)
        out = tmp_path / f"{backend}.json"
        proc = subprocess.run([sys.executable, str(script), str(initial), str(out), mode], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[backend] = json.loads(out.read_text())
    reference = results["tensorflow"]
    for backend in ("jax", "torch"):
        weights = results[backend]["weights"]
        assert sorted(weights) == sorted(reference["weights"])
        for path, want in reference["weights"].items():
            want, got = np.asarray(want), np.asarray(weights[path])
            if path.endswith(("boost_strength", "learning_iterations", "duty_cycles")):
                np.testing.assert_array_equal(got, want, err_msg=f"{backend}: {path}")
            else:
                np.testing.assert_array_equal(got == 0, want == 0, err_msg=f"{backend}: {path}")  # masks
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f"{backend}: {path}")
        np.testing.assert_allclose(results[backend]["predict"], reference["predict"], rtol=0, atol=1e-5)


_DATA_PARALLEL = r"""
import json, sys
sys.modules["tensorflow"] = None
import jax
import numpy as np
import keras
import keras_sparse as ks

assert len(jax.devices()) == 2, jax.devices()
if sys.argv[1] == "data_parallel":
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
keras.utils.set_random_seed(0)
inputs = keras.Input((12,))
h = ks.KWinners(0.25, duty_cycle_period=50, name="kw")(keras.layers.Dense(16)(inputs))
model = keras.Model(inputs, keras.layers.Dense(3)(h))
model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
rng = np.random.default_rng(0)
model.fit(rng.normal(size=(64, 12)).astype("float32"), rng.integers(0, 3, 64), batch_size=16, epochs=2,
          shuffle=False, verbose=0)
layer = model.get_layer("kw")
print(json.dumps([np.asarray(layer.duty_cycles).tolist(), int(np.asarray(layer.learning_iterations))]))
"""


def test_jax_data_parallel_duty_cycles_equal_one_device():
    """`keras.distribution.DataParallel` on two (host) devices: each step's batch
    is split between them, and XLA's partitioner turns the duty-cycle counts
    into global sums, so duty cycles and learning iterations equal a
    single-device run on the same global batches."""
    env = _env("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    results = {}
    for mode in ("single_device", "data_parallel"):
        proc = subprocess.run([sys.executable, "-c", _DATA_PARALLEL, mode], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["data_parallel"] == results["single_device"]
    assert results["data_parallel"][1] == 128 and sum(results["data_parallel"][0]) > 0
