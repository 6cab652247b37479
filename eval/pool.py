"""The vote-pool curve (`hrm eval --pool N[,N...]`): accuracy when each item votes with only N of
its augmented versions.

An item's key (original puzzle, test input) is voted on by its versions (augmented puzzles, each
with all of its predictions: several with test-time candidates or an ensemble). For a pool size
N, a key with V versions votes with N of them, drawn uniformly without replacement (the
unaugmented version is one of the V, not always kept), and pass@K is the chance that the
ranked answers of that pool hold the right one within the top K:
  - V <= N: the one pool of all its versions (the full vote);
  - C(V, N) <= draws: every N-subset once, so the figure is the exact mean over all pools;
  - otherwise `draws` pools drawn at random (seeded by (seed, N): the figure for one N does
    not depend on which other N are asked for).
Per key the figure is the mean over its pools; then, as for every pass@K (eval/metrics.py),
the mean over the keys of a group and the mean over groups.

All pools of all keys are scored in one `eval.vote.vote` call: pool j of key k becomes a key of
its own holding the predictions of its versions.
"""
from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hrm.common import UsageError
from hrm.eval.metrics import group_means
from hrm.eval.vote import best_rank, vote

DEFAULT_DRAWS = 16


def parse_pool_sizes(text: str) -> list[int]:
    """'1,2,4,8' -> [1, 2, 4, 8] (sorted, without repeats); a usage error otherwise."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise UsageError(f"--pool takes pool sizes N >= 1 separated by commas (e.g. 1,2,4,8), got {text!r}")
        sizes.append(int(part))
    return sorted(set(sizes))


@dataclass
class PoolVotes:
    """Every prediction of the scored items, as the scorer keeps them."""

    key: np.ndarray        # int64 [P] the prediction's key
    version: np.ndarray    # int64 [P] its version (global example row: one per key and puzzle)
    ok: np.ndarray         # bool [P] the answer mapped back to a valid original-frame grid
    answer: np.ndarray     # uint64 [P] answer hash
    q_halt: np.ndarray     # float64 [P]
    residual: np.ndarray   # float64 [P] (NaN when unknown)
    right: np.ndarray      # bool [P] the answer is the key's truth


def _pools(versions_of_key: int, size: int, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """The pools (rows of version positions 0..V-1, int64 [S, min(N, V)]) of one key, and
    whether they are every possible pool."""
    if versions_of_key <= size:
        return np.arange(versions_of_key)[None], True
    if math.comb(versions_of_key, size) <= draws:
        return np.array(list(itertools.combinations(range(versions_of_key), size)), np.int64), True
    pools = np.stack([rng.choice(versions_of_key, size=size, replace=False) for _ in range(draws)])
    return pools, False


def _all_pools(versions_per_key: np.ndarray, key_first_pair: np.ndarray, size: int, draws: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """The pools of every key as (pair index, pool id) per member, the key of every pool, and
    whether every key's pools are all its possible ones."""
    pool_pairs, pool_ids, pool_key, exact = [], [], [], True
    for key in np.flatnonzero(versions_per_key):
        pools, complete = _pools(int(versions_per_key[key]), size, draws, rng)
        exact &= complete
        first = len(pool_key)
        pool_pairs.append((key_first_pair[key] + pools).ravel())
        pool_ids.append(np.repeat(np.arange(first, first + len(pools)), pools.shape[1]))
        pool_key += [key] * len(pools)
    empty = np.zeros(0, np.int64)
    return (np.concatenate(pool_pairs) if pool_pairs else empty, np.concatenate(pool_ids) if pool_ids else empty,
            np.asarray(pool_key, np.int64), exact)


