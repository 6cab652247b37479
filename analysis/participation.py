"""The participation ratio (PR) of a cloud of state vectors, and its growth with the number of items.

    PR = (sum_i lambda_i)^2 / sum_i lambda_i^2

over the eigenvalues lambda of the covariance of the vectors: k equally strong directions give
PR = k, one dominant direction PR ~ 1. It equals (tr C)^2 / tr(C^2) = (tr C)^2 / ||C||_F^2, which
needs no eigendecomposition. `hrm trace` feeds the vectors chunk by chunk: only the running
sums (count, sum x, sum x x^T, in float64) are kept, so the memory is hidden^2 whatever the
number of samples.

The HRM paper's second claim (z_high's PR grows with the number of distinct puzzles, z_low's
stays flat) needs the PR of nested subsets of the traced items: the first 1, 2, 5, 10, 20, ...
items in trace order, and all of them. Each item's vectors go to the bucket of the smallest
subset that holds it, and a subset's sums are the sums of its buckets (`NestedSums`).
"""
from __future__ import annotations

import numpy as np
import torch


def participation_ratio_of(covariance: np.ndarray) -> float | None:
    """(tr C)^2 / tr(C^2) of a covariance matrix; None when it is zero (no spread at all)."""
    covariance = np.asarray(covariance, np.float64)
    spread = float(np.sum(covariance * covariance))  # tr(C^2) for a symmetric C
    return float(np.trace(covariance)) ** 2 / spread if spread > 0 else None


class CovarianceSums:
    """Running float64 sums of vectors of one size, on the device they come from."""

    def __init__(self, size: int, device: torch.device):
        # MPS has no float64: sum on the CPU there.
        self.device = device if device.type != "mps" else torch.device("cpu")
        self.count = 0
        self.total = torch.zeros(size, dtype=torch.float64, device=self.device)
        self.outer = torch.zeros(size, size, dtype=torch.float64, device=self.device)

    def add(self, vectors: torch.Tensor) -> None:
        """Add the rows of `vectors` [n, size]."""
        x = vectors.detach().to(self.device, torch.float64)
        self.count += x.shape[0]
        self.total += x.sum(0)
        self.outer += x.T @ x

    def merged(self, others: list["CovarianceSums"]) -> "CovarianceSums":
        out = CovarianceSums(self.total.shape[0], self.device)
        for sums in [self, *others]:
            out.count += sums.count
            out.total += sums.total
            out.outer += sums.outer
        return out

    def covariance(self) -> np.ndarray | None:
        """The sample covariance (n - 1 in the denominator); None below two samples."""
        if self.count < 2:
            return None
        mean = self.total / self.count
        centred = self.outer - self.count * torch.outer(mean, mean)
        return (centred / (self.count - 1)).cpu().numpy()

    def participation_ratio(self) -> float | None:
        covariance = self.covariance()
        return None if covariance is None else participation_ratio_of(covariance)


def nested_sizes(items: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... below `items`, then `items` itself."""
    sizes, scale = [], 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= items:
                return sizes + [items] if items > 0 else []
            sizes.append(step * scale)
        scale *= 10


class NestedSums:
    """CovarianceSums per nested subset of items: `add(vectors, items)` files each example's
    vectors under the smallest subset (of `nested_sizes(num_items)`) that holds its item."""

    def __init__(self, num_items: int, size: int, device: torch.device):
        self.sizes = nested_sizes(num_items)
        self.buckets = [CovarianceSums(size, device) for _ in self.sizes]

    def add(self, vectors: torch.Tensor, items: np.ndarray) -> None:
        """`vectors` [b, positions, size] of b examples whose items (trace order, 0-based) are `items` [b]."""
        bucket = np.searchsorted(np.asarray(self.sizes), np.asarray(items) + 1)  # first size >= item + 1
        for value in np.unique(bucket):
            rows = torch.from_numpy(np.flatnonzero(bucket == value)).to(vectors.device)
            self.buckets[value].add(vectors.index_select(0, rows).flatten(0, -2))

    def prefix(self, level: int) -> CovarianceSums:
        return self.buckets[0].merged(self.buckets[1:level + 1])

    def participation_ratios(self) -> list[float | None]:
        """PR of the first sizes[k] items, for every k."""
        return [self.prefix(level).participation_ratio() for level in range(len(self.sizes))]

    def total(self) -> CovarianceSums:
        return self.prefix(len(self.sizes) - 1)
