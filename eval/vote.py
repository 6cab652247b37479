"""Ranking the original-frame answers of all candidates of a puzzle (SPEC 6).

Each prediction (a vote: one augmented version, checkpoint or test-time candidate) carries a key
(original puzzle, test input), the hash of its answer in the original frame, its q_halt logit and
optionally its fixed-point residual. Per key, the distinct answers are ranked by a ranker:
  votes     vote count, ties by mean sigmoid(q_halt) (the default, the reference's rule)
  max_q     the highest q_halt of a vote for the answer (PTRM: keep the most confident trajectory)
  mean_q    the mean sigmoid(q_halt) of its votes
  residual  the smallest residual of a vote for the answer (EqR: the best-converged trajectory)
  q_votes   votes weighted by confidence: the sum of sigmoid(q_halt) of its votes
Remaining ties go to more votes, then to the smaller hash, so that the order is deterministic. An
item is solved at K when one of its top K answers is right.
Everything is sorting and segment reductions over flat arrays: 0.4M votes take well under a
second.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNRANKED = np.iinfo(np.int64).max  # rank of "no such answer"
RANKERS = ("votes", "max_q", "mean_q", "residual", "q_votes")


@dataclass
class Votes:
    """The distinct answers, one entry per (key, answer hash), in (key, hash) order."""

    key: np.ndarray          # int64 [U]
    answer: np.ndarray       # uint64 [U] answer hash
    count: np.ndarray        # int64 [U] votes
    confidence: np.ndarray   # float64 [U] mean sigmoid(q_halt) of the votes
    rank: np.ndarray         # int64 [U] 0 = the key's top answer
    first_vote: np.ndarray   # int64 [U] index (into the vote arrays) of one vote for the answer
    segment_start: np.ndarray  # int64 [U] where its votes start in `order`
    order: np.ndarray        # int64 [V] the votes sorted by (key, hash)

    def any_vote(self, flags: np.ndarray) -> np.ndarray:
        """Per answer: does any of its votes carry `flags` (bool [V])?"""
        if not len(self.key):
            return np.zeros(0, bool)
        return np.maximum.reduceat(np.asarray(flags, bool)[self.order], self.segment_start)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    logits = np.nan_to_num(np.asarray(logits, np.float64), nan=-np.inf)
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # overflow-free logistic


def vote(keys: np.ndarray, answers: np.ndarray, q_halt: np.ndarray, residual: np.ndarray | None = None,
         rank: str = "votes") -> Votes:
    """Count the votes for every distinct (key, answer) and rank the answers within each key by
    `rank` (one of RANKERS; "residual" needs `residual`, one value per vote)."""
    if rank not in RANKERS:
        raise ValueError(f"unknown ranker {rank!r} (known: {', '.join(RANKERS)})")
    if rank == "residual" and residual is None:
        raise ValueError("the residual ranker needs the votes' residuals")
    keys = np.asarray(keys, np.int64)
    answers = np.asarray(answers, np.uint64)
    order = np.lexsort((answers, keys))
    sorted_keys, sorted_answers = keys[order], answers[order]
    new = np.ones(len(order), bool)
    new[1:] = (sorted_keys[1:] != sorted_keys[:-1]) | (sorted_answers[1:] != sorted_answers[:-1])
    start = np.flatnonzero(new)
    count = np.diff(np.append(start, len(order)))
    confidence = (np.add.reduceat(sigmoid(q_halt)[order], start) / count
                  if len(start) else np.zeros(0))
    answer_key, answer_hash = sorted_keys[start], sorted_answers[start]
    # Rank inside each key by the ranker's score (best first), then most votes, then smallest hash.
    if rank == "votes":
        by_rank = np.lexsort((answer_hash, -_tie_safe(confidence), -count, answer_key))
    else:
        by_rank = np.lexsort((answer_hash, -count, _badness(rank, order, start, q_halt, residual, count),
                              answer_key))
    ranked_keys = answer_key[by_rank]
    run_start = np.flatnonzero(np.append(True, ranked_keys[1:] != ranked_keys[:-1]))
    run_length = np.diff(np.append(run_start, len(by_rank)))
    position = np.arange(len(by_rank)) - np.repeat(run_start, run_length)
    rank = np.empty(len(by_rank), np.int64)
    rank[by_rank] = position
    return Votes(answer_key, answer_hash, count, confidence, rank, order[start], start, order)


def _badness(rank: str, order: np.ndarray, start: np.ndarray, q_halt: np.ndarray,
             residual: np.ndarray | None, count: np.ndarray) -> np.ndarray:
    """Per distinct answer, the ranker's score with lower = better (votes sorted by `order`,
    answers starting at `start`)."""
    if not len(start):
        return np.zeros(0)
    if rank == "max_q":  # a NaN logit never wins
        logits = np.nan_to_num(np.asarray(q_halt, np.float64), nan=-np.inf)[order]
        return -np.maximum.reduceat(logits, start)
    if rank == "residual":  # a missing (NaN) residual never wins
        values = np.nan_to_num(np.asarray(residual, np.float64), nan=np.inf)[order]
        return np.minimum.reduceat(values, start)
    confidence_sum = np.add.reduceat(sigmoid(q_halt)[order], start)
    return -_tie_safe(confidence_sum / count if rank == "mean_q" else confidence_sum)


def _tie_safe(values: np.ndarray) -> np.ndarray:
    """Sums and means of sigmoids, rounded to 12 decimals: answers whose scores are equal but for
    the order of float additions tie (and go to the next criterion) instead of ranking by noise."""
    return np.round(values, 12)


def best_rank(votes: Votes, flags: np.ndarray, num_keys: int, key_offset: int = 0) -> np.ndarray:
    """Per key (key_offset .. key_offset+num_keys), the best rank of an answer with `flags`
    (bool per answer), UNRANKED if none: the key is solved at K iff best_rank < K."""
    out = np.full(num_keys, UNRANKED, np.int64)
    flagged = np.flatnonzero(flags)
    np.minimum.at(out, votes.key[flagged] - key_offset, votes.rank[flagged])
    return out


def top_answers(votes: Votes, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key, rank, answer index) of every answer ranked below `k`, sorted by key then rank."""
    chosen = np.flatnonzero(votes.rank < k)
    chosen = chosen[np.lexsort((votes.rank[chosen], votes.key[chosen]))]
    return votes.key[chosen], votes.rank[chosen], chosen
