"""Read ``Train.xls`` (columns undocumented) and find its file-name and label columns.

The file-name column is the one whose values best match the image files found; the label column
is another column whose values read as a label (0/1, 1.0/0.0, positive/negative, COVID-19
positive/negative, 阳性/阴性) in most rows: a minority of unreadable cells (blank, ``2``,
``1.0000001``, a formula with no value) does not hide the column; each such cell is listed in
:attr:`SheetListing.unreadable_labels` and its row takes no part in the label cross-check.
A header row is recognised when its first cell is not a file name. Both columns can be named
explicitly (by header text or 0-based index).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DatasetError

if TYPE_CHECKING:  # pandas is imported when a sheet is read, so `import covid_ct_scan_images` stays light
    import pandas as pd

_NEGATIVE_WORDS = {"0", "negative", "neg", "normal", "covid-19 negative", "covid negative", "阴性", "false", "no"}
_POSITIVE_WORDS = {
    "1",
    "positive",
    "pos",
    "covid-19",
    "covid",
    "covid-19 positive",
    "covid positive",
    "阳性",
    "true",
    "yes",
}
_IMAGE_NAME = re.compile(r"\.(png|jpe?g)$", re.IGNORECASE)


@dataclass
class SheetListing:
    """The image names (and labels, when the sheet has them) that the sheet lists."""

    path: Path
    names: list[str]
    #: One label per name; ``None`` where the cell is not a label (listed in ``unreadable_labels``).
    labels: list[int | None] | None
    name_column: str
    label_column: str | None
    notes: list[str] = field(default_factory=list)
    #: (sheet row number, 1-based as Excel shows it; image name; the cell's value as read) per unreadable label.
    unreadable_labels: list[tuple[int, str, str]] = field(default_factory=list)


def parse_label(value: object) -> int | None:
    """Read one label cell: 0/1, 0.0/1.0, or a word such as positive/negative or 阳性/阴性."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value) if value in (0, 1) else None
    text = str(value).strip().lower()
    text = text[:-2] if text.endswith(".0") else text
    if text in _NEGATIVE_WORDS:
        return 0
    if text in _POSITIVE_WORDS:
        return 1
    return None


def _sniff(path: Path, head: bytes) -> str:
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    return "other"


