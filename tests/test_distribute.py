"""Duty cycles under tf.distribute.MirroredStrategy see the global batch."""

import json
import os
import subprocess
import sys

import numpy as np

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
