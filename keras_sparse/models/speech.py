"""The paper's speech networks (Table 2: Google Speech Commands, ten digit words),
input a `(32, 32, 1)` log-mel spectrogram (`keras_sparse.audio.LogMelSpectrogram`):

    [Conv2D(64, 5x5) -> BatchNorm(no affine) -> MaxPool2D(2x2) -> activation] x 2
    -> Flatten -> Dense(hidden) -> BatchNorm(no affine) -> activation -> Dense(10)

| network            | conv activation               | hidden (activation) | hidden weights |
|--------------------|-------------------------------|---------------------|----------------|
| Dense CNN-2        | ReLU, ReLU                    | 1000 (ReLU)         | dense          |
| Sparse CNN-2       | k = 1200 of 12,544, 200/1,600 | 1000 (k = 100)      | 40% non-zero   |
| Super-Sparse CNN-2 | k = 1200 of 12,544, 200/1,600 | 1500 (k = 100)      | 10% non-zero   |

The paper's Table 2 also has Dense CNN-2 with dropout 0.5 after the hidden
ReLU, trained as Dense CNN-2 (`dense_cnn2_dropout`; a control of the
paper's claims, docs/controls.md).

Beyond the paper, for inference speed (32, 32 filters; hidden 1000 (k = 100),
40% non-zero; `k_inference_factor` 1.0): Sparse CNN-2 small (k = 600 of
6,272, 100 of 800) and Sparse CNN-2 small, ReLU conv-1 (ReLU, k = 100 of 800).

Every kernel and bias carries the paper's PyTorch-style weight decay 0.01
(`keras_sparse.models._cnn`); the boost strength decays by 0.9 per epoch.
`waveform_model` puts the features inside a model, so that it takes raw audio.
"""

import keras

from keras_sparse._validation import check_float
from keras_sparse.models._cnn import K_INFERENCE_FACTOR, cnn, network_builder

# The reference configuration (docs/speech.md, "The paper's protocol") and the paper's results (mean ± sd, 10 seeds,
# on GSC's 2,552 test clips: noise scores out of 11 * 2,552 = 28,072).
SPEECH_NETWORKS = {
    "dense_cnn2": dict(
        title="Dense CNN-2", lr=0.01, lr_decay=0.8, momentum=0.9, batch_size=64, epochs=20,
        paper_accuracy=(96.37, 0.37), paper_noise_score=(8730, 471),
    ),
    "sparse_cnn2": dict(
        title="Sparse CNN-2", lr=0.01, lr_decay=0.9, momentum=0.0, batch_size=16, epochs=30,
        paper_accuracy=(96.65, 0.21), paper_noise_score=(11233, 1013),
    ),
    "super_sparse_cnn2": dict(
        title="Super-Sparse CNN-2", lr=0.01, lr_decay=0.9, momentum=0.0, batch_size=16, epochs=25,
        paper_accuracy=(96.57, 0.16), paper_noise_score=(10752, 942),
    ),
}
# Ours, for inference speed (no paper numbers): a quarter of the conv
# multiplies, trained exactly as Sparse CNN-2.
SPEECH_NETWORKS.update({
    name: {**SPEECH_NETWORKS["sparse_cnn2"], "title": title, "paper_accuracy": None, "paper_noise_score": None}
    for name, title in (("sparse_cnn2_small", "Sparse CNN-2 small (ours, for speed)"),
                        ("sparse_cnn2_small_relu1", "Sparse CNN-2 small, ReLU conv-1 (ours, for speed)"))
})
# The paper's second dense row, and a control of its claims: Dense CNN-2
# (which already has Sparse CNN-2's sizes, batch norm and L2) with dropout
# 0.5 as well, trained as Dense CNN-2.
SPEECH_NETWORKS["dense_cnn2_dropout"] = {
    **SPEECH_NETWORKS["dense_cnn2"], "title": "Dense CNN-2 with dropout 0.5", "paper_accuracy": (95.69, 0.48),
    "paper_noise_score": (7681, 368)}
