"""A tiny counter-based random stream for numba kernels (splitmix64).

Each task (a puzzle, an augmented version) owns a uint64[1] state seeded from numpy's
SeedSequence/Generator, so parallel kernels produce the same bytes whatever the thread
schedule - unlike numba's global np.random, whose per-thread states depend on scheduling.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def rng_next(rng: np.ndarray) -> np.uint64:
    """splitmix64: advance the uint64[1] state and return the next 64-bit output."""
    rng[0] += np.uint64(0x9E3779B97F4A7C15)
    z = rng[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def rng_below(rng: np.ndarray, k: int) -> int:
    """Uniform integer in [0, k) (modulo bias < k / 2**64, negligible)."""
    return int(rng_next(rng) % np.uint64(k))


@njit(cache=True)
def shuffle(values: np.ndarray, rng: np.ndarray) -> None:
    """Fisher-Yates shuffle in place."""
    for i in range(len(values) - 1, 0, -1):
        j = rng_below(rng, i + 1)
        values[i], values[j] = values[j], values[i]
