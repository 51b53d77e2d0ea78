"""How the benchmarks time things: the CPU's name, the median time of repeated
calls (a kernel, a model, loading a file) and, for TFLite, batch-1 latency
measured in interleaved blocks, so that background load on a shared machine
hits every model alike."""

import platform
import statistics
import time

BLOCK = 100


def cpu_name():
    """The CPU's model name (`/proc/cpuinfo`), else `platform.processor()`."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def load_litert(path, threads=1):
    """A LiteRT interpreter (default delegates) for the file at `path`, allocated."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def median_ms(function, repeats=20, warmup=0):
    """Median wall time of `function()` over `repeats` calls, in milliseconds,
    after `warmup` untimed calls (tracing, compiling, caches)."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def interleaved_medians_ms(functions, repeats=20, warmup=2):
    """Median wall time in milliseconds of each zero-argument callable in
    `functions` (`{name: callable}`), after `warmup` untimed calls each
    (tracing, compiling); then they take turns one call at a time, `repeats`
    rounds, so that background load on a shared machine hits them alike.
    Returns `{name: milliseconds}`."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def interleaved_us(invokers, invocations, warmup=100, block=BLOCK):
    """Per-call wall times (microseconds) of each zero-argument callable in
    `invokers` (`{name: callable}`, e.g. bound `interpreter.invoke`s).

    Each is first called `warmup` times; then they take turns, `block` timed
    calls at a time, until each has `invocations` (rounded up to a whole
    block). Returns `{name: [microseconds, ...]}`.
    """
    for invoke in invokers.values():
        for _ in range(warmup):
            invoke()
    times = {name: [] for name in invokers}
    for _ in range(-(-invocations // block)):
        for name, invoke in invokers.items():
            for _ in range(block):
                start = time.perf_counter()
                invoke()
                times[name].append((time.perf_counter() - start) * 1e6)
    return times