SPEECH_CONTROL_DROPOUT = 0.5
SPEECH_WEIGHT_DECAY = 0.01
SPEECH_BOOST_STRENGTH_FACTOR = 0.9
SPEECH_INPUT_SHAPE = (32, 32, 1)
WAVEFORM_SAMPLES = 16000  # 1 s at 16 kHz


def _dense_cnn2(name, initializer, weight_decay, dropout=0.0):
    return cnn(name, SPEECH_INPUT_SHAPE, [64, 64], None, 1000, None, None,
               initializer, SPEECH_BOOST_STRENGTH_FACTOR, True, weight_decay=weight_decay, dropout=dropout)


def gsc_dense_cnn2(initializer="pytorch", weight_decay=SPEECH_WEIGHT_DECAY):
    """Speech Dense CNN-2: 2 x [Conv(64) -> BN -> pool -> ReLU]
    -> Dense(1000) -> BN -> ReLU -> Dense(10)."""
    return _dense_cnn2("gsc_dense_cnn2", initializer, weight_decay)


def gsc_dense_cnn2_dropout(initializer="pytorch", weight_decay=SPEECH_WEIGHT_DECAY):
    """Speech Dense CNN-2 with dropout, the paper's second dense row (and a
    control, docs/controls.md): ... -> Dense(1000) -> BN -> ReLU ->
    Dropout(0.5) -> Dense(10)."""
    return _dense_cnn2("gsc_dense_cnn2_dropout", initializer, weight_decay, SPEECH_CONTROL_DROPOUT)


def gsc_sparse_cnn2(initializer="pytorch", k_inference_factor=K_INFERENCE_FACTOR,
                    weight_decay=SPEECH_WEIGHT_DECAY, hidden_block=None):
    """Speech Sparse CNN-2: k = 1200 of 12,544 and 200 of 1,600 after the convs;
    SparseDense(1000, 40% non-zero) -> BN -> k-winners (100 of 1000) -> Dense(10)."""
    return cnn("gsc_sparse_cnn2", SPEECH_INPUT_SHAPE, [64, 64], [1200, 200], 1000, 100, 0.6,
               initializer, SPEECH_BOOST_STRENGTH_FACTOR, True, k_inference_factor,
               weight_decay=weight_decay, hidden_block=hidden_block)


def gsc_super_sparse_cnn2(initializer="pytorch", k_inference_factor=K_INFERENCE_FACTOR,
                          weight_decay=SPEECH_WEIGHT_DECAY, hidden_block=None):
    """Speech Super-Sparse CNN-2: as Sparse CNN-2 with SparseDense(1500, 10% non-zero)
    -> BN -> k-winners (100 of 1500). `hidden_block` (e.g. `(1, 16)`): its
    weights kept in whole blocks, beyond the paper."""
    return cnn("gsc_super_sparse_cnn2", SPEECH_INPUT_SHAPE, [64, 64], [1200, 200], 1500, 100,
               0.9, initializer, SPEECH_BOOST_STRENGTH_FACTOR, True, k_inference_factor,
               weight_decay=weight_decay, hidden_block=hidden_block)


def gsc_sparse_cnn2_small(initializer="pytorch", k_inference_factor=1.0,
                          weight_decay=SPEECH_WEIGHT_DECAY, hidden_block=None):
    """Beyond the paper, for inference speed: Conv(32) -> BN -> pool ->
    k-winners (600 of 6,272) -> Conv(32) -> BN -> pool -> k-winners (100 of
    800) -> SparseDense(1000, 40% non-zero) -> BN -> k-winners (100 of 1000)
    -> Dense(10): Sparse CNN-2's activity per layer (9.6%, 12.5%, 10%) at a
    quarter of its conv multiplies; `k_inference_factor` 1.0 by default."""
    return cnn("gsc_sparse_cnn2_small", SPEECH_INPUT_SHAPE, [32, 32], [600, 100], 1000, 100, 0.6,
               initializer, SPEECH_BOOST_STRENGTH_FACTOR, True, k_inference_factor,
               weight_decay=weight_decay, hidden_block=hidden_block)


