"""Errors the library raises on purpose; each message names the file and what to do."""

from __future__ import annotations


class DatasetError(Exception):
    """The input cannot be turned into the dataset as asked; the message says why and what to do."""


class UsageError(DatasetError):
    """The request itself is wrong: a path that does not exist, a bad option (exit code 2)."""


class ManualDownloadError(DatasetError):
    """No raw download was found where the library looked; the message says how to get it."""
