"""Pushing to the Hub without the network: the prepared upload, an in-memory Hub, and a local HTTP endpoint.

* :class:`FakeHub` stands in for ``HfApi`` (same method names and arguments, real ``RepoFile`` /
  ``GitRefs`` objects) to check what a push sends: private repository, one commit naming the version,
  the tag, and no commit when nothing changed.
* :func:`local_hub` is a real HTTP server on 127.0.0.1 answering with an error status, so the real
  ``HfApi`` call path and ``huggingface_hub``'s own exceptions are what the error messages are made from.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from bad_inputs import run_cli
from export_support import TEST_REPO, cache_of, download_of
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, constants
from huggingface_hub.hf_api import GitRefInfo, GitRefs

from covid_ct_scan_images.builder import DATASET_VERSION
from covid_ct_scan_images.errors import DatasetError, UsageError
from covid_ct_scan_images.export import ExportResult
from covid_ct_scan_images.hub import NO_TOKEN_MESSAGE, plan_upload, push_dataset

REPO = TEST_REPO
SECRET = "hf_notARealTokenButSecret1234567890"


class FakeHub:
    """An in-memory Hub with the ``HfApi`` methods a push calls; records every call.

    ``create_commit`` behaves like the real one: unchanged files are left out, a commit with nothing left is not
    made (the head is returned), and ``create_pr`` commits go to a pull request instead of ``main``.
    """

    endpoint = "http://fake-hub.invalid"

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files: dict[str, bytes] = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}
        self.files.update(files or {})
        self.private: bool | None = None
        self.commits: list[SimpleNamespace] = []
        self.pull_requests: list[SimpleNamespace] = []
        self.tags: dict[str, str] = {}
        self.calls: list[str] = []

    @property
    def head(self) -> str:
        return self.commits[-1].oid if self.commits else "0" * 40

    def create_repo(self, repo_id: str, *, repo_type: str, private: bool, exist_ok: bool) -> str:
        self.calls.append("create_repo")
        assert repo_type == "dataset" and exist_ok
        if self.private is None:
            self.private = private
        return f"{self.endpoint}/datasets/{repo_id}"

    def list_repo_files(self, repo_id: str, *, repo_type: str) -> list[str]:
        self.calls.append("list_repo_files")
        return sorted(self.files)

    def list_repo_refs(self, repo_id: str, *, repo_type: str) -> GitRefs:
        self.calls.append("list_repo_refs")
        tags = [GitRefInfo(name=name, ref=f"refs/tags/{name}", target_commit=oid) for name, oid in self.tags.items()]
        return GitRefs(branches=[], converts=[], tags=tags)

    def create_commit(
        self, repo_id: str, *, operations, commit_message: str, commit_description: str, repo_type: str, create_pr: bool
    ):
        self.calls.append("create_commit")
        changed = [
            operation
            for operation in operations
            if not isinstance(operation, CommitOperationAdd)
            or self.files.get(operation.path_in_repo) != Path(operation.path_or_fileobj).read_bytes()
        ]
        if not changed:
            return SimpleNamespace(oid=self.head, pr_url=None)
        number = len(self.commits) + len(self.pull_requests)
        commit = SimpleNamespace(
            oid=hashlib.sha1(f"{number}{commit_message}".encode(), usedforsecurity=False).hexdigest(),
            message=commit_message,
            paths=[operation.path_in_repo for operation in changed],
            pr_url=f"{self.endpoint}/datasets/{repo_id}/discussions/{number}" if create_pr else None,
        )
        if create_pr:
            self.pull_requests.append(commit)
            return commit
        for operation in changed:
            if isinstance(operation, CommitOperationAdd):
                self.files[operation.path_in_repo] = Path(operation.path_or_fileobj).read_bytes()
            else:
                assert isinstance(operation, CommitOperationDelete)
                del self.files[operation.path_in_repo]
        self.commits.append(commit)
        return commit

    def create_tag(self, repo_id: str, *, tag: str, tag_message: str, revision: str, repo_type: str) -> None:
        self.calls.append("create_tag")
        assert tag not in self.tags
        self.tags[tag] = revision

    def repo_info(self, repo_id: str, *, repo_type: str) -> SimpleNamespace:
        return SimpleNamespace(sha=self.head, private=self.private)


class RefusingHub:
    """An ``HfApi`` stand-in that fails the test when anything is contacted."""

    endpoint = "http://must-not-be-called.invalid"

    def __getattr__(self, name: str):
        raise AssertionError(f"the Hub was contacted ({name}) during a dry run")


def test_plan_upload_lists_every_file_message_and_tag(messy_export: ExportResult) -> None:
    plan = plan_upload(messy_export.out_dir, REPO)
    operations = plan.operations()
    assert all(isinstance(operation, CommitOperationAdd) for operation in operations)
    assert [operation.path_in_repo for operation in operations] == messy_export.files
    assert all(Path(operation.path_or_fileobj).is_relative_to(messy_export.out_dir) for operation in operations)
    assert plan.commit_message == f"Upload covid_ct_scan_images dataset version {DATASET_VERSION}"
    assert plan.tag == f"v{DATASET_VERSION}"
    assert plan.private is True
    assert plan_upload(messy_export.out_dir, REPO, public=True).private is False
    assert plan_upload(messy_export.out_dir, REPO, tag="v1.0.0-rc1").tag == "v1.0.0-rc1"
    with pytest.raises(UsageError, match="NAMESPACE/NAME"):
        plan_upload(messy_export.out_dir, "covid_ct_scan_images")
    with pytest.raises(UsageError, match="not an export folder"):
        plan_upload(messy_export.out_dir / "data", REPO)


def test_push_private_one_commit_tag_and_no_empty_commit(messy_export: ExportResult) -> None:
    hub = FakeHub()
    first = push_dataset(messy_export.out_dir, REPO, api=hub)
    assert hub.private is True
    assert len(hub.commits) == 1
    assert hub.commits[0].message == f"Upload covid_ct_scan_images dataset version {DATASET_VERSION}"
    assert sorted(hub.commits[0].paths) == messy_export.files
    assert hub.tags == {f"v{DATASET_VERSION}": hub.commits[0].oid}
    assert first.commit == hub.commits[0].oid and first.tagged
    for name in messy_export.files:
        assert hub.files[name] == (messy_export.out_dir / name).read_bytes()

    again = push_dataset(messy_export.out_dir, REPO, api=hub)
    assert len(hub.commits) == 1, "re-pushing identical content made a commit"
    assert again.commit is None and not again.tagged
    assert "no commit made" in again.summary()
    assert hub.calls.count("create_tag") == 1


def test_push_of_a_raw_download_exports_it_first(messy_export: ExportResult) -> None:
    hub = FakeHub()
    shortcuts = messy_export.out_dir / "shortcut_probes.json"
    result = push_dataset(
        download_of(messy_export), REPO, api=hub, cache_dir=cache_of(messy_export), shortcuts_json=shortcuts
    )
    assert sorted(hub.commits[0].paths) == messy_export.files
    assert f'load_dataset("{REPO}", revision="v{DATASET_VERSION}")' in hub.files["README.md"].decode()
    assert not result.plan.folder.exists(), "the temporary export was not removed"


def test_public_opt_in(messy_export: ExportResult) -> None:
    hub = FakeHub()
    result = push_dataset(messy_export.out_dir, REPO, public=True, api=hub)
    assert hub.private is False
    assert "PUBLIC" in result.summary()


def test_changed_content_needs_a_new_tag(messy_export: ExportResult, tmp_path: Path) -> None:
    hub = FakeHub()
    push_dataset(messy_export.out_dir, REPO, api=hub)
    changed = tmp_path / "changed"
    shutil.copytree(messy_export.out_dir, changed)
    (changed / "README.md").write_text((changed / "README.md").read_text(encoding="utf-8") + "\nA fix.\n")
    with pytest.raises(DatasetError, match="already marks different content") as refused:
        push_dataset(changed, REPO, api=hub)
    assert len(hub.commits) == 1, "main was changed although the version tag exists"
    assert [pull.paths for pull in hub.pull_requests] == [["README.md"]]
    assert hub.pull_requests[0].pr_url in str(refused.value)

    result = push_dataset(changed, REPO, api=hub, tag="v1.0.1")
    assert hub.commits[-1].paths == ["README.md"], "unchanged files were sent again"
    assert result.commit == hub.commits[-1].oid
    assert hub.tags["v1.0.1"] == hub.commits[-1].oid != hub.tags[f"v{DATASET_VERSION}"]


def test_repository_with_other_content_is_left_alone(messy_export: ExportResult) -> None:
    hub = FakeHub({"model.safetensors": b"weights", "README.md": b"# another project\n"})
    with pytest.raises(DatasetError, match=re.escape("already exists with other content (model.safetensors)")):
        push_dataset(messy_export.out_dir, REPO, api=hub)
    assert hub.commits == [] and hub.tags == {}


def test_dry_run_contacts_nothing(messy_export: ExportResult, capsys: pytest.CaptureFixture[str]) -> None:
    result = push_dataset(messy_export.out_dir, REPO, dry_run=True, api=RefusingHub())
    assert result.dry_run and result.commit is None
    code, out, _ = run_cli(capsys, "push", messy_export.out_dir, "--repo-id", REPO, "--dry-run")
    assert code == 0
    assert "DRY RUN" in out and "(dataset, private)" in out and f"tag: v{DATASET_VERSION}" in out
    for name in messy_export.files:
        assert name in out


def test_no_token_is_one_clear_message(
    messy_export: ExportResult,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-stored-tokens"))
    code, _, err = run_cli(capsys, "push", messy_export.out_dir, "--repo-id", REPO)
    assert code == 1
    assert err.strip() == f"covid-ct push: error: {NO_TOKEN_MESSAGE}"


class _ErrorHandler(http.server.BaseHTTPRequestHandler):
    status = 401

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps({"error": f"fake hub says {self.status}"}).encode()
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.seen.append((self.command, self.path, self.headers.get("authorization", "")))

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def local_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[http.server.HTTPServer]:
    """A local HTTP endpoint (127.0.0.1 only) that answers every request with ``server.status``."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    handler = type("Handler", (_ErrorHandler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.seen = []
    server.handler = handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, "rejected the token (401 Unauthorized)"), (403, "no permission to create or write"), (500, "answered 500")],
)
def test_hub_errors_from_the_real_client(
    messy_export: ExportResult,
    local_hub: http.server.HTTPServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    expected: str,
) -> None:
    local_hub.handler.status = status
    endpoint = f"http://127.0.0.1:{local_hub.server_address[1]}"
    with pytest.raises(DatasetError, match=re.escape(expected)) as caught:
        push_dataset(messy_export.out_dir, REPO, token=SECRET, endpoint=endpoint)
    assert SECRET not in str(caught.value)
    assert local_hub.seen and local_hub.seen[0][0] == "POST" and local_hub.seen[0][1] == "/api/repos/create"
    assert local_hub.seen[0][2] == f"Bearer {SECRET}"  # the token went to the endpoint, and nowhere else

    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    code, out, err = run_cli(capsys, "push", messy_export.out_dir, "--repo-id", REPO)
    assert code == 1
    assert SECRET not in out + err
    assert len(err.strip().splitlines()) == 1 and expected in err


def test_unreachable_and_offline_hub(messy_export: ExportResult, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DatasetError, match="HF_HUB_OFFLINE"):
        push_dataset(messy_export.out_dir, REPO, token=SECRET, endpoint="http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(DatasetError, match=re.escape("cannot reach the Hub at http://127.0.0.1:9")) as caught:
        push_dataset(messy_export.out_dir, REPO, token=SECRET, endpoint="http://127.0.0.1:9")
    assert SECRET not in str(caught.value)
