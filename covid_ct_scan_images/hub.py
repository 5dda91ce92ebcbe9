"""Publish an export folder to the Hugging Face Hub: one commit, a version tag, private by default.

:func:`plan_upload` turns an export folder (see :mod:`covid_ct_scan_images.export`) into the upload: one
``CommitOperationAdd`` per file, the commit message naming the dataset version, the tag ``v<VERSION>``.
:func:`push_dataset` exports first when given a raw download, then creates the dataset repository
(**private** unless ``public``), compares the folder with the files already on the Hub (SHA-256 for LFS
files, the git blob id for the others) and commits only when something differs, so pushing identical
content again makes no commit. It refuses to write into a repository holding files that an export never
contains, and to move an existing version tag to different content. Every error the Hub returns becomes
one :class:`~covid_ct_scan_images.errors.DatasetError` with a plain message; the token is read by
``huggingface_hub`` (``HF_TOKEN``, ``hf auth login``) and never printed or stored by this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import huggingface_hub.errors
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    OIDCError,
    RepositoryNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from .builder import DATASET_NAME, DATASET_VERSION
from .errors import DatasetError, UsageError
from .export import CARD_FILENAME, EXPORT_ENTRIES, export_dataset, export_files, is_export_folder

#: Files the Hub creates itself and an export may find in a repository it owns.
HUB_OWN_FILES = frozenset({".gitattributes"})

REPO_TYPE = "dataset"

#: The HTTP client's base error (``huggingface_hub`` wraps its HTTP library; connection failures arrive as these).
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    getattr(huggingface_hub.errors, "HTTPError", OSError),
    ConnectionError,
    TimeoutError,
)

_TITLE_VERSION = re.compile(r"^# .*, version (\S+)\s*$", re.MULTILINE)

NO_TOKEN_MESSAGE = (
    "no Hugging Face token found. Log in with `hf auth login`, or set the environment variable HF_TOKEN "
    "to a token with write access (https://huggingface.co/settings/tokens)."
)


def default_tag(version: str = DATASET_VERSION) -> str:
    """The tag a push puts on its commit: ``v`` and the dataset version."""
    return f"v{version}"


def commit_message(version: str) -> str:
    """The message of the upload commit; it names the dataset version."""
    return f"Upload {DATASET_NAME} dataset version {version}"


def export_version(folder: Path) -> str:
    """The dataset version an export folder was written for, from its card's title."""
    match = _TITLE_VERSION.search((folder / CARD_FILENAME).read_text(encoding="utf-8"))
    if match is None:
        raise DatasetError(f"{folder / CARD_FILENAME} does not name a dataset version; export the folder again.")
    return match.group(1)


