"""Start-up stays light: `hrm --version` and `--help` load none of the heavy libraries (they are
imported by the command that needs them), and a silent progress bar does not load tqdm.
Timings are benchmarks/bench_startup.py's job; these tests check what is imported, which does
not depend on how busy the machine is."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

# Not pydantic: recent Typer itself coerces a command's options with it (not ours to avoid).
HEAVY = ("numba", "zarr", "pyarrow", "torch", "PIL", "yaml", "tqdm", "rich", "numpy", "matplotlib")


def imported(*args: str) -> set[str]:
    """Every module `python -X importtime ARGS` imports (read from the interpreter's own log)."""
    env = {**os.environ, "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True,
                            env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", result.stderr, re.MULTILINE))


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("build-data", "sudoku", "--help"),
                                  ("train", "--help"), ("eval", "--help"), ("compare", "--help")])
def test_version_and_help_import_no_heavy_library(args):
    modules = imported("-m", "hrm", *args)
    assert "hrm.cli.app" in modules  # the log is read right: the app itself is in it
    loaded = {name for name in HEAVY if name in modules}
    assert not loaded, f"hrm {' '.join(args)} imports {sorted(loaded)}"


def test_modules_that_draw_charts_import_matplotlib_only_when_drawing():
    """matplotlib (~1 s to import) is loaded by the functions that draw, not by importing the CLI
    or the modules that hold those functions."""
    modules = ("hrm.cli.app", "hrm.cli.show_cmd", "hrm.cli.compare_cmd", "hrm.cli.eval_cmd", "hrm.analysis.curves",
               "hrm.analysis.compare", "hrm.eval.pool", "hrm.eval.run", "hrm.show.charts", "hrm.show.render_png")
    code = (f"import sys, importlib\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
            "from hrm.show.charts import new_figure\nnew_figure()\nprint('matplotlib' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["[]", "True"]  # none on import; loaded once a figure is made


def test_comparing_runs_loads_neither_torch_nor_numba(tmp_path):
    """`hrm compare RUN...` reads config.yaml and metrics.jsonl files: asking whether a folder is an
    `hrm trace` must not load the tracer (torch and numba were 2 s of its 3 s)."""
    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        run.mkdir()
        (run / "config.yaml").write_text(f"seed: {seed}\narch:\n  name: hrm\n")
        (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "split": "test", "count": 4, "accuracy": 0.5,
                                                       "exact_accuracy": 0.25, "time": 1.0}) + "\n")
    modules = imported("-m", "hrm", "compare", str(tmp_path / "run0"), str(tmp_path / "run1"))
    assert "hrm.analysis.compare" in modules
    assert not {"torch", "numba"} & modules, sorted({"torch", "numba"} & modules)


def test_silent_progress_bar_counts_without_tqdm():
    # stderr is a pipe here, so the bar is silent, as in a script
    code = ("import sys\n"
            "from hrm.common import progress\n"
            "items = list(progress(range(5), desc='x'))\n"
            "with progress(total=7) as bar:\n"
            "    bar.update(3); bar.update(4); bar.set_postfix(loss='1.0')\n"
            "bar.close()\n"
            "print(items, bar.n, 'tqdm' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("]")[1].split() == ["7", "False"]
    assert result.stdout.startswith("[0, 1, 2, 3, 4]")
