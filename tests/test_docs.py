"""README and docs/: the README stays short with the two set-up commands
first, every relative link in the Markdown resolves, and the repository
cites only its own documents."""

import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

MARKDOWN = sorted([REPO / "README.md", REPO / "examples" / "notebooks" / "README.md",
                   REPO / "benchmarks" / "RESULTS.md", *(REPO / "docs").glob("*.md")])
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_readme_is_short_and_starts_with_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert len(text) < 6000
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block.start() == min(text.find("```"), first_block.start())  # the first code block
    install, test = first_block.group(1).strip().splitlines()
    assert install.startswith('python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test,examples]"')
    assert install.endswith("python examples/mnist_noise.py --data-dir ../shared/datasets/mnist")
    assert test == "python -m pytest tests -n 2"  # two workers (pytest-xdist)
    assert (REPO / ".ci" / "run").read_text().rstrip().endswith("\n" + test)


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    links = [link for link in _LINK.findall(path.read_text()) if not re.match(r"[a-z]+:", link)]
    assert links or path.name == "RESULTS.md"
    for link in links:
        target, _, anchor = link.partition("#")
        resolved = (path.parent / target).resolve() if target else path
        assert resolved.exists(), f"{path.relative_to(REPO)}: broken link {link}"
        if anchor and resolved.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", resolved.read_text(), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{path.relative_to(REPO)}: no heading for #{anchor} in {target}"


# The name of the project's former specification file, which the repository
# does not hold: written here so that this file does not contain it.
_EXTERNAL_REFERENCE = re.compile("S[P]EC")


def _tracked_text_files():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in names.decode().split("\0"):
        path = REPO / name
        if not name or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary: .keras, .tflite, images
        yield name, data.decode("utf-8", errors="replace")


def test_external_spec_pattern():
    assert _EXTERNAL_REFERENCE.search("as in " + "SP" + "EC §4")
    assert not _EXTERNAL_REFERENCE.search("the specification, spec, Spec")


def test_no_reference_to_an_external_spec():
    """The docs (docs/semantics.md, docs/mnist.md, docs/speech.md) state every
    formula and protocol the code relies on; nothing cites a file the
    repository does not hold."""
    files = dict(_tracked_text_files())
    assert "keras_sparse/kwinners.py" in files and "docs/semantics.md" in files
    found = [f"{name}:{text.count(chr(10), 0, m.start()) + 1}"
             for name, text in files.items() for m in _EXTERNAL_REFERENCE.finditer(text)]
    assert not found, f"references to an external spec: {found}"


def test_mnist_page_states_the_protocol_the_code_runs():
    from keras_sparse import datasets
    from keras_sparse.models import _cnn, mnist

    text = (REPO / "docs" / "mnist.md").read_text()
    protocol = text[text.index("## The paper's protocol"):text.index("## Measured here")]
    prose = " ".join(protocol.split())
    assert f"(x01 - {datasets.MNIST_MEAN}) / {datasets.MNIST_STD}" in prose
    assert f"`{datasets.MNIST_MEAN} + 2 · {datasets.MNIST_STD} = 0.7469`" in prose
    assert f"batch {mnist.MNIST_BATCH_SIZE}," in prose and f"multiplied by {mnist.MNIST_LR_DECAY}" in prose
    assert (f"`boost_strength` {_cnn.BOOST_STRENGTH}, `boost_strength_factor` {mnist.MNIST_BOOST_STRENGTH_FACTOR}"
            in prose)
    assert f"`k_inference_factor` {_cnn.K_INFERENCE_FACTOR}" in prose
    assert f"`duty_cycle_period` {_cnn.DUTY_CYCLE_PERIOD}" in prose
    for network in mnist.MNIST_NETWORKS.values():
        if network["paper_accuracy"] is None:
            continue  # ours, not the paper's
        momentum = "0" if network["momentum"] == 0 else str(network["momentum"])
        row = (f"| {network['title']} | {network['lr']} | {momentum} | {network['epochs']} "
               f"| {network['first_epoch_batch']} |")
        assert row in protocol.splitlines(), row
        accuracy, noise = network["paper_accuracy"], network["paper_noise_score"]
        assert f"{network['title']} {accuracy[0]} ± {accuracy[1]}" in prose
        assert f"{noise[0]:,} ± {noise[1]:,}" in prose


def test_speech_page_states_the_protocol_the_code_runs():
    from keras_sparse.models import speech
    from keras_sparse.models._cnn import BOOST_STRENGTH

    text = (REPO / "docs" / "speech.md").read_text()
    protocol = " ".join(text[text.index("## The paper's protocol"):text.index("## What runs")].split())
    assert f"weight decay {speech.SPEECH_WEIGHT_DECAY} in PyTorch's sense" in protocol
    for network in speech.SPEECH_NETWORKS.values():
        if network["paper_accuracy"] is None:
            continue  # ours, not the paper's
        accuracy, noise = network["paper_accuracy"], network["paper_noise_score"]
        assert f"{network['title']} {accuracy[0]} ± {accuracy[1]}" in protocol
        assert f"{noise[0]:,} ± {noise[1]:,}" in protocol
    sparse = speech.SPEECH_NETWORKS["sparse_cnn2"]
    assert (f"Sparse CNN-2: lr {sparse['lr']} ×{sparse['lr_decay']} per epoch, momentum 0, batch "
            f"{sparse['batch_size']}, {sparse['epochs']} epochs, boost {BOOST_STRENGTH} "
            f"×{speech.SPEECH_BOOST_STRENGTH_FACTOR}") in protocol


def test_usage_layout_names_every_module_and_notebook_count():
    text = (REPO / "docs" / "usage.md").read_text()
    layout = text[text.index("## Layout"):]
    package = REPO / "keras_sparse"
    modules = [p.stem for p in package.glob("*.py") if p.stem != "__init__"]
    modules += [p.stem for p in (package / "models").glob("*.py") if p.stem != "__init__"]
    missing = [name for name in modules if f"`{name}`" not in layout]
    assert not missing, f"docs/usage.md's layout does not name {missing}"
    count = len(list((REPO / "examples" / "notebooks").glob("*.ipynb")))
    words = {3: "three", 4: "four", 5: "five", 6: "six"}
    assert f"the {words[count]} notebooks" in " ".join(layout.split())


def test_docstring_examples_run():
    """The `Example:` sections of the layers' docstrings (Keras style) run
    and print what they say."""
    import doctest

    from keras_sparse import audio, batch_sparsity, drop_connect, kwinners, sparse_weights

    for module in (audio, batch_sparsity, drop_connect, kwinners, sparse_weights):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted >= 2 and result.failed == 0, module.__name__