def git_blob_id(path: Path) -> str:
    """The git object id of a file (what the Hub lists as ``blob_id`` for files not stored with LFS)."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (what the Hub lists for LFS files)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class UploadPlan:
    """What a push sends: the files, the commit message, the tag, and whether the repository is private."""

    repo_id: str
    folder: Path
    files: list[str]
    commit_message: str
    tag: str
    private: bool
    version: str

    def operations(self, paths: list[str] | None = None) -> list[CommitOperationAdd]:
        """One ``CommitOperationAdd`` per file (all files, or those in ``paths``)."""
        chosen = self.files if paths is None else [name for name in self.files if name in set(paths)]
        return [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(self.folder / name)) for name in chosen]

    def describe(self) -> str:
        """A human summary of the upload (the ``--dry-run`` output)."""
        total = sum((self.folder / name).stat().st_size for name in self.files)
        lines = [
            f"repository: {self.repo_id} (dataset, {'private' if self.private else 'PUBLIC'})",
            f"commit message: {self.commit_message}",
            f"tag: {self.tag}",
            f"{len(self.files)} file(s), {total / 1e6:.1f} MB:",
        ]
        lines.extend(f"  {name}  ({(self.folder / name).stat().st_size:,} bytes)" for name in self.files)
        return "\n".join(lines)


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a valid ``namespace/name`` Hub id, else a :class:`UsageError`."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise UsageError(f"invalid --repo-id {repo_id!r}: {error}") from error
    if repo_id.count("/") != 1:
        raise UsageError(f"--repo-id must be NAMESPACE/NAME (e.g. your-user/{DATASET_NAME}), got {repo_id!r}")
    return repo_id


def plan_upload(
    folder: str | os.PathLike[str], repo_id: str, public: bool = False, tag: str | None = None
) -> UploadPlan:
    """The upload of an export folder to ``repo_id`` (nothing is contacted)."""
    root = Path(folder)
    if not is_export_folder(root):
        raise UsageError(f"{root} is not an export folder (README.md and data/*.parquet); run `covid-ct export` first.")
    version = export_version(root)
    return UploadPlan(
        repo_id=check_repo_id(repo_id),
        folder=root,
        files=export_files(root),
        commit_message=commit_message(version),
        tag=tag or default_tag(version),
        private=not public,
        version=version,
    )


def _status(error: HfHubHTTPError) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


@contextlib.contextmanager
def hub_errors(repo_id: str, endpoint: str) -> Iterator[None]:
    """Turn the errors of ``huggingface_hub`` calls into one clear :class:`DatasetError` each."""
    try:
        yield
    except DatasetError:
        raise
    except HfHubHTTPError as error:
        status = _status(error)
        server = getattr(error, "server_message", None) or ""
        detail = f" The Hub said: {server}" if server else ""
        if status == 401:
            message = (
                "the Hub rejected the token (401 Unauthorized): it is invalid, expired or revoked. "
                "Run `hf auth login` again or set HF_TOKEN to a valid token."
            )
        elif status == 403:
            message = (
                f"no permission to create or write {repo_id} (403 Forbidden): the token needs the write role, and "
                f"the namespace {repo_id.split('/')[0]!r} must be your user name or an organisation you can write to."
            )
        elif isinstance(error, RepositoryNotFoundError) or status == 404:
            message = f"repository {repo_id} was not found, or this token cannot see it (404)."
        elif status == 409:
            message = f"conflict on {repo_id} (409): another upload may be running; try again later."
        else:
            message = f"the Hub at {endpoint} answered {status or 'an error'} for {repo_id}."
        raise DatasetError(message + detail) from error
    except OfflineModeIsEnabled as error:
        raise DatasetError("HF_HUB_OFFLINE is set, so nothing can be sent to the Hub; unset it to push.") from error
    except _TRANSPORT_ERRORS as error:
        raise DatasetError(f"cannot reach the Hub at {endpoint}: {type(error).__name__}: {error}") from error


@dataclass
class RemoteFile:
    """A file already in the repository: its path and how the Hub identifies its content."""

    path: str
    blob_id: str
    sha256: str | None

    def same_as(self, local: Path) -> bool:
        """Whether ``local`` has the same content (SHA-256 for LFS files, git blob id otherwise)."""
        return self.sha256 == file_sha256(local) if self.sha256 else self.blob_id == git_blob_id(local)


def remote_files(api: HfApi, repo_id: str) -> dict[str, RemoteFile]:
    """The files of the repository's main branch (empty for a new repository)."""
    files = {}
    for entry in api.list_repo_tree(repo_id, recursive=True, repo_type=REPO_TYPE):
        if hasattr(entry, "blob_id"):
            lfs = getattr(entry, "lfs", None)
            files[entry.path] = RemoteFile(entry.path, entry.blob_id, lfs.sha256 if lfs else None)
    return files


def foreign_files(remote: dict[str, RemoteFile]) -> list[str]:
    """Repository files that no export writes (their presence means the repository holds something else)."""
    return sorted(path for path in remote if path not in HUB_OWN_FILES and path.split("/", 1)[0] not in EXPORT_ENTRIES)


@dataclass
class PushResult:
    """What a push did: the plan, the commit (``None`` when nothing changed), the files sent and removed."""

    plan: UploadPlan
    dry_run: bool = False
    commit: str | None = None
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    tagged: bool = False
    private: bool | None = None
    url: str = ""

    def summary(self) -> str:
        """What happened, in a few lines (never the token)."""
        plan = self.plan
        if self.dry_run:
            return "DRY RUN: nothing was sent to the Hub.\n" + plan.describe()
        if self.commit is None:
            lines = [f"{plan.repo_id} already holds exactly this export: no commit made."]
        else:
            lines = [
                f"committed {len(self.uploaded)} changed file(s)"
                + (f" and removed {len(self.deleted)}" if self.deleted else "")
                + f" to {plan.repo_id}: {plan.commit_message!r} ({self.commit[:12]})"
            ]
        lines.append(f"tag {plan.tag}: " + ("created" if self.tagged else "already present"))
        if self.private is not None:
            lines.append("visibility: " + ("private" if self.private else "PUBLIC"))
        lines.append(f'load it with: datasets.load_dataset("{plan.repo_id}", revision="{plan.tag}")')
        return "\n".join(lines)


