"""Spoken-digit audio for the paper's Google Speech Commands experiment (docs/speech.md).

Features: the reference code's librosa recipe, rebuilt from `keras.ops` so it
runs inside a model (and in TFLite) on raw 16 kHz audio:

    x      = waveform, exactly 16,000 samples in [-1, 1]
    X      = STFT(x): n_fft 2048, hop 512, periodic Hann window, centred
             frames (reflect padding of n_fft // 2 on both sides) -> 32 frames
    S      = mel_filterbank(16000, 2048, 32) @ |X|^2          # (32 mels, 32 frames)
    db     = 10 log10(max(amin, S) / max(amin, max(S)))      # max exactly 0 dB
    output = max(db, max(db) - top_db)                        # max over one clip

This is librosa 0.6's `power_to_db(melspectrogram(y, sr=16000, n_fft=2048,
hop_length=512, n_mels=32), ref=np.max, amin=1e-10, top_db=80)`. librosa >= 0.10
pads with zeros by default: compare with `melspectrogram(..., pad_mode="reflect")`.
Measured against librosa in float64 on the 3,000 FSDD and 440 Speech Commands
clips: at most ~6e-4 dB apart in float32 (in bands ~80 dB below a clip's
peak), 5e-7 dB in float64; the TFLite conversion within 2e-5 dB of Keras.

Clips: `fix_length`, `resample` and `stack_clips`, which the loaders of
`keras_sparse.datasets` (FSDD, Speech Commands) use; WAV files are read by
`keras_sparse.wav`. (`audio.load_fsdd`, `audio.read_wav` and the other names
that lived here before still resolve, to those modules.)
"""

import keras
import numpy as np
from keras import ops

from keras_sparse._validation import check_equal_lengths, check_float, check_int

SAMPLE_RATE = 16000

# Names that lived here before the datasets package and `wav` (module: name).
_MOVED = {"DIGITS": "keras_sparse.datasets.speech_commands",
          "SPEECH_COMMANDS_ENV_VAR": "keras_sparse.datasets.speech_commands",
          "SPEECH_COMMANDS_V001_URL": "keras_sparse.datasets.speech_commands",
          "load_speech_commands_v001": "keras_sparse.datasets.speech_commands",
          "load_speech_commands_tfds": "keras_sparse.datasets.speech_commands",
          "FSDD_ENV_VAR": "keras_sparse.datasets.fsdd", "load_fsdd": "keras_sparse.datasets.fsdd",
          "read_wav": "keras_sparse.wav"}