def _read_frames(path: Path) -> tuple[list, list[str]]:
    """Read every sheet as a header-less frame; returns the frames and notes."""
    import pandas as pd

    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise DatasetError(f"{path}: cannot read the sheet ({error.strerror or error}).") from error
    kind = _sniff(path, head)
    notes = []
    if kind == "xlsx":
        engine = "openpyxl"
        notes.append(f"{path.name} is an .xlsx workbook with an .xls name; read it as .xlsx")
    elif kind == "xls":
        engine = "xlrd"
    else:
        looks = "empty" if not head else "text (CSV or similar)" if head.isascii() else "not a spreadsheet"
        raise DatasetError(
            f"{path}: is {looks}, not an Excel .xls workbook. Restore the Train.xls from the download, "
            "or remove it to build from the class folders alone."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = pd.read_excel(path, sheet_name=None, header=None, engine=engine, dtype=object)
    except ImportError as error:
        raise DatasetError(f"{path}: reading it needs {engine} ({error}); pip install {engine}.") from error
    except Exception as error:  # xlrd/openpyxl raise many unrelated types for corrupt files
        raise DatasetError(
            f"{path}: the workbook is corrupt or unreadable ({type(error).__name__}: {error}). "
            "Restore the Train.xls from the download, or remove it to build from the class folders alone."
        ) from error
    non_empty = {name: frame.dropna(how="all").dropna(axis=1, how="all") for name, frame in frames.items()}
    non_empty = {name: frame for name, frame in non_empty.items() if not frame.empty}
    if not non_empty:
        raise DatasetError(f"{path}: the workbook has no data (every sheet is empty).")
    if len(non_empty) > 1:
        raise DatasetError(
            f"{path}: the workbook has {len(non_empty)} sheets with data ({', '.join(map(repr, non_empty))}); "
            "the real Train.xls has one. Keep only the sheet that lists the images."
        )
    return list(non_empty.values()), notes


def _column_index(path: Path, frame, wanted: str, header: list[str] | None) -> int:
    if header is not None and wanted in header:
        return header.index(wanted)
    if wanted.isdigit() and int(wanted) < frame.shape[1]:
        return int(wanted)
    columns = header or list(range(frame.shape[1]))
    raise DatasetError(
        f"{path}: column {wanted!r} not found; the sheet has columns {columns}. "
        "Give --name-column / --label-column as one of those names or a 0-based index."
    )


def read_sheet(
    path: Path, image_names: list[str], name_column: str | None = None, label_column: str | None = None
) -> SheetListing:
    """Read the sheet at ``path`` and return the listed names and labels.

    ``image_names`` are the files found in the class folders; they identify the name column.
    """
    (frame,), notes = _read_frames(path)
    excel_rows = [int(index) + 1 for index in frame.index]  # empty rows were dropped: keep Excel's numbering
    frame = frame.reset_index(drop=True)
    frame.columns = range(frame.shape[1])
    known = {name.lower() for name in image_names}
    header, body = _split_header(frame, known)
    if name_column is not None:
        name_index = _column_index(path, frame, name_column, header)
    else:
        name_index = _detect_name_column(path, body, known)
    rows = body[body[name_index].notna()]
    if label_column is not None:
        label_index: int | None = _column_index(path, frame, label_column, header)
    else:
        label_index = _detect_label_column(rows, name_index)
    names = [str(value).strip() for value in rows[name_index]]
    labels, unreadable = (None, []) if label_index is None else _read_labels(rows, label_index, names, excel_rows)
    return SheetListing(
        path=path,
        names=names,
        labels=labels,
        name_column=_column_name(name_index, header) or "",
        label_column=_column_name(label_index, header),
        notes=notes,
        unreadable_labels=unreadable,
    )


def _split_header(frame: pd.DataFrame, known: set[str]) -> tuple[list[str] | None, pd.DataFrame]:
    """The header row (``None`` when the first row already lists a file) and the rows below it."""
    first_row = [str(value).strip() for value in frame.iloc[0]]
    has_header = not any(_IMAGE_NAME.search(cell) or cell.lower() in known for cell in first_row)
    return (first_row, frame.iloc[1:]) if has_header else (None, frame)


def _detect_name_column(path: Path, body: pd.DataFrame, known: set[str]) -> int:
    """The column with the most values naming a file found (ties: the leftmost), else the first with image names."""
    scores = {
        column: sum(str(value).strip().lower() in known for value in body[column].dropna()) for column in body.columns
    }
    name_index = max(scores, key=lambda column: (scores[column], -column))
    if scores[name_index] > 0:
        return name_index
    looks_like_names = [c for c in body.columns if body[c].astype(str).str.contains(_IMAGE_NAME).any()]
    if not looks_like_names:
        raise DatasetError(
            f"{path}: no column holds image file names (none of its values match a file in the class "
            "folders). Pass name_column / --name-column to say which column it is."
        )
    return looks_like_names[0]


def _read_labels(
    rows: pd.DataFrame, label_index: int, names: list[str], excel_rows: list[int]
) -> tuple[list[int | None], list[tuple[int, str, str]]]:
    """The label of each row (``None`` where the cell is not one) and (Excel row, name, cell) per such cell."""
    labels = [parse_label(value) for value in rows[label_index]]
    unreadable = [
        (excel_rows[position], name, _shown(value))
        for position, name, value, label in zip(rows.index, names, rows[label_index], labels, strict=True)
        if label is None
    ]
    return labels, unreadable


def _column_name(index: int | None, header: list[str] | None) -> str | None:
    """How the report names a column: its header text, or ``column N``."""
    if index is None:
        return None
    return header[index] if header else f"column {index}"


def _shown(value: object) -> str:
    """A label cell as the report shows it: blank cells (and formulas with no value) say so."""
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
        return "(blank)"
    return repr(value)


def _detect_label_column(rows, name_index: int) -> int | None:
    """The column (other than the names) whose cells read as labels in more than half of the rows.

    Requiring every cell to be a label would let one blank or mistyped cell switch the label
    cross-check off; the column with the most readable cells wins (ties: the leftmost).
    """
    if rows.empty:
        return None
    readable = {
        column: sum(parse_label(value) is not None for value in rows[column])
        for column in rows.columns
        if column != name_index
    }
    best = max(readable, key=lambda column: (readable[column], -column), default=None)
    return best if best is not None and 2 * readable[best] > len(rows) else None
