"""The library and the commands that build nothing start without datasets (pyarrow, pandas: over a second)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_importing_the_library_does_not_import_datasets(tmp_path: Path) -> None:
    code = "import sys, covid_ct_scan_images\nprint('datasets' in sys.modules, 'pyarrow' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_audit_does_not_import_datasets(synthetic_root: Path, cli_in_fresh_interpreter) -> None:
    code, imported, errors = cli_in_fresh_interpreter(["audit", synthetic_root, "--quiet"], "datasets")
    assert (code, imported) == (0, False), errors


def test_shortcuts_does_not_import_datasets(synthetic_root: Path, tmp_path: Path, cli_in_fresh_interpreter) -> None:
    arguments = ["shortcuts", synthetic_root, "--cache-dir", tmp_path / "cache", "--n-bootstrap", "20", "--quiet"]
    code, imported, errors = cli_in_fresh_interpreter(arguments, "datasets")
    assert (code, imported) == (0, False), errors
