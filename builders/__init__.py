"""Dataset builders (sudoku, maze, ARC), importers, and the hrm dataset format (zarr v3)."""
