"""README and docs/: the README stays short with the two set-up commands
first, and every relative link in the Markdown resolves."""

import re

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
    assert test == "python -m pytest tests"
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