def pool_curve(votes: PoolVotes, sizes: Sequence[int], ks: Sequence[int], *, key_group: np.ndarray,
               chosen_groups: np.ndarray, draws: int = DEFAULT_DRAWS, seed: int = 0,
               rank: str = "votes") -> dict[str, Any]:
    """{str(N): {"pass@K": mean over the chosen groups, ..., "exact": bool}} for every N in `sizes`.
    "exact" says every key's figure is the mean over all its pools (no sampling)."""
    if draws < 1:
        raise UsageError(f"--pool-draws must be at least 1, got {draws}")
    num_keys, num_groups = len(key_group), len(chosen_groups)
    # The distinct (key, version) pairs in order, and where each pair's predictions lie.
    order = np.lexsort((votes.version, votes.key))
    key_sorted, version_sorted = votes.key[order], votes.version[order]
    new_pair = np.ones(len(order), bool)
    new_pair[1:] = (key_sorted[1:] != key_sorted[:-1]) | (version_sorted[1:] != version_sorted[:-1])
    pair_start = np.flatnonzero(new_pair)
    pair_length = np.diff(np.append(pair_start, len(order)))
    pair_key = key_sorted[pair_start]
    key_first_pair = np.searchsorted(pair_key, np.arange(num_keys + 1))
    versions_per_key = np.diff(key_first_pair)
    curve: dict[str, Any] = {}
    for size in sizes:
        pairs, pair_pool, pool_key_array, exact = _all_pools(versions_per_key, key_first_pair, size, draws,
                                                             np.random.default_rng([seed, size]))
        # Expand each chosen pair to its predictions (rows of `order`).
        lengths = pair_length[pairs]
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        rows = order[np.repeat(pair_start[pairs], lengths) + offsets]
        row_pool = np.repeat(pair_pool, lengths)
        ok = votes.ok[rows]
        rows, row_pool = rows[ok], row_pool[ok]
        pool_votes = vote(row_pool, votes.answer[rows], votes.q_halt[rows], votes.residual[rows], rank)
        right = pool_votes.any_vote(votes.right[rows])
        best = best_rank(pool_votes, right, len(pool_key_array))
        solved = best[:, None] < np.asarray(ks)[None]  # [pools, K]
        # Per key: the mean over its pools (keys without predictions stay unsolved).
        per_key = np.zeros((num_keys, len(ks)))
        np.add.at(per_key, pool_key_array, solved)
        per_key /= np.maximum(np.bincount(pool_key_array, minlength=num_keys), 1)[:, None]
        per_group = group_means(per_key, key_group, num_groups)
        scored = per_group[chosen_groups] if chosen_groups.any() else np.zeros((0, len(ks)))
        entry: dict[str, Any] = {f"pass@{k}": float(scored[:, i].mean()) if len(scored) else 0.0
                                 for i, k in enumerate(ks)}
        entry["exact"] = bool(exact)
        curve[str(size)] = entry
    return curve


def format_pool_curve(curve: dict[str, Any], draws: int) -> str:
    """The curve as the readable table of `hrm eval` shows it."""
    ks = [name for name in next(iter(curve.values())) if name.startswith("pass@")]
    lines = [f"  vote pool (versions per item; mean over all pools, or {draws} seeded draws where marked ~):",
             "    " + f"{'N':>6}  " + "  ".join(f"{k:>7}" for k in ks)]
    for size, entry in curve.items():
        mark = " " if entry["exact"] else "~"
        lines.append("    " + f"{size:>5}{mark}  " + "  ".join(f"{entry[k]:7.2%}" for k in ks))
    return "\n".join(lines)


def plot_pool_curve(curve: dict[str, Any], out: str | os.PathLike, title: str = "", *,
                    force: bool = False) -> Path:
    """One chart: pass@K (up to three K) against the pool size N (.png, .svg or .pdf by `out`'s name)."""
    from hrm.show.charts import COLOURS, fraction_axis, new_figure, plot_line, save_figure, set_scale

    ks = [name for name in next(iter(curve.values())) if name.startswith("pass@")][:3]
    figure, (ax,) = new_figure(title=title or "vote pool")
    for colour, k in zip(COLOURS, ks):
        plot_line(ax, [(int(size), entry[k]) for size, entry in curve.items()], label=k, color=colour, marker="o",
                  markersize=4, linewidth=1.2)
    ax.set_title("accuracy by vote pool size", loc="left", fontsize="medium")
    ax.set_xlabel("versions per item (N)")
    set_scale(ax, [int(size) for size in curve], axis="x")
    if ax.get_xscale() == "linear":
        ax.xaxis.get_major_locator().set_params(integer=True)  # pool sizes are whole versions
    fraction_axis(ax)
    ax.legend(fontsize="x-small")
    return save_figure(figure, out, force=force)
