"""The notebooks in examples/notebooks: each executes afresh without an error,
and its stored outputs are current (examples/notebooks/run_notebooks.py says
exactly what is compared)."""

import copy

import nbformat
import pytest

from tests.conftest import REPO, load_example, mnist_dir

run_notebooks = load_example("notebooks/run_notebooks.py")


def _stored(name):
    return nbformat.read(REPO / "examples" / "notebooks" / name, as_version=4)


def _images(notebook):
    return sum("image/png" in output.get("data", {})
               for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)


@pytest.mark.parametrize("name", run_notebooks.NOTEBOOK_NAMES)
def test_notebook_runs_and_its_stored_outputs_are_current(name, monkeypatch):
    stored = _stored(name)
    code_cells = [cell for cell in stored.cells if cell.cell_type == "code"]
    # Stored executed, in order, with their figures (visible on GitHub).
    assert [cell.execution_count for cell in code_cells] == list(range(1, len(code_cells) + 1))
    assert _images(stored) >= 1
    assert any(run_notebooks.compared_text(stored)), "no stored table to compare"

    monkeypatch.setenv("KERAS_SPARSE_MNIST", str(mnist_dir()))
    fresh, seconds = run_notebooks.execute(REPO / "examples" / "notebooks" / name)  # raises on a cell error
    print(f"{name}: {seconds:.0f} s")
    assert run_notebooks.compare_outputs(stored, fresh) == []
    assert _images(fresh) == _images(stored)


def test_a_stale_number_or_line_is_noticed():
    stored = _stored("03_inside_the_layers.ipynb")
    cell = next(c for c in stored.cells if "compare" in c.metadata.get("tags", [])
                and "break_ties" in c.source)
    text = cell.outputs[0].text
    assert text.startswith("break_ties=False -> [3. 0. 2. 2. 0. 2.] winners: 4")

    stale = copy.deepcopy(stored)
    stale_cell = next(c for c in stale.cells if c.source == cell.source)
    stale_cell.outputs[0].text = text.replace("winners: 4", "winners: 3")        # off by one: > 0.6
    assert len(run_notebooks.compare_outputs(stored, stale)) == 1
    stale_cell.outputs[0].text = text.replace("winners: 4", "winners: 4.5")      # within tolerance
    assert run_notebooks.compare_outputs(stored, stale) == []
    stale_cell.outputs[0].text = text + "an extra line\n"
    assert len(run_notebooks.compare_outputs(stored, stale)) == 1


def test_a_trained_cell_has_the_wider_tolerance_and_only_it():
    stored = _stored("01_quickstart.ipynb")
    trained = [c for c in stored.cells if "trained" in c.metadata.get("tags", [])]
    assert len(trained) == 1 and "compare" in trained[0].metadata.tags and "evaluate_noise" in trained[0].source
    text = trained[0].outputs[0].text
    assert "noise score" in text and "31.30%" in text

    stale = copy.deepcopy(stored)
    stale_cell = next(c for c in stale.cells if c.source == trained[0].source)
    stale_cell.outputs[0].text = text.replace("31.30%", "26.90%")  # 4.4 points: within max(5, 5%)
    assert run_notebooks.compare_outputs(stored, stale) == []
    stale_cell.outputs[0].text = text.replace("31.30%", "26.20%")  # 5.1 points: noticed
    assert len(run_notebooks.compare_outputs(stored, stale)) == 1
    # Another compared cell of the same notebook keeps the tight tolerance.
    other = next(c for c in stale.cells if "compare" in c.metadata.get("tags", [])
                 and "trained" not in c.metadata.get("tags", []) and c.outputs and "text" in c.outputs[0])
    stale_cell.outputs[0].text = text
    number = run_notebooks._NUMBER.search(other.outputs[0].text).group()
    bumped = float(number.replace(",", "")) + max(1.0, 0.03 * abs(float(number.replace(",", ""))))
    other.outputs[0].text = other.outputs[0].text.replace(number, f"{bumped:.4f}", 1)
    assert len(run_notebooks.compare_outputs(stored, stale)) == 1


def test_log_lines_are_removed_from_outputs():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    notebook.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout",
                               text="INFO:tensorflow:Assets written to: /tmp/tmpab12/assets\nresult 1\n"),
        nbformat.v4.new_output("stream", name="stderr",
                               text="I0000 00:00:1795662935.625966    8486 port.cc:153] oneDNN\n"),
    ]
    cleaned = run_notebooks.remove_log_lines(notebook)
    assert [(o.name, o.text) for o in cleaned.cells[0].outputs] == [("stdout", "result 1\n")]
