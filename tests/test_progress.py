"""Progress bars on long steps: shown on a terminal's stderr, off with --quiet or when stderr is not a terminal."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import datasets
import pytest

from covid_ct_scan_images.cli import main as covid_ct


class TerminalStderr(io.StringIO):
    """A stderr that says it is a terminal, and keeps what was written."""

    def isatty(self) -> bool:
        return True


def _stderr_of(monkeypatch: pytest.MonkeyPatch, arguments: list[str], terminal: bool) -> str:
    stream = TerminalStderr() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    assert covid_ct(arguments) == 0
    return stream.getvalue()


def test_prepare_shows_image_checking_and_build_bars_on_a_terminal(
    synthetic_root: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    shown = _stderr_of(monkeypatch, ["prepare", str(synthetic_root), "--cache-dir", str(cache_dir)], terminal=True)
    assert "checking images:" in shown and "/60 [" in shown  # the bar counts the 60 files
    assert "Generating train split" in shown


def test_audit_shows_the_checking_bar_and_quiet_turns_every_bar_off(
    synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
):
    assert "checking images" in _stderr_of(monkeypatch, ["audit", str(synthetic_root)], terminal=True)
    assert _stderr_of(monkeypatch, ["audit", str(synthetic_root), "--quiet"], terminal=True) == ""


def test_no_bars_when_stderr_is_not_a_terminal(synthetic_root: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch):
    arguments = ["prepare", str(synthetic_root), "--cache-dir", str(cache_dir)]
    assert _stderr_of(monkeypatch, arguments, terminal=False) == ""
    assert datasets.is_progress_bar_enabled(), "main() must leave datasets' switch as it found it"


def test_shortcuts_shows_feature_and_probe_bars(synthetic_root: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch):
    arguments = ["shortcuts", str(synthetic_root), "--cache-dir", str(cache_dir), "--n-bootstrap", "20"]
    shown = _stderr_of(monkeypatch, arguments, terminal=True)
    assert "shortcut features:" in shown and "/60 [" in shown
    assert "shortcut probes:" in shown
    assert "bootstrap:" in shown and "/20 [" in shown