def __getattr__(name):
    """`audio.load_fsdd` & co., from where they live now (imported on use:
    the layer `LogMelSpectrogram` needs no loader)."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'keras_sparse.audio' has no attribute {name!r}")


# ----------------------------------------------------------------- features


def _hz_to_mel(hz):
    # Slaney: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
    hz = np.asarray(hz, np.float64)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-300) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, hz * 3.0 / 200.0)


def _mel_to_hz(mel):
    mel = np.asarray(mel, np.float64)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, mel * 200.0 / 3.0)


def mel_filterbank(sample_rate, n_fft, n_mels, fmin=0.0, fmax=None):
    """The Slaney mel filter bank (librosa's default), float64 `(n_mels, n_fft // 2 + 1)`.

    Slaney mel scale: `mel(f) = 3 f / 200` for `f < 1000 Hz`, and
    `mel(f) = 15 + 27 ln(f / 1000) / ln(6.4)` above. The band edges
    `f_0 < f_1 < ... < f_{n_mels + 1}` are equally spaced on that scale from
    `fmin` to `fmax`; band `m` is a triangle over the FFT bin frequencies
    `f = k * sample_rate / n_fft` (`k = 0 .. n_fft // 2`):

        w_m(f) = max(0, min((f - f_m) / (f_{m+1} - f_m), (f_{m+2} - f) / (f_{m+2} - f_{m+1})))

    scaled to unit area ("Slaney" normalisation) by `2 / (f_{m+2} - f_m)`.

    Args:
        sample_rate: sampling rate in Hz, >= 1.
        n_fft: FFT length, >= 2.
        n_mels: number of bands, >= 1.
        fmin: lowest band edge in Hz, in [0, fmax).
        fmax: highest band edge in Hz, in (fmin, sample_rate / 2]; None means
            `sample_rate / 2`.
    """
    sample_rate = check_int("sample_rate", sample_rate, 1)
    n_fft = check_int("n_fft", n_fft, 2)
    n_mels = check_int("n_mels", n_mels, 1)
    nyquist = sample_rate / 2.0
    fmax = nyquist if fmax is None else check_float("fmax", fmax, 0, nyquist, low_open=True)
    fmin = check_float("fmin", fmin, 0, fmax, high_open=True)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    bins = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    widths = np.diff(edges)
    rising = (bins[None, :] - edges[:-2, None]) / widths[:-1, None]
    falling = (edges[2:, None] - bins[None, :]) / widths[1:, None]
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    return triangles * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def _check_feature_args(sample_rate, n_fft, hop_length, n_mels, amin, top_db):
    check_int("sample_rate", sample_rate, 1)
    check_int("n_fft", n_fft, 2)
    check_int("hop_length", hop_length, 1)
    check_int("n_mels", n_mels, 1)
    check_float("amin", amin, 0, None, low_open=True)
    if top_db is not None:
        check_float("top_db", top_db, 0, None, low_open=True)


def _dft_matrices(n_fft):
    """`n1, n2` with `n_fft = n1 * n2` (n1 the largest divisor <= sqrt) and the complex
    matrices of a two-step (Cooley-Tukey) DFT, in float64 (see `_stft_power`)."""
    n1 = max(d for d in range(1, int(np.sqrt(n_fft)) + 1) if n_fft % d == 0)
    n2 = n_fft // n1
    first = np.exp(-2j * np.pi * np.outer(np.arange(n1), np.arange(n1)) / n1)  # (k1, n1)
    twiddle = np.exp(-2j * np.pi * np.outer(np.arange(n1), np.arange(n2)) / n_fft)  # (k1, n2)
    second = np.exp(-2j * np.pi * np.outer(np.arange(n2), np.arange(n2 // 2 + 1)) / n2)  # (n2, k2)
    return n1, n2, first, twiddle, second


def _frames(x, n_fft, hop_length):
    """Frames `(..., frames, n_fft)` of `x` `(..., samples)` reflect-padded by n_fft // 2."""
    x = ops.pad(x, [(0, 0)] * (len(x.shape) - 1) + [(n_fft // 2, n_fft // 2)], mode="reflect")
    frames = 1 + (x.shape[-1] - n_fft) // hop_length
    if n_fft % hop_length:  # a gather of every frame's samples
        index = np.arange(frames)[:, None] * hop_length + np.arange(n_fft)
        return ops.take(x, index.astype("int32"), axis=-1)
    r = n_fft // hop_length  # frame t is blocks t .. t + r - 1 of hop_length samples
    blocks = x[..., : (frames + r - 1) * hop_length]
    blocks = ops.reshape(blocks, tuple(ops.shape(x)[:-1]) + (frames + r - 1, hop_length))
    return ops.concatenate([blocks[..., i : i + frames, :] for i in range(r)], axis=-1)


def _stft_power(x, n_fft, hop_length):
    """`|STFT(x)|^2`, `(..., samples)` -> `(..., frames, n_fft // 2 + 1)`, centred
    frames (reflect padding), periodic Hann window `w[n] = 0.5 - 0.5 cos(2 pi n / n_fft)`.

    The DFT of a frame `a[n]`, `X[k] = sum_n a[n] exp(-2 pi i n k / n_fft)`, is
    computed in two matmul steps (Cooley-Tukey) with `n_fft = n1 * n2`,
    `n = n2 p + q` and `k = k1 + n1 k2`:

        Y[k1, q] = sum_p a[n2 p + q] exp(-2 pi i p k1 / n1)                  # n2 DFTs of length n1
        X[k]     = sum_q Y[k1, q] exp(-2 pi i q k1 / n_fft) exp(-2 pi i q k2 / n2)

    where `k2 <= n2 // 2` covers every `k <= n_fft / 2`. For 2048 = 32 x 64
    that is ~2.5x slower than `keras.ops.stft` in TensorFlow (0.5 vs 0.2 ms
    per 1-s clip on a CPU) but accurate to float32 rounding (TensorFlow's
    float32 FFT kernel is off by up to 1.2e-3 dB in the bands ~80 dB below a
    clip's peak), the same on every backend, and TFLite builtins only
    (BATCH_MATMUL, no complex tensors; 0.3 ms per clip, half RFFT2D's time).
    """
    dtype = x.dtype
    n1, n2, *matrices = _dft_matrices(n_fft)
    (fr, fi), (tr, ti), (sr, si) = [
        (ops.convert_to_tensor(m.real, dtype), ops.convert_to_tensor(m.imag, dtype))
        for m in matrices
    ]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    a = _frames(x, n_fft, hop_length) * ops.convert_to_tensor(window, dtype)
    a = ops.reshape(a, tuple(ops.shape(a)[:-1]) + (n1, n2))  # (..., frames, p, q)
    yr, yi = ops.matmul(fr, a), ops.matmul(fi, a)  # (..., frames, k1, q)
    zr, zi = yr * tr - yi * ti, yr * ti + yi * tr
    xr = ops.matmul(zr, sr) - ops.matmul(zi, si)  # (..., frames, k1, k2)
    xi = ops.matmul(zr, si) + ops.matmul(zi, sr)
    power = ops.swapaxes(xr * xr + xi * xi, -1, -2)  # (..., frames, k2, k1): k in order
    power = ops.reshape(power, tuple(ops.shape(power)[:-2]) + (n1 * (n2 // 2 + 1),))
    return power[..., : n_fft // 2 + 1]


def log_mel_spectrogram(waveforms, sample_rate=SAMPLE_RATE, n_fft=2048, hop_length=512,
                        n_mels=32, amin=1e-10, top_db=80.0):
    """Log-mel spectrogram in dB: waveforms `(..., samples)` -> `(..., n_mels, frames, 1)`.

    `frames = 1 + samples // hop_length` (32 for one second at 16 kHz);
    `samples` must be static and exceed `n_fft // 2` (the reflect padding).
    The math is the module docstring's, in the input's precision (float64
    stays float64, anything else is computed in float32). The reference
    level is the largest band of each clip, so each clip's maximum is 0 dB;
    `top_db=None` skips the floor. An all-zero clip gives 0 dB everywhere
    (every band is `amin`, and so is the reference).

    A clip holding a NaN or infinite sample comes out NaN everywhere, on
    every runtime; other clips are unaffected. The features add each clip's
    `sum(samples * 0)`, which is 0 for a finite clip (the result bit-equal)
    and NaN otherwise: the STFT alone would not carry it, since TFLite's
    MAXIMUM drops NaN (there the clip came out finite, meaningless and
    CPU-dependent).

    Args:
        waveforms: float array `(..., samples)`, 16 kHz audio in [-1, 1].
        sample_rate, n_fft, hop_length, n_mels, amin, top_db: see `LogMelSpectrogram`.
    """
    _check_feature_args(sample_rate, n_fft, hop_length, n_mels, amin, top_db)
    x = ops.convert_to_tensor(check_equal_lengths("waveforms", waveforms))
    x = ops.cast(x, "float64" if x.dtype == "float64" else "float32")
    if len(x.shape) < 1 or x.shape[-1] is None or x.shape[-1] <= n_fft // 2:
        raise ValueError(f"`waveforms` must have a static last axis of more than n_fft // 2 = "
                         f"{n_fft // 2} samples (reflect padding). Received shape={tuple(x.shape)}")
    power = _stft_power(x, n_fft, hop_length)  # (..., frames, n_fft // 2 + 1)
    weights = ops.convert_to_tensor(mel_filterbank(sample_rate, n_fft, n_mels).T, x.dtype)
    mel = ops.swapaxes(ops.matmul(power, weights), -1, -2)  # (..., n_mels, frames)
    ref = ops.maximum(ops.max(mel, axis=(-2, -1), keepdims=True), amin)
    db = ops.log(ops.maximum(mel, amin) / ref) * (10.0 / np.log(10.0))  # 0 dB exactly at the max
    if top_db is not None:
        db = ops.maximum(db, ops.max(db, axis=(-2, -1), keepdims=True) - top_db)
    nan_unless_finite = ops.sum(x * 0.0, axis=-1)[..., None, None]  # per clip: 0, or NaN
    return ops.expand_dims(db + nan_unless_finite, -1)


@keras.saving.register_keras_serializable(package="keras_sparse")
class LogMelSpectrogram(keras.layers.Layer):
    """The paper's log-mel features as a layer: `(batch, samples)` -> `(batch, n_mels, frames, 1)`.

    With the defaults, raw 16 kHz one-second clips `(batch, 16000)` in [-1, 1]
    become `(batch, 32, 32, 1)` dB images (mels x frames, librosa's layout,
    0 dB maximum per clip): see `log_mel_spectrogram` for the math. No weights.
    Computes in float64 with `dtype="float64"`, otherwise in float32 (inputs
    are not autocast, so mixed-precision policies keep float32 features).

    Args:
        sample_rate: Hz, >= 1 (sets the mel band frequencies).
        n_fft: STFT frame and FFT length, >= 2.
        hop_length: samples between frames, >= 1.
        n_mels: mel bands, >= 1.
        amin: floor on the power before the log, > 0.
        top_db: dynamic range kept below each clip's maximum, > 0, or None.

    Input shape:
        `(batch, samples)` float waveforms.

    Output shape:
        `(batch, n_mels, 1 + samples // hop_length, 1)`.

    Example:

    >>> import numpy as np
    >>> tuple(LogMelSpectrogram()(np.zeros((2, 16000), "float32")).shape)
    (2, 32, 32, 1)
    """

    def __init__(self, *, sample_rate=SAMPLE_RATE, n_fft=2048, hop_length=512, n_mels=32,
                 amin=1e-10, top_db=80.0, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        _check_feature_args(sample_rate, n_fft, hop_length, n_mels, amin, top_db)
        self.sample_rate, self.n_fft = int(sample_rate), int(n_fft)
        self.hop_length, self.n_mels, self.amin = int(hop_length), int(n_mels), float(amin)
        self.top_db = None if top_db is None else float(top_db)

    def call(self, inputs):
        inputs = ops.cast(inputs, "float64" if self.compute_dtype == "float64" else "float32")
        return log_mel_spectrogram(inputs, self.sample_rate, self.n_fft, self.hop_length,
                                   self.n_mels, self.amin, self.top_db)

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else 1 + samples // self.hop_length
        return tuple(input_shape[:-1]) + (self.n_mels, frames, 1)

    def get_config(self):
        config = super().get_config()
        config.update(sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length,
                      n_mels=self.n_mels, amin=self.amin, top_db=self.top_db)
        return config


# -------------------------------------------------------------- clips


def fix_length(waveform, length=SAMPLE_RATE):
    """Pads `waveform` (1-D) with zeros at the end, or cuts it, to exactly
    `length` samples. Like the paper's code, a clip longer than `length`
    keeps its beginning (its first second at the default length)."""
    length = check_int("length", length, 1)
    waveform = np.asarray(waveform)
    if waveform.ndim != 1:
        raise ValueError(f"`waveform` must be 1-D. Received shape={waveform.shape}")
    return np.pad(waveform[:length], (0, max(0, length - waveform.shape[0])))


def resample(waveform, orig_rate, target_rate):
    """Band-limited polyphase resampling of a 1-D waveform (`scipy.signal.resample_poly`
    with `up = target_rate / g`, `down = orig_rate / g`, `g = gcd`; Kaiser-windowed
    low-pass filter): `ceil(len * up / down)` samples, float32."""
    from scipy.signal import resample_poly

    orig_rate = check_int("orig_rate", orig_rate, 1)
    target_rate = check_int("target_rate", target_rate, 1)
    waveform = np.asarray(waveform, np.float32)
    if waveform.ndim != 1:
        raise ValueError(f"`waveform` must be 1-D. Received shape={waveform.shape}")
    if orig_rate == target_rate:
        return waveform.copy()
    g = np.gcd(orig_rate, target_rate)
    return resample_poly(waveform, target_rate // g, orig_rate // g).astype(np.float32)


def stack_clips(items):
    """`[(waveform, label, path)]` -> `(float32 (N, 16000), int64 (N,), [path])`,
    each waveform padded or cut to 16,000 samples (`fix_length`)."""
    waveforms = np.zeros((len(items), SAMPLE_RATE), np.float32)
    for i, (w, _, _) in enumerate(items):
        waveforms[i] = fix_length(w)
    return waveforms, np.array([label for _, label, _ in items], np.int64), [p for _, _, p in items]
