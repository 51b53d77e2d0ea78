import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def mnist_dir():
    """Real MNIST: $KERAS_SPARSE_MNIST, else ../shared/datasets/mnist beside the repo."""
    return pathlib.Path(
        os.environ.get("KERAS_SPARSE_MNIST", REPO.parent / "shared" / "datasets" / "mnist")
    )


@pytest.fixture(scope="session")
def mnist():
    path = mnist_dir() / "mnist.npz"
    if not path.exists():
        pytest.fail(f"real MNIST not found at {path}; set KERAS_SPARSE_MNIST")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
