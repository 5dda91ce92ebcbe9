"""Every image file under the dataset root is either read or listed with the reason it was not.

Starts from a copy of the real sample and moves some of its real JPEGs to places the class-folder walk
used to miss: a linked subfolder, a second class folder in another letter case, the dataset root itself.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bad_inputs import NEG, POS, run_cli

from covid_ct_scan_images.locate import locate
from covid_ct_scan_images.plan import BuildOptions, check_download


def real_jpegs(folder: Path, count: int) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in {".jpeg", ".jpg"})[:count]


def not_read(report: dict) -> dict[str, str]:
    """file -> message of every ``not_read`` problem."""
    return {name: p["message"] for p in report["problems"] if p["kind"] == "not_read" for name in p["files"]}


def test_linked_subfolder_inside_the_root_is_read_and_a_link_outside_is_listed(writable_real_root, tmp_path):
    neg = writable_real_root / NEG
    moved = real_jpegs(neg, 3)
    (writable_real_root / "more negatives").mkdir()
    for path in moved:
        shutil.move(path, writable_real_root / "more negatives" / path.name)
    (neg / "linked").symlink_to(Path("..") / "more negatives", target_is_directory=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(real_jpegs(neg, 1)[0], outside)
    (neg / "outside").symlink_to(outside, target_is_directory=True)

    checked = check_download(locate(writable_real_root, tmp_path / "work"), BuildOptions())

    kept = {item.file.file_name for item in checked.kept}
    assert {path.name for path in moved} <= kept
    unseen = not_read(checked.report.to_dict())
    assert list(unseen) == [f"{NEG}/outside/"]
    assert "link to a folder outside the dataset root" in unseen[f"{NEG}/outside/"]


def test_second_class_folder_in_another_letter_case_and_root_images_are_listed(capsys, writable_real_root, tmp_path):
    pos = writable_real_root / POS
    twin = writable_real_root / POS.lower()
    twin.mkdir()
    in_twin = real_jpegs(pos, 2)
    for path in in_twin:
        shutil.move(path, twin / path.name)
    in_root = real_jpegs(writable_real_root / NEG, 1)[0]
    shutil.move(in_root, writable_real_root / in_root.name)

    code, out, _ = run_cli(capsys, "audit", writable_real_root, "--json", tmp_path / "audit.json")

    assert code == 1
    unseen = not_read(json.loads((tmp_path / "audit.json").read_text(encoding="utf-8")))
    assert set(unseen) == {f"{POS.lower()}/{path.name}" for path in in_twin} | {in_root.name}
    assert (
        f"second positive class folder {POS.lower()!r}: only {POS!r} is read"
        in unseen[f"{POS.lower()}/{in_twin[0].name}"]
    )
    assert "in the dataset root, not in a class folder" in unseen[in_root.name]
    assert "[left_out] not_read, 3 file(s):" in out
