"""A finished cache on a location this process cannot write to still loads; an unfinished one says so.

The cache is made read-only for real: ``chmod -R a-w``, and when the tests run as root (for whom file modes
do not block writes) the command runs under ``setpriv`` with the capabilities that override file modes
dropped, so the kernel refuses the writes exactly as it would for an ordinary user.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from covid_ct_scan_images import prepare

#: Capabilities that let root ignore file modes; dropped from the bounding set for the command.
_OVERRIDING_CAPABILITIES = "-dac_override,-dac_read_search,-fowner"


def make_read_only(folder: Path) -> None:
    """``chmod -R a-w folder``."""
    for path in [folder, *folder.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode):
            path.chmod(stat.S_IMODE(mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def run_without_write_access(*argv: object) -> subprocess.CompletedProcess:
    """Run ``covid-ct ARGV`` in a fresh process that file modes apply to, even when the tests run as root."""
    command = [sys.executable, "-c", "import sys; from covid_ct_scan_images.cli import main; sys.exit(main())"]
    command += [str(arg) for arg in argv]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without util-linux setpriv: cannot make file modes apply")
        command = [setpriv, f"--bounding-set={_OVERRIDING_CAPABILITIES}", "--", *command]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def test_finished_cache_on_a_read_only_location_loads(writable_real_root, cache_dir):
    built = prepare(writable_real_root, cache_dir=cache_dir)
    make_read_only(cache_dir)
    result = run_without_write_access("prepare", writable_real_root, "--cache-dir", cache_dir)
    assert result.returncode == 0, result.stderr
    assert "config 'default': reused the cache" in result.stdout
    assert f"{'all':<12}{36:>10}{12:>10}{48:>10}" in result.stdout
    assert f"Arrow cache:     {built.cache_dir}" in result.stdout
    assert "Traceback" not in result.stderr


def test_read_only_cache_without_a_finished_build_says_so_and_what_to_do(writable_real_root, cache_dir):
    cache_dir.mkdir()
    make_read_only(cache_dir)
    result = run_without_write_access("prepare", writable_real_root, "--cache-dir", cache_dir)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "the cache folder is not writable (Permission denied) and holds no finished build of this input" in (
        result.stderr
    )
    assert "pass --cache-dir (cache_dir=) a writable folder" in result.stderr
