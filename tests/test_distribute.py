"""Duty cycles under tf.distribute (MirroredStrategy, MultiWorkerMirroredStrategy) see the global batch."""

import json
import os
import subprocess
import sys

import numpy as np

import keras_sparse as ks
from tests.conftest import REPO


def test_mirrored_replicas_agree_with_single_device_training():
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "scripts" / "distributed_duty_cycles.py")],
        capture_output=True, text=True, cwd=REPO, timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    states = json.loads(result.stdout)
    assert states["mirrored_replicas"] == 2
    for name in ("kw2d", "kw"):
        mirrored, single = states["mirrored"][name], states["single"][name]
        replica_0, replica_1 = (np.float32(d) for d in mirrored["duty_cycles"])
        np.testing.assert_array_equal(replica_0, replica_1)  # identical on both replicas
        assert mirrored["learning_iterations"] == [256, 256]
        assert single["learning_iterations"] == [256]
        np.testing.assert_allclose(replica_0, np.float32(single["duty_cycles"][0]), rtol=0, atol=1e-6)
        assert replica_0.max() > 0
    # RigL's masks (updated at steps 2, 4, 6) are one mask on both replicas,
    # with every unit's count kept and the kernel 0 outside it.
    initial = ks.layers.SparseDense(20, 0.5, seed=3).kernel_constraint.mask((216, 20))
    mask_0, mask_1 = (np.asarray(m, bool) for m in states["mirrored"]["sparse"]["mask"])
    np.testing.assert_array_equal(mask_0, mask_1)
    assert (mask_0 != initial).any() and (mask_0.sum(axis=0) == initial.sum(axis=0)).all()
    for kernel in states["mirrored"]["sparse"]["kernel"]:
        assert not np.asarray(kernel)[~mask_0].any()


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_duty_cycles_equal_one_device():
    """Two worker processes on 127.0.0.1 (`TF_CONFIG`), MultiWorkerMirroredStrategy,
    each with half of every global batch: after 8 training-mode steps both
    workers hold the duty cycles and learning iterations of one device that
    saw the whole batches (one all-reduce per step across the processes)."""
    script = str(REPO / "tests" / "scripts" / "multiworker_duty_cycles.py")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    ports = [str(_free_port()), str(_free_port())]
    workers = [subprocess.Popen([sys.executable, script, str(i), *ports], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    single = subprocess.run([sys.executable, script, "single"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    want = json.loads(single.stdout)
    for stdout, _ in outputs:
        got = json.loads(stdout)
        assert got["replicas"] == 2 and got["learning_iterations"] == want["learning_iterations"] == 256
        np.testing.assert_allclose(got["duty_cycles"], want["duty_cycles"], rtol=0, atol=1e-6)
        assert max(got["duty_cycles"]) > 0