def upload(plan: UploadPlan, api: HfApi) -> PushResult:
    """Create the repository if needed and commit what differs from it; tag the result. Errors: raw Hub ones."""
    repo_url = api.create_repo(plan.repo_id, repo_type=REPO_TYPE, private=plan.private, exist_ok=True)
    remote = remote_files(api, plan.repo_id)
    foreign = foreign_files(remote)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise DatasetError(
            f"{plan.repo_id} already exists with other content ({shown}); it is left untouched. "
            "Choose another --repo-id, or empty that repository first."
        )
    changed = [name for name in plan.files if name not in remote or not remote[name].same_as(plan.folder / name)]
    stale = sorted(path for path in remote if path not in HUB_OWN_FILES and path not in plan.files)
    tags = {ref.name: ref.target_commit for ref in api.list_repo_refs(plan.repo_id, repo_type=REPO_TYPE).tags}
    if plan.tag in tags and (changed or stale):
        raise DatasetError(
            f"tag {plan.tag} already marks different content in {plan.repo_id}; a changed dataset needs a new "
            "version (bump DATASET_VERSION and add it to the version history), or pass another --revision-tag."
        )
    result = PushResult(plan=plan, url=str(repo_url))
    if changed or stale:
        operations = plan.operations(changed) + [CommitOperationDelete(path_in_repo=path) for path in stale]
        info = api.create_commit(
            plan.repo_id,
            operations=operations,
            commit_message=plan.commit_message,
            commit_description=f"Exported by {DATASET_NAME}; tag {plan.tag}.",
            repo_type=REPO_TYPE,
        )
        result.commit, result.uploaded, result.deleted = info.oid, changed, stale
        revision = info.oid
    else:
        revision = api.repo_info(plan.repo_id, repo_type=REPO_TYPE).sha
    if plan.tag not in tags:
        api.create_tag(
            plan.repo_id, tag=plan.tag, tag_message=plan.commit_message, revision=revision, repo_type=REPO_TYPE
        )
        result.tagged = True
    result.private = getattr(api.repo_info(plan.repo_id, repo_type=REPO_TYPE), "private", None)
    return result


def push_dataset(
    path: str | os.PathLike[str] | None,
    repo_id: str,
    *,
    public: bool = False,
    dry_run: bool = False,
    tag: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    api: HfApi | None = None,
    **export_options: object,
) -> PushResult:
    """Push an export folder, or a raw download exported on the fly, to the dataset repository ``repo_id``.

    The repository is created private unless ``public``. ``dry_run`` only plans (and exports, for a raw
    download) and contacts nothing. ``token`` defaults to ``huggingface_hub``'s (``HF_TOKEN``, then the
    ``hf auth login`` file); ``endpoint`` is the Hub's address (default ``HF_ENDPOINT``, else huggingface.co).
    ``api`` replaces the ``HfApi`` client (tests). ``export_options`` go to
    :func:`~covid_ct_scan_images.export.export_dataset` when ``path`` is a raw download.
    """
    check_repo_id(repo_id)
    source = Path(path) if path is not None else None
    with contextlib.ExitStack() as stack:
        if source is not None and source.is_dir() and is_export_folder(source):
            folder = source
        else:
            staging = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="covid-ct-push-")))
            folder = export_dataset(path, staging / "export", repo_id=repo_id, **export_options).out_dir
        plan = plan_upload(folder, repo_id, public=public, tag=tag)
        if dry_run:
            return PushResult(plan=plan, dry_run=True)
        client = api
        if client is None:
            try:
                token = token or get_token()
            except OIDCError as error:
                raise DatasetError(f"could not get a Hugging Face token by OIDC exchange: {error}") from error
            if not token:
                raise DatasetError(NO_TOKEN_MESSAGE)
            client = HfApi(endpoint=endpoint, token=token, library_name=DATASET_NAME, library_version=DATASET_VERSION)
        with hub_errors(repo_id, getattr(client, "endpoint", "the Hub")):
            return upload(plan, client)
    raise AssertionError("unreachable")  # pragma: no cover (for type checkers: ExitStack may swallow)


__all__ = [
    "NO_TOKEN_MESSAGE",
    "PushResult",
    "UploadPlan",
    "check_repo_id",
    "commit_message",
    "default_tag",
    "hub_errors",
    "plan_upload",
    "push_dataset",
    "upload",
]
