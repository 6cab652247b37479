"""Validity-preserving augmentations and their exact inverses (pure functions)."""
