"""Import sudoku puzzles from the reference CSV layout (`source,question,answer,rating`).

Every row is checked before anything is written, and a bad row is reported with its line:
  * format (vectorised over all rows): question of n*n characters in `.`, `0`, `1`..`n`;
    answer of n*n digits `1`..`n`; the answer agrees with every clue; the answer is a valid
    sudoku (every row, column and box holds each digit once);
  * solving (for the rows drawn into the split): the puzzle has exactly one solution, and it
    is the answer. Ratings come from our own rater; the CSV's rating is kept as `source_rating`.
With `skip_invalid`, bad rows are dropped and reported instead of failing the build.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from hrm.common import HrmError, deferred_interrupt, log
from hrm.builders.reference_csv import ReferenceCsv, read_reference_csv
from hrm.builders.sudoku_kernels import STAT_DEAD_ENDS, solve_batch, sudoku_tables

_BLANK_CHARS = (ord("."), ord("0"))
_SOLVE_CHUNK = 4096  # rows solved per parallel call while drawing a subsample
_CHECK_CHUNK = 65536  # rows format-checked per vectorised step


@dataclass
class ImportedPuzzles:
    puzzles: np.ndarray  # int8 [P, N] digits, 0 = blank
    solutions: np.ndarray  # int8 [P, N]
    ratings: np.ndarray  # int64 [P], our rater
    source_ratings: np.ndarray  # int64 [P], the CSV's rating column
    lines: np.ndarray  # int64 [P], line of each puzzle in the CSV
    skipped: list[tuple[int, str]] = field(default_factory=list)
    below_min_difficulty: int = 0


def _unit_name(unit: int, n: int) -> str:
    kind = ("row", "column", "box")[unit // n]
    return f"{kind} {unit % n + 1}"


def _format_problems(csv: ReferenceCsv, box: int) -> tuple[np.ndarray, list[str]]:
    """Rows failing a format check (bool [n]) and the first problem of each, in row order.
    Vectorised over chunks of rows, so a multi-million-row CSV needs little extra memory."""
    bad = np.zeros(len(csv), bool)
    reasons: list[str] = []
    for start in range(0, len(csv), _CHECK_CHUNK):
        chunk_bad, chunk_reasons = _format_problems_chunk(
            csv.questions[start:start + _CHECK_CHUNK], csv.answers[start:start + _CHECK_CHUNK], box)
        bad[start:start + _CHECK_CHUNK] = chunk_bad
        reasons.extend(chunk_reasons)
    return bad, reasons


def _format_problems_chunk(questions: np.ndarray, answers: np.ndarray,
                           box: int) -> tuple[np.ndarray, list[str]]:
    n = box * box

    def is_digit(codes: np.ndarray) -> np.ndarray:
        return (codes >= ord("1")) & (codes <= ord("0") + n)

    clue = is_digit(questions)
    bad_question_char = ~(clue | np.isin(questions, _BLANK_CHARS))
    bad_answer_char = ~is_digit(answers)
    contradiction = clue & (questions != answers) & ~bad_answer_char
    _, units = sudoku_tables(box)
    answer_bits = np.where(bad_answer_char, 0, np.left_shift(1, answers.astype(np.int32) - ord("1")))
    bad_unit = np.bitwise_or.reduce(answer_bits[:, units], axis=2) != (1 << n) - 1
    bad = (bad_question_char.any(1) | bad_answer_char.any(1) | contradiction.any(1)
           | bad_unit.any(1))
    reasons = []
    for row in np.flatnonzero(bad):
        if bad_question_char[row].any():
            p = int(np.argmax(bad_question_char[row]))
            reasons.append(f"question has {chr(questions[row, p])!r} at position {p + 1} "
                           f"(expected 1-{n}, '.' or '0')")
        elif bad_answer_char[row].any():
            p = int(np.argmax(bad_answer_char[row]))
            reasons.append(f"answer has {chr(answers[row, p])!r} at position {p + 1} (expected digits 1-{n})")
        elif contradiction[row].any():
            p = int(np.argmax(contradiction[row]))
            reasons.append(f"answer {chr(answers[row, p])} contradicts clue {chr(questions[row, p])} "
                           f"at row {p // n + 1}, column {p % n + 1}")
        else:
            unit = int(np.argmax(bad_unit[row]))
            reasons.append(f"answer is not a valid sudoku ({_unit_name(unit, n)} repeats a digit)")
    return bad, reasons


def _digits(codes: np.ndarray) -> np.ndarray:
    digits = codes.astype(np.int16) - ord("0")
    return np.where((digits >= 1) & (digits <= 9), digits, 0).astype(np.int8)


def import_csv(path: str | os.PathLike, *, box: int, size: int, rng: np.random.Generator,
               skip_invalid: bool, min_difficulty: int = 0) -> ImportedPuzzles:
    """Up to `size` checked puzzles from `path`, a seeded subsample when the file has more
    (kept in file order). Raises HrmError naming the line of a bad row unless `skip_invalid`."""
    n = box * box
    csv = read_reference_csv(path, n * n, skip_invalid=skip_invalid)
    skipped = list(csv.skipped)
    bad, reasons = _format_problems(csv, box)
    csv = csv.reject(bad, reasons, skip_invalid)
    skipped = list(csv.skipped)
    if len(csv) == 0:
        raise HrmError(f"{path}: no valid rows")
    # Rows are drawn in a seeded random order and solved chunk by chunk until `size` pass, so a
    # huge CSV is not solved whole; all rows are used (in file order) when size >= rows.
    order = np.arange(len(csv)) if size >= len(csv) else rng.permutation(len(csv))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    peers, units = sudoku_tables(box)
    chosen: list[np.ndarray] = []
    chosen_ratings: list[np.ndarray] = []
    have = below = 0
    start = 0
    while have < size and start < len(order):
        stop = min(len(order), start + max(_SOLVE_CHUNK, 2 * (size - have)))
        rows = np.sort(order[start:stop])
        start = stop
        chunk = csv.select(rows)
        with deferred_interrupt():
            counts, first, stats = solve_batch(_digits(chunk.questions), peers, units, n, 2)
        wrong = (counts == 1) & (first != _digits(chunk.answers)).any(1)
        bad = (counts != 1) | wrong
        reasons = ["puzzle has no solution" if c == 0 else
                   "puzzle has more than one solution" if c > 1 else
                   "the answer is not the puzzle's solution" for c in counts[bad]]
        checked = chunk.reject(bad, reasons, skip_invalid)
        skipped.extend(checked.skipped[len(chunk.skipped):])
        ratings = stats[~bad, STAT_DEAD_ENDS]
        keep = ratings >= min_difficulty
        below += int((~keep).sum())
        # the chunk is solved in file order (errors name the first bad line); the rows taken
        # are the first ones of the seeded draw order
        kept_rows, ratings = rows[~bad][keep], ratings[keep]
        first_drawn = np.argsort(rank[kept_rows], kind="stable")[:size - have]
        kept_rows, ratings = kept_rows[first_drawn], ratings[first_drawn]
        chosen.append(kept_rows)
        chosen_ratings.append(ratings)
        have += len(kept_rows)
    rows = np.concatenate(chosen)
    ratings = np.concatenate(chosen_ratings)
    in_file_order = np.argsort(rows, kind="stable")
    rows, ratings = rows[in_file_order], ratings[in_file_order]
    if below:
        log(f"{path}: {below} puzzles rated below --min-difficulty {min_difficulty} were left out")
    if len(rows) == 0:
        raise HrmError(f"{path}: no puzzle passed the checks" +
                       (f" with rating >= {min_difficulty}" if min_difficulty else ""))
    if len(rows) < size:
        log(f"{path}: {len(rows)} usable puzzles (asked for {size})")
    selected = csv.select(rows)
    return ImportedPuzzles(_digits(selected.questions), _digits(selected.answers), ratings,
                           selected.ratings, selected.line_numbers, skipped, below)
