"""`covid-ct export` says truthfully whether it computes the shortcut probes or reuses an earlier audit."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_inputs import run_cli
from export_support import TEST_BOOTSTRAP, cache_of, download_of

from covid_ct_scan_images.export import ExportResult, export_dataset
from covid_ct_scan_images.shortcuts import ShortcutReport

COMPUTING = "computing the shortcut probes for the card"
REUSING = "reusing the shortcut report that `covid-ct shortcuts` computed for this input"


def test_export_computes_the_probes_once_then_reuses_the_remembered_audit(
    messy_export: ExportResult, tmp_path: Path
) -> None:
    """Each test has an empty file store: the first export computes, the second finds the first one's audit."""
    root, cache = download_of(messy_export), cache_of(messy_export)
    notes: list[str] = []
    first = export_dataset(root, tmp_path / "first", cache_dir=cache, n_bootstrap=TEST_BOOTSTRAP, note=notes.append)
    assert len(notes) == 1 and notes[0].startswith(COMPUTING), notes
    notes.clear()
    second = export_dataset(root, tmp_path / "second", cache_dir=cache, n_bootstrap=TEST_BOOTSTRAP, note=notes.append)
    assert notes == [REUSING]
    shortcuts = "shortcut_probes.json"
    assert (second.out_dir / shortcuts).read_bytes() == (first.out_dir / shortcuts).read_bytes()


def test_export_after_covid_ct_shortcuts_says_it_reuses_that_audit(
    messy_export: ExportResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, cache = download_of(messy_export), cache_of(messy_export)
    saved = tmp_path / "probes.json"
    code, _, _ = run_cli(capsys, "shortcuts", root, "--cache-dir", cache, "--json", saved)
    assert code == 0
    code, _, err = run_cli(capsys, "export", root, tmp_path / "out", "--cache-dir", cache)
    assert code == 0
    assert REUSING in err and COMPUTING not in err, err
    assert ShortcutReport.from_json(tmp_path / "out" / "shortcut_probes.json") == ShortcutReport.from_json(saved)


def test_export_reusing_a_stored_report_does_not_import_scikit_learn(
    messy_export: ExportResult, tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_in_fresh_interpreter
) -> None:
    """The stored report is found from the features and settings alone; scikit-learn loads only to fit probes."""
    root, cache = download_of(messy_export), cache_of(messy_export)
    assert run_cli(capsys, "shortcuts", root, "--cache-dir", cache)[0] == 0
    code, imported, err = cli_in_fresh_interpreter(["export", root, tmp_path / "out", "--cache-dir", cache], "sklearn")
    assert REUSING in err, err
    assert (code, imported) == (0, False)


def test_export_that_builds_the_full_config_finds_the_report_by_its_plan_not_its_arrow_bytes(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = tmp_path / "probes.json"
    arguments = ["--cache-dir", tmp_path / "cache", "--n-bootstrap", str(TEST_BOOTSTRAP)]
    assert run_cli(capsys, "shortcuts", root, "--json", saved, *arguments)[0] == 0  # plans, builds nothing

    def no_arrow_reads(_dataset):
        raise AssertionError("the images' bytes were read back from the Arrow cache")

    monkeypatch.setattr("covid_ct_scan_images.shortcuts.probes._image_bytes", no_arrow_reads)
    notes: list[str] = []
    result = export_dataset(
        root, tmp_path / "out", cache_dir=tmp_path / "cache", n_bootstrap=TEST_BOOTSTRAP, note=notes.append
    )
    assert notes == [REUSING]
    assert result.builds["full"].plan is not None  # built by this export, not reused
    assert ShortcutReport.from_json(result.out_dir / "shortcut_probes.json") == ShortcutReport.from_json(saved)
