"""Reader for the reference code's puzzle CSV layout (`source,question,answer,rating`).

Sudoku and maze importers share it: each row's question/answer is a fixed-length string, read
with pyarrow into uint8 character codes so that validation and tokenisation are vectorised.
Problems are reported with the file's line number (the header is line 1).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from hrm.common import HrmError, log


@dataclass
class ReferenceCsv:
    path: Path
    questions: np.ndarray  # uint8 [n, length], ASCII codes
    answers: np.ndarray  # uint8 [n, length]
    ratings: np.ndarray  # int64 [n] (0 where the column is absent)
    line_numbers: np.ndarray  # int64 [n]: line of each row in the file
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    def __len__(self) -> int:
        return len(self.questions)

    def select(self, keep: np.ndarray) -> "ReferenceCsv":
        return ReferenceCsv(self.path, self.questions[keep], self.answers[keep], self.ratings[keep],
                            self.line_numbers[keep], list(self.skipped))

    def reject(self, bad: np.ndarray, reasons: list[str] | str, skip_invalid: bool) -> "ReferenceCsv":
        """Drop rows flagged in `bad` (bool [n]) with `reasons` (one per bad row, or one for all):
        an error naming the first line, or with `skip_invalid` a log line and the rows dropped."""
        bad = np.asarray(bad, bool)
        if not bad.any():
            return self
        lines = self.line_numbers[bad]
        reasons = [reasons] * len(lines) if isinstance(reasons, str) else reasons
        if not skip_invalid:
            more = f" (and {len(lines) - 1} more rows)" if len(lines) > 1 else ""
            raise HrmError(f"{self.path}:{lines[0]}: {reasons[0]}{more}; pass --skip-invalid to skip such rows")
        log(f"{self.path}: skipped {len(lines)} invalid rows (first: line {lines[0]}: {reasons[0]})")
        kept = self.select(~bad)
        kept.skipped.extend(zip(lines.tolist(), reasons))
        return kept


def _fixed_width_codes(column: pa.ChunkedArray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Characters of each string as uint8 codes [n, length], and a mask of rows of wrong length."""
    strings = column.to_numpy(zero_copy_only=False)
    lengths = np.fromiter((len(s) if isinstance(s, str) else -1 for s in strings), np.int64, len(strings))
    wrong = lengths != length
    codes = np.zeros((len(strings), length), np.uint8)
    good = np.flatnonzero(~wrong)
    if len(good):
        joined = "".join(strings[good]).encode("ascii", errors="replace")
        codes[good] = np.frombuffer(joined, np.uint8).reshape(len(good), length)
    return codes, wrong


def read_reference_csv(path: str | os.PathLike, length: int, *, skip_invalid: bool = False) -> ReferenceCsv:
    """Read `path`; every question and answer must have exactly `length` characters."""
    path = Path(path)
    if not path.is_file():
        raise HrmError(f"{path} does not exist")
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={"source": pa.string(), "question": pa.string(), "answer": pa.string(),
                          "rating": pa.float64()}))
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise HrmError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from None
    missing = {"question", "answer"} - set(table.column_names)
    if missing:
        raise HrmError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected header "
                       "source,question,answer,rating")
    if table.num_rows == 0:
        raise HrmError(f"{path}: no rows")
    questions, bad_question = _fixed_width_codes(table.column("question"), length)
    answers, bad_answer = _fixed_width_codes(table.column("answer"), length)
    if "rating" in table.column_names:
        ratings = np.nan_to_num(table.column("rating").to_numpy(zero_copy_only=False), nan=0).astype(np.int64)
    else:
        ratings = np.zeros(table.num_rows, np.int64)
    result = ReferenceCsv(path, questions, answers, ratings, np.arange(table.num_rows, dtype=np.int64) + 2)
    bad = bad_question | bad_answer
    reasons = [f"{'question' if q else 'answer'} is not {length} characters long"
               for q in bad_question[bad]]
    return result.reject(bad, reasons, skip_invalid)
