"""Executes the notebooks afresh and (with --save) stores them with their outputs.

    python examples/notebooks/run_notebooks.py --save            # refresh every stored notebook
    python examples/notebooks/run_notebooks.py 02_forum_thread_experiment.ipynb

Each notebook runs in a new Jupyter kernel (nbclient) with this repository
first on `PYTHONPATH`, MNIST from `$KERAS_SPARSE_MNIST` (else
`../shared/datasets/mnist` beside the repository, else keras' download), and
its seeds fixed in its cells. Without `--save` it compares the fresh outputs
with the stored ones (`compare_outputs`) and exits 1 on a difference.

"Stored outputs are current" means: the text that the cells tagged `compare`
print (tables and numbers) equals the stored text, except that each number may
differ by `max(ABS_TOLERANCE, REL_TOLERANCE * |stored|)`, for another CPU's
floating point (same machine: identical). A cell also tagged `trained`
prints what a model trained in the notebook scores on noisy images, which
another CPU's rounding moves further (the trained weights differ): its
numbers may differ by `max(TRAINED_ABS_TOLERANCE, TRAINED_REL_TOLERANCE *
|stored|)`. Figures are regenerated, not compared. tests/test_notebooks.py
runs exactly this.

TensorFlow's start-up and export log lines (`I0000 ...`, `INFO:tensorflow:
Assets written to: /tmp/...`) are removed from the outputs before storing or
comparing: they name temporary folders and process ids, not results.
"""

import argparse
import os
import pathlib
import re
import sys
import time

NOTEBOOKS = pathlib.Path(__file__).resolve().parent
REPO = NOTEBOOKS.parents[1]
NOTEBOOK_NAMES = ("01_quickstart.ipynb", "02_forum_thread_experiment.ipynb", "03_inside_the_layers.ipynb",
                  "04_topk_autoencoder.ipynb")
ABS_TOLERANCE = 0.6     # e.g. 0.6 percentage points of accuracy, or 0.6 of a count
REL_TOLERANCE = 0.02
# Measured between an AVX-512 and an AVX2 x86 CPU on 01_quickstart's noise
# table: up to 4.05 points of accuracy at high noise, 2.3% of a noise score.
TRAINED_ABS_TOLERANCE = 5.0
TRAINED_REL_TOLERANCE = 0.05
_LOG_LINE = re.compile(
    r"^(WARNING: All log messages before absl|[IWE]\d{4} |INFO:tensorflow:|INFO: Created TensorFlow Lite|"
    r"WARNING:absl:)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


def kernel_environment():
    """The environment variables the kernel needs: this repository's keras_sparse
    first on the path, and the local MNIST copy when there is one."""
    env = {"PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
           "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    local_mnist = REPO.parent / "shared" / "datasets" / "mnist"
    if not os.environ.get("KERAS_SPARSE_MNIST") and (local_mnist / "mnist.npz").exists():
        env["KERAS_SPARSE_MNIST"] = str(local_mnist)
    return env


def execute(path, timeout=600):
    """Runs the notebook at `path` in a fresh kernel; returns (notebook, seconds).
    A cell that raises makes nbclient raise `CellExecutionError`."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    saved = {key: os.environ.get(key) for key in kernel_environment()}
    os.environ.update(kernel_environment())
    try:
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(NOTEBOOKS)}})
        start = time.perf_counter()
        client.execute()
        return remove_log_lines(notebook), time.perf_counter() - start
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def remove_log_lines(notebook):
    """Drops TensorFlow's log lines from every stream output (and streams left empty)."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            if output.output_type == "stream":
                lines = output.text.splitlines(keepends=True)
                output.text = "".join(line for line in lines if not _LOG_LINE.match(line))
                if not output.text.strip():
                    continue
            outputs.append(output)
        cell.outputs = outputs
    return notebook


def compared_text(notebook):
    """The text output of every cell tagged `compare`, one string per cell."""
    return [text for text, _ in _compared_cells(notebook)]


def _compared_cells(notebook):
    """`(text, tolerances)` of every cell tagged `compare`: its text output and
    the `(absolute, relative)` tolerance of its numbers."""
    texts = []
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code" or "compare" not in tags:
            continue
        parts = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data") and "text/plain" in output.data:
                if "image/png" not in output.data:
                    parts.append(output.data["text/plain"])
        trained = "trained" in tags
        texts.append(("".join(parts), (TRAINED_ABS_TOLERANCE, TRAINED_REL_TOLERANCE) if trained
                      else (ABS_TOLERANCE, REL_TOLERANCE)))
    return texts


def compare_outputs(stored, fresh):
    """Differences between two notebooks' compared text, as a list of messages
    (empty when current; numbers within the tolerances above)."""
    problems = []
    stored_cells, fresh_texts = _compared_cells(stored), compared_text(fresh)
    if len(stored_cells) != len(fresh_texts):
        return [f"{len(stored_cells)} compared cells stored, {len(fresh_texts)} fresh"]
    for index, ((old, (absolute, relative)), new) in enumerate(zip(stored_cells, fresh_texts)):
        if _NUMBER.sub("#", old) != _NUMBER.sub("#", new):
            problems.append(f"compared cell {index}: text differs\n--- stored\n{old}\n--- fresh\n{new}")
            continue
        for a, b in zip(_NUMBER.findall(old), _NUMBER.findall(new)):
            x, y = float(a.replace(",", "")), float(b.replace(",", ""))
            if abs(x - y) > max(absolute, relative * abs(x)):
                problems.append(f"compared cell {index}: stored {a}, fresh {b}\n--- stored\n{old}\n--- fresh\n{new}")
                break
    return problems


def main(argv=None):
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(NOTEBOOK_NAMES))
    parser.add_argument("--save", action="store_true", help="store the fresh outputs in the notebooks")
    args = parser.parse_args(argv)
    failed = False
    for name in args.names:
        path = NOTEBOOKS / name
        stored = nbformat.read(path, as_version=4)
        fresh, seconds = execute(path)
        problems = compare_outputs(stored, fresh)
        print(f"{name}: executed in {seconds:.0f} s; {'outputs current' if not problems else 'OUTPUTS DIFFER'}")
        for problem in problems:
            print(problem)
        if args.save:
            nbformat.write(fresh, path)
        failed = failed or bool(problems)
    return 1 if failed and not args.save else 0


if __name__ == "__main__":
    sys.exit(main())
