"""A tiny counter-based random stream for numba kernels (splitmix64).

Each task (a puzzle, an augmented version) owns a uint64[1] state seeded from numpy's
SeedSequence/Generator, so parallel kernels produce the same bytes whatever the thread
schedule - unlike numba's global np.random, whose per-thread states depend on scheduling.
"""
from __future__ import annotations

import numpy as np
from numba import njit


_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S27, _S30, _S31 = np.uint64(27), np.uint64(30), np.uint64(31)


@njit(cache=True)
def mix64(x: np.uint64) -> np.uint64:
    """splitmix64 finaliser: a bijective scramble of 64 bits (also the mixing step of eval's
    answer hashes, so that short inputs' high bits are well mixed)."""
    x = (x ^ (x >> _S30)) * _MIX1
    x = (x ^ (x >> _S27)) * _MIX2
    return x ^ (x >> _S31)


@njit(cache=True)
def rng_next(rng: np.ndarray) -> np.uint64:
    """splitmix64: advance the uint64[1] state and return the next 64-bit output."""
    rng[0] += _GAMMA
    return mix64(rng[0])


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
