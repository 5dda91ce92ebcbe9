"""``covid-ct audit``: exit codes, text and JSON, the real sample, a broken copy showing many cases at once,
and the report of what was left out saved next to the cache by ``prepare``."""

from __future__ import annotations

import json

import pytest
from bad_inputs import NEG, make_broken_copy, run_cli

from covid_ct_scan_images.builder import saved_report
from covid_ct_scan_images.locate import locate
from covid_ct_scan_images.plan import BuildOptions, check_download


def test_real_sample_passes_audit_with_exit_code_0(capsys, real_sample, tmp_path):
    code, out, err = run_cli(capsys, "audit", real_sample, "--json", tmp_path / "audit.json")
    assert code == 0, out + err
    assert "files 48, negative files 36, positive files 12, negative kept 36, positive kept 12, left out 0" in out
    assert "no problems found" in out
    report = json.loads((tmp_path / "audit.json").read_text(encoding="utf-8"))
    assert report["counts"]["positive kept"] == 12
    assert {problem["severity"] for problem in report["problems"]} <= {"note"}


def test_json_holds_the_same_content_as_the_text(capsys, root, tmp_path):
    (root / NEG / "IM-9900-0001.jpeg").write_bytes(b"")
    target = tmp_path / "report.json"
    code, out, _ = run_cli(capsys, "audit", root, "--json", target)
    assert code == 1
    report = json.loads(target.read_text(encoding="utf-8"))
    assert report["root"] == str(root)
    assert "counts: " + ", ".join(f"{key} {value}" for key, value in report["counts"].items()) in out
    for problem in report["problems"]:
        assert f"[{problem['severity']}] {problem['kind']}" in out and problem["message"] in out
        assert all(name in out for name in problem["files"])
    assert [problem["files"] for problem in report["problems"] if problem["kind"] == "unusable_file"] == [
        [f"{NEG}/IM-9900-0001.jpeg"]
    ]


def test_usage_errors_exit_2(capsys, root, tmp_path):
    for bad in ("many", "0"):
        with pytest.raises(SystemExit) as exit_info:
            run_cli(capsys, "audit", root, "--max-image-pixels", bad)
        assert exit_info.value.code == 2
        assert "--max-image-pixels" in capsys.readouterr().err
    code, _, err = run_cli(capsys, "audit", root, "--json", tmp_path)
    assert code == 2 and f"--json {tmp_path}: is a folder" in err
    code, _, err = run_cli(capsys, "audit", tmp_path / "missing")
    assert code == 2 and "no such file or folder" in err


def test_debug_shows_the_traceback_instead(capsys, tmp_path):
    from covid_ct_scan_images.cli import main
    from covid_ct_scan_images.errors import DatasetError

    with pytest.raises(DatasetError):
        main(["--debug", "audit", str(tmp_path)])


def test_audit_builds_nothing_and_leaves_no_extraction_behind(capsys, root, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    code, _, _ = run_cli(capsys, "audit", root)
    assert code == 0
    assert not (tmp_path / "hf-home").exists()
    assert list((tmp_path / "scratch").iterdir()) == []


def test_broken_copy_shows_many_cases_at_once(capsys, root, tmp_path):
    copy = make_broken_copy(root.parent, tmp_path / "broken")
    code, out, _ = run_cli(capsys, "audit", tmp_path / "broken")
    assert code == 1
    expected = {
        2: "used as 'COVID-19-CT SCAN IMAGES_Neg_Samples_datasets'",
        5: "listed in Train.xls but no such image file",
        6: "the same file name is in both class folders",
        7: "identical bytes to ",
        8: "text or HTML, not an image",
        9: "decompression-bomb guard",
        10: "1 macOS resource fork (._*)",
    }
    for case, text in expected.items():
        assert text in out, f"case {case}: {text!r} missing"
    assert "(folder: negative, sheet: positive)" in out and "near_duplicate" in out
    kept = check_download(locate(copy, tmp_path / "work"), BuildOptions()).kept
    assert "胸片 阴性 01.JPG" in {item.file.file_name for item in kept}  # an unusual name: kept, nothing to report


def test_prepare_lists_every_left_out_file_and_saves_the_report_next_to_the_cache(capsys, root, tmp_path):
    bad = [f"IM-99{number:02d}-0001.jpeg" for number in range(25)]
    for name in bad:
        (root / NEG / name).write_bytes(b"")
    code, out, err = run_cli(capsys, "prepare", root, "--cache-dir", tmp_path / "cache")
    assert code == 0, err
    assert "left out 25 file(s)" in out
    for name in bad:
        assert f"{NEG}/{name}: empty file (0 bytes)" in out
    cache_line = next(line for line in out.splitlines() if line.startswith("Arrow cache:"))
    saved = saved_report(cache_line.split(":", 1)[1].strip())
    left_out = {name for problem in saved["problems"] if problem["severity"] == "left_out" for name in problem["files"]}
    assert left_out == {f"{NEG}/{name}" for name in bad}
