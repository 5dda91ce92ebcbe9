"""README, baselines/README.md and .ci/run tell one install story: torch first (an explicit CPU or CUDA line)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
CPU_LINE = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
CUDA_LINE = "# pip install torch       # NVIDIA GPU on Linux instead: PyPI's wheel is the CUDA build"
DOCUMENTS = ("README.md", "baselines/README.md")


def _shell_lines(markdown: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_install_gives_the_cpu_line_and_the_cuda_line_before_the_project(document: str):
    lines = _shell_lines((REPOSITORY / document).read_text(encoding="utf-8"))
    cpu = next(index for index, line in enumerate(lines) if line.startswith(CPU_LINE))
    cuda = next(index for index, line in enumerate(lines) if line.startswith(CUDA_LINE))
    project = next(index for index, line in enumerate(lines) if line.startswith('pip install -e ".[baselines'))
    assert cpu < project and cuda < project


@pytest.mark.parametrize("document", DOCUMENTS)
def test_no_copied_line_installs_an_unspecified_torch_build(document: str):
    # a torch requirement without the CPU index (e.g. `pip install "torch==2.13.0" ...`) pulls the CUDA build on Linux
    for line in _shell_lines((REPOSITORY / document).read_text(encoding="utf-8")):
        command = line.split("#", 1)[0]
        if re.search(r"pip install .*\btorch\b", command) and "venv" not in command:
            assert command.strip() == CPU_LINE, f"{document}: {line!r}"


def test_ci_installs_a_cpu_torch_first_then_the_same_extras_as_readme():
    script = (REPOSITORY / ".ci" / "run").read_text(encoding="utf-8")
    torch_at = script.index('pip install -q "torch==')
    project_at = script.index('pip install -q -e ".[baselines,test]"')
    assert torch_at < project_at
    assert CPU_LINE in script, ".ci/run names README's CPU line it stands in for"
    assert 'pip install -e ".[baselines,test]"' in (REPOSITORY / "README.md").read_text(encoding="utf-8")
