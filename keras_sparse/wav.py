"""Reading WAV files: mono 16-bit PCM, checked, as float32 in [-1, 1]."""

import struct

import numpy as np

from keras_sparse._validation import check_int

_WAVE_FORMAT_PCM, _WAVE_FORMAT_EXTENSIBLE = 1, 0xFFFE


def _wav_chunks(data):
    """`(format, samples)` of a RIFF WAVE file's bytes: the `fmt ` fields
    `(tag, channels, rate, bits)` (the sub-format's tag for
    `WAVE_FORMAT_EXTENSIBLE`) and the bytes of its `data` chunk, which must
    hold every byte its header promises. Raises `ValueError` (the reason)."""
    if len(data) == 0:
        raise ValueError("empty or truncated file")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("no RIFF WAVE header")
    position, fmt = 12, None
    while position + 8 <= len(data):
        name, size = data[position:position + 4], struct.unpack_from("<I", data, position + 4)[0]
        body = data[position + 8:position + 8 + size]
        if name == b"fmt ":
            if len(body) < 16:
                raise ValueError("a truncated fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]  # the sub-format GUID's first field
            fmt = (tag, channels, rate, bits)
        elif name == b"data":
            if fmt is None:
                raise ValueError("the data chunk comes before the fmt chunk")
            if len(body) < size:
                raise ValueError(f"its header promises {size} bytes of audio, the file holds {len(body)} "
                                 "(a truncated file)")
            return fmt, body
        position += 8 + size + (size & 1)  # chunks are padded to an even size
    raise ValueError("no fmt chunk" if fmt is None else "no data chunk")


def read_wav(path, expected_rate=None):
    """Reads a mono 16-bit PCM WAV file (`WAVE_FORMAT_PCM` or
    `WAVE_FORMAT_EXTENSIBLE` with a PCM sub-format): returns
    `(waveform, sample_rate)`, the waveform float32 `int16 / 32768` in
    [-1, 1].

    Raises `ValueError` naming the file if it is not a readable WAV (empty,
    no RIFF header, a data chunk shorter than its header says, or cut
    mid-sample), has no frames, is not PCM, not mono, not 16-bit, or (when
    `expected_rate` is given) not sampled at `expected_rate` Hz.
    """
    if expected_rate is not None:
        check_int("expected_rate", expected_rate, 1)
    with open(path, "rb") as f:
        data = f.read()
    try:
        (tag, channels, rate, bits), samples = _wav_chunks(data)
    except (ValueError, struct.error) as e:
        raise ValueError(f"{path!s} is not a readable PCM WAV file ({e})") from None
    block = channels * ((bits + 7) // 8)
    problem = ("it has no audio frames" if len(samples) == 0 else
               f"it is not PCM (format tag {tag})" if tag != _WAVE_FORMAT_PCM else
               f"it has {channels} channels, expected 1 (mono)" if channels != 1 else
               f"it has {bits}-bit samples, expected 16-bit PCM" if bits != 16 else
               f"its {len(samples)} bytes of audio end mid-sample (2 bytes each)" if len(samples) % block else
               f"it is sampled at {rate} Hz, expected {expected_rate} Hz"
               if expected_rate is not None and rate != expected_rate else None)
    if problem:
        raise ValueError(f"Cannot use WAV file {path!s}: {problem}.")
    return np.frombuffer(samples, "<i2").astype(np.float32) / np.float32(32768.0), rate
