"""Bulk generation: thousands of prompts to images on disk, resumable, never paying twice.

``read_items(path)`` streams a JSONL or CSV file; ``run_bulk(client, items, out_dir=...)``
runs them with a journal (see ``_journal``) and writes a manifest. The command line's
``akool-async bulk`` is built on these.
"""

from ._folder import (
    FolderHasResultsError,
    JournalBusyError,
    JournalExistsError,
    JournalUnreadableError,
)
from ._input import BulkItem, InputProblem, parse_record, read_items
from ._manifest import Summary
from ._results import BulkStats, ImageResult, ItemResult
from ._runner import BulkRun, run_bulk
from ._states import ItemState

__all__ = [
    "BulkItem",
    "BulkRun",
    "BulkStats",
    "FolderHasResultsError",
    "ImageResult",
    "InputProblem",
    "ItemResult",
    "ItemState",
    "JournalBusyError",
    "JournalExistsError",
    "JournalUnreadableError",
    "Summary",
    "parse_record",
    "read_items",
    "run_bulk",
]
