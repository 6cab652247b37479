"""Majority voting over the original-frame answers of all versions of a puzzle (SPEC 6).

Each prediction carries a key (original puzzle, test input), the hash of its answer in the
original frame, and its q_halt logit. Per key, the distinct answers are ranked by vote count,
ties broken by the mean sigmoid(q_halt) of their votes (descending), then by hash so that the
order is deterministic. An item is solved at K when one of its top K answers is right.
Everything is sorting and segment reductions over flat arrays: 0.4M votes take well under a
second.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNRANKED = np.iinfo(np.int64).max  # rank of "no such answer"


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


def vote(keys: np.ndarray, answers: np.ndarray, q_halt: np.ndarray) -> Votes:
    """Count the votes for every distinct (key, answer) and rank the answers within each key."""
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
    # Rank inside each key: most votes first, then most confident, then smallest hash.
    by_rank = np.lexsort((answer_hash, -confidence, -count, answer_key))
    ranked_keys = answer_key[by_rank]
    run_start = np.flatnonzero(np.append(True, ranked_keys[1:] != ranked_keys[:-1]))
    run_length = np.diff(np.append(run_start, len(by_rank)))
    position = np.arange(len(by_rank)) - np.repeat(run_start, run_length)
    rank = np.empty(len(by_rank), np.int64)
    rank[by_rank] = position
    return Votes(answer_key, answer_hash, count, confidence, rank, order[start], start, order)


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
