"""The one report of everything noticed about an input: problems by kind, each with its files."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Literal

from .synthetic import SYNTHETIC_BANNER

#: ``stop``: ground truth is uncertain, the build stops. ``left_out``: files that cannot be used.
#: ``warning``: something to fix that does not stop a default build. ``note``: for information.
Severity = Literal["stop", "left_out", "warning", "note"]
SEVERITY_ORDER: tuple[Severity, ...] = ("stop", "left_out", "warning", "note")

#: What to do about each kind of problem (shown once per kind in the text summary and saved in the JSON).
ADVICE: dict[str, str] = {
    "label_conflict": "fix the files or Train.xls, or decide with --label-source folder|sheet",
    "class_missing": "the dataset needs images of both classes; restore the class folder from the download",
    "not_read": "move images into the class folder of their label (links must stay inside the dataset folder)",
    "unreadable_folder": "make the folder readable (check its permissions) and run again",
    "sheet_conflict": "give each name one label in Train.xls",
    "sheet_unreadable": "restore Train.xls from the download, or remove it to build from the class folders alone",
    "sheet_label_unreadable": "write 0 or 1 in these cells of Train.xls (--strict stops on them)",
    "sheet_missing": "restore Train.xls from the download to cross-check the labels (--strict stops without it)",
    "unusable_file": "left out of the dataset; replace them with good copies from the download to include them "
    "(on a network or FUSE mount, then run prepare --verify)",
    "zip_member_skipped": "not extracted; extract the zip yourself and pass the folder if you need these files",
    "duplicate_bytes": "one copy is kept; delete the others to silence this",
    "duplicate_name": "one copy is kept; delete or rename the others",
    "listed_but_missing": "restore these files from the download (or ignore this if they were removed on purpose)",
    "not_in_sheet": "kept with the label of their folder; add rows to Train.xls, or --strict stops on them",
    "near_duplicate": "kept, and always placed in the same split; nothing to do",
    "not_in_manifest": "left out: the pinned manifest has no split for them",
    "manifest_conflict": "the pinned manifest disagrees with the data; fix one of them",
    "manifest_missing_image": "the pinned manifest lists images that are not in the data",
}


def readable_name(text: str) -> str:
    """``text`` with any undecodable file-name bytes made readable (they arrive as surrogates from ``os``).

    A name in GBK bytes (what ``unzip`` makes of a zip from a Chinese Windows) is shown decoded, marked
    ``[GBK bytes]``; other bytes as ``\\xNN`` escapes. The result is always valid UTF-8.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return f"{raw.decode('gbk')} [GBK bytes]"
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


@dataclass
class Problem:
    """One kind of problem and the files it concerns."""

    kind: str
    severity: Severity
    message: str
    files: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Counts and problems found while checking a raw download."""

    root: str = ""
    synthetic: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)

    def add(self, kind: str, severity: Severity, message: str, files: list[str] | None = None) -> None:
        """Record a problem (files sorted, so the report does not depend on input order)."""
        names = sorted(readable_name(name) for name in files or [])
        self.problems.append(Problem(kind=kind, severity=severity, message=readable_name(message), files=names))

    def __post_init__(self) -> None:
        self.root = readable_name(self.root)
        self.ignored = [(readable_name(name), reason) for name, reason in self.ignored]

    def by_severity(self, severity: Severity) -> list[Problem]:
        """The problems of one severity."""
        return [problem for problem in self.problems if problem.severity == severity]

    def blocking(self, strict: bool) -> list[Problem]:
        """Problems that stop a build: ``stop`` ones, and with ``strict`` everything but notes."""
        stopping = ("stop", "left_out", "warning") if strict else ("stop",)
        return [problem for problem in self.problems if problem.severity in stopping]

    @property
    def has_problems(self) -> bool:
        """Whether there is anything to fix (notes do not count)."""
        return any(problem.severity != "note" for problem in self.problems)

    def left_out_files(self) -> list[tuple[str, str]]:
        """(file, reason) for every file that was left out of the dataset."""
        return [(name, problem.message) for problem in self.by_severity("left_out") for name in problem.files]

    def to_dict(self) -> dict:
        """A JSON-ready dictionary."""
        data = asdict(self)
        data["ignored_counts"] = dict(Counter(reason for _, reason in self.ignored))
        data["advice"] = {problem.kind: ADVICE[problem.kind] for problem in self.problems if problem.kind in ADVICE}
        return data

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        """Rebuild a report saved with :meth:`to_dict`."""
        return cls(
            root=data.get("root", ""),
            synthetic=data.get("synthetic", False),
            counts=dict(data.get("counts", {})),
            problems=[Problem(**problem) for problem in data.get("problems", [])],
            ignored=[tuple(item) for item in data.get("ignored", [])],
        )

    def format_text(self, max_files: int = 10) -> str:
        """A human summary: counts, then problems by severity and kind, each message with its files."""
        lines = []
        if self.synthetic:
            lines.append(SYNTHETIC_BANNER)
        lines.append(f"raw download: {self.root}")
        lines.append("counts: " + ", ".join(f"{key} {value}" for key, value in self.counts.items()))
        if self.ignored:
            ignored = Counter(reason for _, reason in self.ignored)
            lines.append("ignored: " + ", ".join(f"{count} {reason}" for reason, count in sorted(ignored.items())))
        for severity in SEVERITY_ORDER:
            by_kind: dict[str, list[Problem]] = {}
            for problem in self.by_severity(severity):
                by_kind.setdefault(problem.kind, []).append(problem)
            for kind, problems in by_kind.items():
                count = len({name for problem in problems for name in problem.files})
                lines.append(f"[{severity}] {kind}" + (f", {count} file(s)" if count else "") + ":")
                if kind in ADVICE and severity != "note":
                    lines.append(f"  what to do: {ADVICE[kind]}")
                for problem in problems:
                    lines.append(f"  {problem.message}")
                    lines.extend(f"      {name}" for name in problem.files[:max_files])
                    if len(problem.files) > max_files:
                        lines.append(f"      ... and {len(problem.files) - max_files} more")
        if not self.has_problems:
            lines.append("no problems found")
        return "\n".join(lines)
