"""Publish an export folder to the Hugging Face Hub: one commit, a version tag, private by default.

``HfApi.create_commit`` leaves out unchanged files and makes no empty commit. A repository holding files an
export never contains is refused; an existing version tag is never moved (the upload then goes to a pull
request). Hub errors become one plain :class:`~covid_ct_scan_images.errors.DatasetError`; the token is read
by ``huggingface_hub`` and never printed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub import errors as hf_errors
from huggingface_hub.utils import validate_repo_id

from .builder import DATASET_NAME
from .card import card_version, names_repository
from .errors import DatasetError, UsageError
from .export import CARD_FILENAME, EXPORT_ENTRIES, export_dataset, export_files, is_export_folder
from .versions import DATASET_VERSION

#: Files the Hub creates itself and an export may find in a repository it owns.
HUB_OWN_FILES = frozenset({".gitattributes"})

REPO_TYPE = "dataset"

#: The HTTP client's base error (``huggingface_hub`` wraps its HTTP library; connection failures arrive as these).
_TRANSPORT_ERRORS = (getattr(hf_errors, "HTTPError", OSError), ConnectionError, TimeoutError)

#: What an HTTP status of the Hub means for a push and what to do; ``{repo}`` and ``{namespace}`` are filled in.
HTTP_STATUS_MESSAGES = {
    401: "the Hub rejected the token (401 Unauthorized): it is invalid, expired or revoked. "
    "Run `hf auth login` again or set HF_TOKEN to a valid token.",
    403: "no permission to create or write {repo} (403 Forbidden): the token needs the write role, and "
    "the namespace {namespace!r} must be your user name or an organisation you can write to.",
    404: "repository {repo} was not found, or this token cannot see it (404).",
    409: "conflict on {repo} (409): another upload may be running; try again later.",
}

NO_TOKEN_MESSAGE = (
    "no Hugging Face token found. Log in with `hf auth login`, or set the environment variable HF_TOKEN "
    "to a token with write access (https://huggingface.co/settings/tokens)."
)


@dataclass
class UploadPlan:
    """What a push sends: the files, the commit message, the tag, and whether the repository is private."""

    repo_id: str | None
    folder: Path
    files: list[str]
    commit_message: str
    tag: str
    private: bool

    def operations(self) -> list[CommitOperationAdd]:
        """One ``CommitOperationAdd`` per file."""
        return [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(self.folder / name)) for name in self.files]

    def describe(self) -> str:
        """A human summary of the upload (the ``--dry-run`` output)."""
        sizes = {name: (self.folder / name).stat().st_size for name in self.files}
        target = self.repo_id or "none given (pass --repo-id NAMESPACE/NAME to upload)"
        return "\n".join(
            [
                f"repository: {target} (dataset, {'private' if self.private else 'PUBLIC'})",
                f"commit message: {self.commit_message}",
                f"tag: {self.tag}",
                f"{len(sizes)} file(s), {sum(sizes.values()) / 1e6:.1f} MB:",
                *(f"  {name}  ({size:,} bytes)" for name, size in sizes.items()),
            ]
        )


def check_repo_id(repo_id: str) -> None:
    """Raise a :class:`UsageError` unless ``repo_id`` is a valid ``namespace/name`` Hub id."""
    try:
        validate_repo_id(repo_id)
    except hf_errors.HFValidationError as error:
        raise UsageError(f"invalid --repo-id {repo_id!r}: {error}") from error
    if repo_id.count("/") != 1:
        raise UsageError(f"--repo-id must be NAMESPACE/NAME (e.g. your-user/{DATASET_NAME}), got {repo_id!r}")


def plan_upload(
    folder: str | os.PathLike[str], repo_id: str | None, public: bool = False, tag: str | None = None
) -> UploadPlan:
    """The upload of an export folder to ``repo_id`` (``None``: only to describe it; nothing is contacted)."""
    root = Path(folder)
    if not is_export_folder(root):
        raise UsageError(f"{root} is not an export folder (README.md and data/*.parquet); run `covid-ct export` first.")
    version = card_version(root / CARD_FILENAME)
    if version is None:
        raise UsageError(f"{root / CARD_FILENAME} states no dataset version; export the folder again.")
    if repo_id is not None:
        check_repo_id(repo_id)
        if not names_repository((root / CARD_FILENAME).read_text(encoding="utf-8"), repo_id):
            raise UsageError(
                f"the card in {root} was exported for another repository or none, so its loading example would not "
                f"name {repo_id}; run `covid-ct export PATH {root} --overwrite --repo-id {repo_id}` first."
            )
    return UploadPlan(
        repo_id=repo_id,
        folder=root,
        files=export_files(root),
        commit_message=f"Upload {DATASET_NAME} dataset version {version}",
        tag=tag or f"v{version}",
        private=not public,
    )


@contextlib.contextmanager
def hub_errors(repo_id: str, endpoint: str) -> Iterator[None]:
    """Turn the errors of ``huggingface_hub`` calls into one clear :class:`DatasetError` each."""
    try:
        yield
    except hf_errors.HfHubHTTPError as error:
        status = getattr(error.response, "status_code", None)
        if isinstance(error, hf_errors.RepositoryNotFoundError) and status not in (401, 403):
            status = 404
        message = HTTP_STATUS_MESSAGES.get(status, "the Hub at {endpoint} answered {status} for {repo}.").format(
            repo=repo_id, namespace=repo_id.split("/")[0], endpoint=endpoint, status=status or "an error"
        )
        detail = f" The Hub said: {error.server_message}" if error.server_message else ""
        raise DatasetError(message + detail) from error
    except hf_errors.OfflineModeIsEnabled as error:
        raise DatasetError("HF_HUB_OFFLINE is set, so nothing can be sent to the Hub; unset it to push.") from error
    except _TRANSPORT_ERRORS as error:
        raise DatasetError(f"cannot reach the Hub at {endpoint}: {type(error).__name__}: {error}") from error


@dataclass
class PushResult:
    """What a push did: the plan, the commit (``None`` when nothing changed), whether it tagged it."""

    plan: UploadPlan
    dry_run: bool = False
    commit: str | None = None
    tagged: bool = False
    private: bool | None = None

    def summary(self) -> str:
        """What happened, in a few lines (never the token)."""
        plan = self.plan
        if self.dry_run:
            return "DRY RUN: nothing was sent to the Hub.\n" + plan.describe()
        lines = [
            f"{plan.repo_id} already holds exactly this export: no commit made."
            if self.commit is None
            else f"committed the export to {plan.repo_id}: {plan.commit_message!r} ({self.commit[:12]})",
            f"tag {plan.tag}: " + ("created" if self.tagged else "already present"),
            *([] if self.private is None else ["visibility: " + ("private" if self.private else "PUBLIC")]),
            f'load it with: datasets.load_dataset("{plan.repo_id}", revision="{plan.tag}")',
        ]
        return "\n".join(lines)


def _upload(plan: UploadPlan, repo_id: str, api: HfApi) -> PushResult:
    """Create the repository if needed, commit the export and tag it. Errors: raw Hub ones."""
    api.create_repo(repo_id, repo_type=REPO_TYPE, private=plan.private, exist_ok=True)
    remote = [path for path in api.list_repo_files(repo_id, repo_type=REPO_TYPE) if path not in HUB_OWN_FILES]
    foreign = sorted(path for path in remote if path.split("/", 1)[0] not in EXPORT_ENTRIES)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise DatasetError(
            f"{repo_id} already exists with other content ({shown}); it is left untouched. "
            "Choose another --repo-id, or empty that repository first."
        )
    stale = [CommitOperationDelete(path_in_repo=path) for path in remote if path not in plan.files]
    tags = {ref.name: ref.target_commit for ref in api.list_repo_refs(repo_id, repo_type=REPO_TYPE).tags}
    before = api.repo_info(repo_id, repo_type=REPO_TYPE)
    info = api.create_commit(
        repo_id,
        operations=plan.operations() + stale,
        commit_message=plan.commit_message,
        commit_description=f"Exported by {DATASET_NAME}; tag {plan.tag}.",
        repo_type=REPO_TYPE,
        create_pr=plan.tag in tags,
    )
    if plan.tag in tags and info.oid != tags[plan.tag]:
        raise DatasetError(
            f"tag {plan.tag} already marks different content in {repo_id}; main and the tag are left as they were"
            + (f" (this export went to the pull request {info.pr_url} instead). " if info.pr_url else ". ")
            + "A changed dataset needs a new version (a new entry in covid_ct_scan_images/versions.py), or pass "
            "another --revision-tag."
        )
    if plan.tag not in tags:
        api.create_tag(repo_id, tag=plan.tag, tag_message=plan.commit_message, revision=info.oid, repo_type=REPO_TYPE)
    commit = None if info.oid == before.sha else info.oid
    return PushResult(plan, commit=commit, tagged=plan.tag not in tags, private=getattr(before, "private", None))


def _client(token: str | None, endpoint: str | None) -> HfApi:
    try:
        token = token or get_token()
    except hf_errors.OIDCError as error:
        raise DatasetError(f"could not get a Hugging Face token by OIDC exchange: {error}") from error
    if not token:
        raise DatasetError(NO_TOKEN_MESSAGE)
    return HfApi(endpoint=endpoint, token=token, library_name=DATASET_NAME, library_version=DATASET_VERSION)


def push_dataset(
    path: str | os.PathLike[str] | None,
    repo_id: str | None,
    *,
    public: bool = False,
    dry_run: bool = False,
    tag: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    api: HfApi | None = None,
    **export_options: object,
) -> PushResult:
    """Push an export folder, or a raw download exported first (with ``export_options``), to ``repo_id``.

    The repository is created private unless ``public``. ``dry_run`` contacts nothing and is the only mode
    that works without ``repo_id``. ``token`` and ``endpoint`` default to ``huggingface_hub``'s; ``api``
    replaces the ``HfApi`` client (tests).
    """
    if repo_id is None and not dry_run:
        raise UsageError("--repo-id NAMESPACE/NAME is needed to upload (only --dry-run works without it).")
    folder = Path(path) if path is not None else None
    with tempfile.TemporaryDirectory(prefix="covid-ct-push-") as staging:
        if folder is None or not (folder.is_dir() and is_export_folder(folder)):
            if repo_id is not None:
                check_repo_id(repo_id)  # before the export, which takes minutes on the full download
            folder = export_dataset(path, Path(staging) / "export", repo_id=repo_id, **export_options).out_dir
        plan = plan_upload(folder, repo_id, public=public, tag=tag)
        if dry_run or repo_id is None:
            return PushResult(plan=plan, dry_run=True)
        client = api or _client(token, endpoint)
        with hub_errors(repo_id, getattr(client, "endpoint", "the Hub")):
            return _upload(plan, repo_id, client)