def gsc_sparse_cnn2_small_relu1(initializer="pytorch", k_inference_factor=1.0,
                                weight_decay=SPEECH_WEIGHT_DECAY, hidden_block=None):
    """Beyond the paper, for inference speed: Conv(32) -> BN -> pool -> ReLU
    -> Conv(32) -> BN -> pool -> k-winners (100 of 800, Sparse CNN-2's 12.5%)
    -> SparseDense(1000, 40% non-zero) -> BN -> k-winners (100 of 1000) ->
    Dense(10); `k_inference_factor` 1.0 by default. A quarter of Sparse
    CNN-2's conv multiplies and no k-winners over conv-1's 12,544 values."""
    return cnn("gsc_sparse_cnn2_small_relu1", SPEECH_INPUT_SHAPE, [32, 32], [None, 100], 1000, 100, 0.6,
               initializer, SPEECH_BOOST_STRENGTH_FACTOR, True, k_inference_factor,
               weight_decay=weight_decay, hidden_block=hidden_block)


SPEECH_BUILDERS = {
    "dense_cnn2": gsc_dense_cnn2,
    "dense_cnn2_dropout": gsc_dense_cnn2_dropout,
    "sparse_cnn2": gsc_sparse_cnn2,
    "super_sparse_cnn2": gsc_super_sparse_cnn2,
    "sparse_cnn2_small": gsc_sparse_cnn2_small,
    "sparse_cnn2_small_relu1": gsc_sparse_cnn2_small_relu1,
}


def build_speech(network, initializer="pytorch", k_inference_factor=None,
                 weight_decay=SPEECH_WEIGHT_DECAY, hidden_block=None):
    """Builds the speech network named `network` (a key of `SPEECH_NETWORKS`);
    the dense networks have no k-winners layer and ignore `k_inference_factor`
    (None: the network's own default, that of its `gsc_*` function: 1.5 for
    the paper's networks, 1.0 for the speed networks);
    `hidden_block` keeps the sparse networks' hidden weights in whole blocks
    (a `ValueError` for the dense networks)."""
    builder = network_builder(SPEECH_BUILDERS, network, k_inference_factor, hidden_block)
    if network.startswith("dense"):
        return builder(initializer, weight_decay)
    own_default = {} if k_inference_factor is None else dict(k_inference_factor=k_inference_factor)
    return builder(initializer, weight_decay=weight_decay, hidden_block=hidden_block, **own_default)


def waveform_model(spectrogram_model, name=None):
    """`spectrogram_model` behind the paper's features: one model from raw audio,

        waveform (batch, 16000), 16 kHz in [-1, 1]
          -> LogMelSpectrogram() -> (batch, 32, 32, 1) dB -> spectrogram_model

    sharing `spectrogram_model`'s layers (weights and k-winners state), not
    its compiled optimizer; it saves as `.keras` and exports like any Keras
    model.
    """
    from keras_sparse.audio import LogMelSpectrogram

    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"`name` must be None or a non-empty string. Received: name={name!r}")
    if not isinstance(spectrogram_model, keras.Model) or not spectrogram_model.built:
        raise ValueError(
            f"`spectrogram_model` must be a built Keras model. Received: {spectrogram_model!r}"
        )
    if tuple(spectrogram_model.input_shape[1:]) != SPEECH_INPUT_SHAPE:
        raise ValueError(
            f"`spectrogram_model` must take {SPEECH_INPUT_SHAPE} spectrograms. "
            f"Received a model with input shape {spectrogram_model.input_shape}"
        )
    if getattr(spectrogram_model, "inputs", None):
        # A new graph over the same layers: the optimizer of a compiled
        # `spectrogram_model` stays out of the raw-audio model and its files.
        spectrogram_model = keras.Model(spectrogram_model.input, spectrogram_model.output,
                                        name=spectrogram_model.name)
    features = LogMelSpectrogram(name="log_mel_spectrogram")
    waveform = keras.Input((WAVEFORM_SAMPLES,), name="waveform")
    outputs = spectrogram_model(features(waveform))
    return keras.Model(waveform, outputs, name=name or f"{spectrogram_model.name}_waveform")
