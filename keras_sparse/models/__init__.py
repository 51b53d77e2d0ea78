"""The networks of Ahmad & Scheinkman (2019) as plain Keras models, and tools
for trained models.

- `keras_sparse.models.mnist`: MNIST Dense/Sparse CNN-1/2 (paper Table 1).
- `keras_sparse.models.speech`: speech Dense, Sparse and Super-Sparse CNN-2
  (paper Table 2), and `waveform_model` for raw-audio input.
- `keras_sparse.models.trained`: `with_k_inference_factor`, `ensemble`.
- `keras_sparse.models.controls`: Sparse and Dense CNN-2 with one change each,
  the controls of the paper's MNIST claims (`build_control`, docs/controls.md).
- `keras_sparse.models._cnn`: the shared skeleton and initializers.

Every builder is importable from here: `keras_sparse.models.mnist_sparse_cnn2()`.
"""

from keras_sparse.models._cnn import BOOST_STRENGTH, DUTY_CYCLE_PERIOD, INITIALIZERS, K_INFERENCE_FACTOR
from keras_sparse.models.controls import CONTROL_NETWORKS, build_control
from keras_sparse.models.mnist import (
    BUILDERS, MNIST_BATCH_SIZE, MNIST_BOOST_STRENGTH_FACTOR, MNIST_LR_DECAY, MNIST_NETWORKS,
    build_mnist, mnist_dense_cnn1, mnist_dense_cnn2, mnist_sparse_cnn, mnist_sparse_cnn1,
    mnist_sparse_cnn2, mnist_sparse_cnn2_small, mnist_sparse_cnn2_small_local, mnist_sparse_cnn2_small_relu1,
    mnist_sparse_cnn2_wide,
)
from keras_sparse.models.speech import (
    SPEECH_BOOST_STRENGTH_FACTOR, SPEECH_BUILDERS, SPEECH_NETWORKS, SPEECH_WEIGHT_DECAY,
    build_speech, gsc_dense_cnn2, gsc_dense_cnn2_dropout, gsc_sparse_cnn2, gsc_sparse_cnn2_small,
    gsc_sparse_cnn2_small_relu1, gsc_super_sparse_cnn2, waveform_model,
)
from keras_sparse.models.trained import ensemble, with_k_inference_factor
