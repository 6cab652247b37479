"""One convention across commands (issue 17): exit code 2 for usage mistakes and 1 for bad input,
help printed once and with examples, no `<bool>` metavar on flags, `-c` only for --config, the same
count form of `--aug` in every builder, `--quiet` and `--json` where a user expects them, log
lines that do not break the progress bar, ARC `--input` given one task file."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from hrm.builders.arc import build_arc
from hrm.builders.dataset import open_dataset
from hrm.builders.maze import build_maze
from hrm.common import HrmError, UsageError, log, progress, set_quiet
from tests.conftest import assert_one_line_error, run_hrm
from tests.eval_helpers import random_arc_tasks, write_arc_dataset

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def small_arc(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("conventions")
    write_arc_dataset(root / "arc", random_arc_tasks(np.random.default_rng(1), num_tasks=2, versions=2))
    return root / "arc"


USAGE_MISTAKES = [
    ("eval", "--predictions", "p.parquet", "--data", "DATA", "--vote", "0"),
    ("eval", "--checkpoint", "c.pt", "--data", "DATA", "--batch-size", "0"),
    ("eval", "--checkpoint", "c.pt", "--data", "DATA", "--max-items", "0"),
    ("eval", "--checkpoint", "c.pt", "--data", "DATA", "--samples", "0"),
    ("eval", "--checkpoint", "c.pt", "--data", "DATA", "--restarts", "0"),
    ("eval", "--checkpoint", "c.pt", "--data", "DATA", "--steps", "0"),
    ("eval", "--checkpoint", "c.pt", "--data", "DATA", "--noise", "-1"),
    ("eval", "--checkpoint", "c.pt", "--data", "DATA", "--init-std", "-1"),
    ("eval", "--checkpoint", "c.pt", "--data", "DATA", "--halt", "maybe"),
    ("eval", "--checkpoint", "c.pt", "--data", "DATA", "--rank", "foo"),
    ("eval", "--predictions", "p.parquet", "--data", "DATA", "--pool", "0"),
    ("eval", "--predictions", "p.parquet", "--data", "DATA", "--samples", "2"),  # candidates need a model
    ("eval", "--data", "DATA"),                                        # nothing to score
    ("eval", "--checkpoint", "c.pt", "--data", "DATA", "--predictions", "p.parquet", "--predictions", "c.pt"),
    ("train", "--data", "DATA", "--out", "RUN", "lr"),                 # an override without =
    ("train", "--data", "DATA", "--out", "RUN", "lr=abc"),             # a value of the wrong type
    ("train", "--data", "DATA", "--out", "RUN", "foo=1"),              # a key that does not exist
    ("train", "--data", "DATA", "--out", "RUN", "max_steps=-5"),       # out of range
    ("train", "--data", "DATA", "--out", "RUN", "global_batch_size=0"),
    ("train", "--data", "DATA", "--out", "RUN", "arch.foo=1"),         # arch keys too
    ("train", "--data", "DATA", "--out", "RUN", "arch.hidden_size=abc"),
    ("train", "--data", "DATA", "--out", "RUN", "arch.name=nope"),
    ("train", "--data", "DATA", "--out", "RUN", "--seed", "1", "seed=2"),  # one key set twice
    ("train", "--data", "DATA", "--out", "RUN", "--device", "cpu", "device=cpu"),
    ("train", "--data", "DATA"),                                       # no --out
    ("train", "--resume", "RUN", "--out", "RUN"),                      # --resume with --out
    ("build-data", "maze", "--out", "OUT", "--aug", "8"),             # 7 other versions at most
    ("eval", "-c", "c.pt", "--data", "DATA"),                          # -c is --config, in train only
    ("show", "DATA", "--index", "0", "--task", "x"),                   # options that exclude each other
    ("show", "--predictions", "p.parquet"),                            # no --data
    ("show",),                                                         # nothing to show
]


@pytest.mark.parametrize("args", USAGE_MISTAKES)
def test_usage_mistakes_exit_2_with_one_line(tmp_path, small_arc, args):
    args = [str(small_arc) if a == "DATA" else str(tmp_path / a) if a in ("RUN", "OUT", "p.parquet", "c.pt")
            else a for a in args]
    result = run_hrm(*args)
    assert result.returncode == 2, result.stderr
    assert_one_line_error(result)
    assert list(tmp_path.iterdir()) == []


def test_a_usage_mistake_exits_2_from_the_installed_command(tmp_path, small_arc):
    """The same through a real process (what a shell script sees)."""
    result = run_hrm("train", "--data", small_arc, "--out", tmp_path / "run", "max_steps=-5")
    assert result.returncode == 2 and result.stderr.startswith("error: config key 'max_steps' must be positive")
    assert_one_line_error(result)


def test_config_file_mistakes_are_usage_errors_but_a_checkpoint_config_is_bad_input(tmp_path, small_arc):
    """A config file is a written-down command line: a bad key or value in it exits 2 like the
    same override. A missing or unreadable file is bad input (1), and so is a bad config inside a
    checkpoint (a file hrm did not get from the command line)."""
    from hrm.train.config import config_from_dict

    preset = tmp_path / "preset.yaml"
    for text, fragment in (("foo: 1\n", "unknown config key 'foo'"), ("lr: abc\n", "'lr' expects float"),
                           ("max_steps: -5\n", "'max_steps' must be positive"),
                           ("arch:\n  hidden_size: -3\n", "arch.hidden_size must be positive")):
        preset.write_text(text)
        result = run_hrm("train", "--data", small_arc, "--out", tmp_path / "run", "--config", preset)
        assert result.returncode == 2, result.stderr
        assert_one_line_error(result, fragment)
    result = run_hrm("train", "--data", small_arc, "--out", tmp_path / "run", "--config", tmp_path / "no.yaml")
    assert result.returncode == 1 and "does not exist" in result.stderr
    with pytest.raises(HrmError) as error:
        config_from_dict({"max_steps": -5})
    assert not isinstance(error.value, UsageError) and "'max_steps' must be positive" in str(error.value)
    assert not (tmp_path / "run").exists()


def test_options_that_set_config_keys_add_overrides_and_refuse_a_key_set_twice():
    from hrm.train.config import option_overrides

    assert option_overrides(["lr=1e-3"], {"seed": 3, "device": None, "compile": False, "init_from": Path("c.pt")}) \
        == ["lr=1e-3", "seed=3", "compile=false", "init_from=c.pt"]
    with pytest.raises(UsageError, match="--init-from and the override init_from="):
        option_overrides(["init_from=a.pt"], {"init_from": Path("b.pt")})


@pytest.mark.parametrize("args", [
    ("eval", "--checkpoint", "missing.pt", "--data", "DATA"),
    ("train", "--data", "missing", "--out", "RUN"),
    ("inspect", "missing"),
])
def test_bad_input_exits_1_with_one_line(tmp_path, small_arc, args):
    args = [str(small_arc) if a == "DATA" else str(tmp_path / a) if a in ("RUN", "missing", "missing.pt") else a
            for a in args]
    result = run_hrm(*args)
    assert result.returncode == 1, result.stderr
    assert_one_line_error(result)


def test_help_is_printed_once_with_examples_and_flags_show_no_type():
    bare = run_hrm()
    assert (bare.stdout + bare.stderr).count("Usage:") == 1 and "error" not in bare.stderr
    group = run_hrm("build-data")
    assert (group.stdout + group.stderr).count("Usage:") == 1 and "Example" in group.stdout + group.stderr
    for command in (["train"], ["eval"], ["inspect"], ["show"], ["build-data", "maze"], ["build-data", "arc"],
                    ["compare"]):
        text = run_hrm(*command, "--help", check=True).stdout
        assert "<bool>" not in text and "Example" in text, command
    train_help, eval_help = run_hrm("train", "--help").stdout, run_hrm("eval", "--help").stdout
    short = lambda name, text: re.search(rf"--{name}\s+-c\b|-c, --{name}\b", text)  # noqa: E731 (either layout)
    assert short("config", train_help) and not short("checkpoint", eval_help) and not re.search(r"-c\b", eval_help)
    for text in (train_help, eval_help):
        assert "--threads" in text
    assert "--quiet" in run_hrm("inspect", "--help").stdout and "--json" in train_help


# ----------------------------------------------------------------------------- --help pages

COMMANDS = [["build-data", "sudoku"], ["build-data", "maze"], ["build-data", "arc"], ["build-data", "import-hrm"],
            ["inspect"], ["show"], ["train"], ["eval"], ["trace"], ["compare"], ["score-submission"]]


def help_page(monkeypatch, *command: str) -> str:
    monkeypatch.setenv("COLUMNS", "80")  # what a terminal (and a pipe, by default) gives click
    result = run_hrm(*command, "--help")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def help_section(page: str, title: str) -> list[str]:
    """The lines of one section (`Options:`, `Commands:`, ...) of a help page: up to the blank
    line that ends it (the epilog's examples follow)."""
    lines = page.splitlines()
    start = lines.index(f"{title}:") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def option_entries(page: str) -> list[tuple[list[str], list[str]]]:
    """(option names, placeholders) of each entry of the Options section: `-d, --data DIR` gives
    (["-d", "--data"], ["DIR"]); continuation lines of help text are skipped."""
    entries = []
    for line in help_section(page, "Options"):
        if not line.startswith("  -"):
            continue
        first_column = re.split(r"\s{2,}", line.strip())[0]
        tokens = first_column.replace(",", " ").replace(" / ", " ").split()
        entries.append(([t for t in tokens if t.startswith("-")], [t for t in tokens if not t.startswith("-")]))
    return entries


def test_root_help_lists_the_commands_in_workflow_order_each_on_one_whole_line(monkeypatch):
    section = help_section(help_page(monkeypatch), "Commands")
    names = [line.split()[0] for line in section]
    assert names == ["build-data", "inspect", "show", "train", "eval", "trace", "compare", "score-submission"]
    for line in section:  # one line each (no wrapped continuation), not cut off with "..."
        assert re.match(r"^  \S+\s{2,}\S", line) and not line.rstrip().endswith("..."), line
        assert len(line) <= 80
    builders = help_section(help_page(monkeypatch, "build-data"), "Commands")
    assert [line.split()[0] for line in builders] == ["sudoku", "maze", "arc", "import-hrm"]
    assert not any(line.rstrip().endswith("...") for line in builders)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_placeholders_name_what_is_expected(monkeypatch, command):
    """DIR, FILE, N, KEY=VALUE, [a|b]: never Python's types (<list[Path]>, <int range>, <str>)."""
    page = help_page(monkeypatch, *command)
    assert not re.search(r"<[a-z][^>]*>", page.split("Options:")[0] + "\n".join(help_section(page, "Options"))
                         .replace("<prefix>_<subset>", "")), page
    usage = page.splitlines()[0]
    assert "{" not in usage and not re.search(r"\b[a-z]+\.\.\.", usage), usage  # RUN..., not {path}
    placeholder = re.compile(r"^(\[[a-z0-9_]+(\|[a-z0-9_]+)+\]|[A-Z][A-Z0-9_=,.\[\]]*)$")
    for names, placeholders in option_entries(page):
        for token in placeholders:
            assert placeholder.match(token), (names, token)
    if "Arguments:" in page:
        for line in help_section(page, "Arguments"):
            if not line.startswith("   "):
                assert re.match(r"^  [A-Z][A-Z_=]*(\.\.\.)?\s{2,}", line), line


def test_rank_and_halt_show_their_choices_which_are_the_librarys(monkeypatch):
    from hrm.eval.candidate_spec import HALT_RULES
    from hrm.eval.vote import RANKERS

    placeholders = {names[-1]: values for names, values in option_entries(help_page(monkeypatch, "eval"))}
    assert placeholders["--rank"] == ["[" + "|".join(RANKERS) + "]"]
    assert placeholders["--halt"] == ["[" + "|".join(HALT_RULES) + "]"]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_shared_options_close_every_page_in_one_order(monkeypatch, command):
    """--threads, --force, --json, -q/--quiet, -h/--help: last, in this order, wherever present."""
    shared = ["--threads", "--force", "--json", "--quiet", "--help"]
    names = [entry[0][-1] for entry in option_entries(help_page(monkeypatch, *command))]
    present = [name for name in shared if name in names]
    assert names[-len(present):] == present, names
    assert {"--json", "--quiet", "--help"} <= set(present)


def test_seed_is_one_option_with_one_meaning_wherever_a_command_draws(monkeypatch):
    """Every command that draws randomness takes --seed N, described the same way."""
    drawing = [["build-data", "sudoku"], ["build-data", "maze"], ["build-data", "arc"], ["train"], ["eval"]]
    texts = set()
    for command in drawing:
        page = help_page(monkeypatch, *command)
        entry = next(line for line in help_section(page, "Options") if line.startswith("  --seed N "))
        texts.add(" ".join(entry.split()[2:6]))
    assert texts == {"Random seed of everything"}


def test_inspect_quiet_prints_nothing_on_stderr(small_arc):
    result = run_hrm("inspect", small_arc, "--quiet", check=True)
    assert result.stderr == "" and "arc" in result.stdout


def test_maze_aug_is_a_seeded_count_of_the_other_dihedral_versions(tmp_path):
    args = dict(size=8, train_size=12, test_size=4, min_path=8, seed=5)
    summary = build_maze(tmp_path / "three", aug=3, test_aug=0, **args)
    dataset = open_dataset(tmp_path / "three")
    train = dataset.split("train").set("all")
    versions = np.diff(train.group_indices)
    dihedral = train.field("aug_dihedral")
    first = train.group_indices[:-1]
    assert (versions <= 4).all() and versions.sum() == summary["splits"]["train"]["examples"]
    assert (dihedral[first] == 0).all()  # the maze itself first, then 3 of ids 1..7
    for g in range(len(versions)):
        ids = dihedral[train.group_indices[g]:train.group_indices[g + 1]]
        assert len(set(ids.tolist())) == len(ids) and set(ids[1:].tolist()) <= set(range(1, 8))
    assert (np.diff(dataset.split("test").set("all").group_indices) == 1).all()
    build_maze(tmp_path / "again", aug=3, test_aug=0, **args)
    assert np.array_equal(open_dataset(tmp_path / "again").split("train").set("all").field("aug_dihedral"), dihedral)
    cli = run_hrm("build-data", "maze", "--out", tmp_path / "cli", "--size", "8", "--min-path", "8",
                  "--train-size", "3", "--test-size", "2", "--aug", "7", "--json", check=True)
    assert json.loads(cli.stdout)["splits"]["train"]["examples"] <= 3 * 8


def test_train_prints_a_readable_line_or_json(tmp_path):
    data = tmp_path / "s4"
    run_hrm("build-data", "sudoku", "--box", "2", "--blanks", "6", "--train-size", "40", "--test-size", "10",
            "--aug", "1", "--out", data, "--quiet", check=True)
    tiny = ["global_batch_size=8", "arch.hidden_size=16", "arch.num_heads=2", "arch.H_layers=1", "arch.L_layers=1",
            "arch.halt_max_steps=2", "arch.puzzle_emb_ndim=0", "max_steps=2", "--device", "cpu", "--quiet"]
    text = run_hrm("train", "--data", data, "--out", tmp_path / "a", *tiny, "--seed", "3", check=True).stdout
    assert text.startswith(f"{tmp_path / 'a'}: step 2, test exact accuracy") and "{" not in text
    as_json = run_hrm("train", "--data", data, "--out", tmp_path / "b", *tiny, "--json", check=True).stdout
    assert json.loads(as_json)["step"] == 2
    # --seed is the config key seed, as in every command that draws
    seeds = [yaml.safe_load((tmp_path / run / "config.yaml").read_text())["seed"] for run in ("a", "b")]
    assert seeds == [3, 0]
    refused = run_hrm("train", "--resume", tmp_path / "a", "--seed", "4")
    assert refused.returncode == 2 and "cannot change 'seed' when resuming" in refused.stderr


def terminal_lines(stream: str) -> list[str]:
    """What a terminal shows for `stream`: each carriage return goes back to the line's start and
    what follows overwrites what was there (tqdm's way of redrawing and erasing a bar)."""
    screen = []
    for raw in stream.replace("\r\n", "\n").split("\n"):
        line: list[str] = []
        for part_index, part in enumerate(raw.split("\r")):
            column = 0
            for char in part:
                if column < len(line):
                    line[column] = char
                else:
                    line.append(char)
                column += 1
        screen.append("".join(line).rstrip())
    return screen


def test_ctrl_c_in_any_command_is_one_line_and_exit_130(monkeypatch, small_arc):
    """Typer would turn it into a silent exit 130."""
    import hrm.builders.inspect

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(hrm.builders.inspect, "describe", interrupted)
    result = run_hrm("inspect", small_arc)
    assert (result.returncode, result.stderr, result.stdout) == (130, "error: interrupted\n", "")


def test_a_second_ctrl_c_in_training_says_it_stopped_without_a_checkpoint(monkeypatch, tmp_path):
    import hrm.train.loop
    from tests.sudoku4_data import write_sudoku4

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # what train.loop's handler raises on a second signal

    monkeypatch.setattr(hrm.train.loop, "train", interrupted)
    data = write_sudoku4(tmp_path / "s4", train_size=20, test_size=4, blanks=6)
    result = run_hrm("train", "--data", data, "--out", tmp_path / "run", "arch.hidden_size=16",
                            "arch.num_heads=2")
    assert result.returncode == 130
    assert result.stderr == "error: interrupted: stopped at once, without a checkpoint of the step in progress\n"


def test_interrupted_training_prints_its_error_on_a_line_of_its_own(tmp_path):
    """On a terminal the progress bar is drawn; Ctrl-C's error line starts a line, not the bar's end."""
    import fcntl
    import os
    import pty
    import select
    import signal
    import struct
    import termios
    import time

    from tests.conftest import REPO
    from tests.sudoku4_data import write_sudoku4
    from tests.train_helpers import TINY

    data = write_sudoku4(tmp_path / "s4", train_size=100, test_size=20, blanks=6)
    run = tmp_path / "run"
    primary, secondary = pty.openpty()  # stderr a terminal of 100 columns: hrm draws its bar
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "hrm", "train", "--data", str(data), "--out", str(run),
                                *TINY, "epochs=500", "max_steps=5000"],
                               env=env, stdout=subprocess.PIPE, stderr=secondary, stdin=subprocess.DEVNULL)
    os.close(secondary)
    stream = b""

    def read_for(seconds: float) -> bool:
        """Collect the terminal's output; False once the process has closed it."""
        nonlocal stream
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([primary], [], [], 0.1)[0]:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # EIO: the process closed the terminal
                    return False
                if not chunk:
                    return False
                stream += chunk
        return True

    try:
        deadline = time.monotonic() + 180
        while b"step/s" not in stream and b"s/step" not in stream:  # the bar is on screen, with a rate
            assert time.monotonic() < deadline and read_for(0.2), stream.decode(errors="replace")
        process.send_signal(signal.SIGINT)
        while read_for(1.0):
            pass
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(primary)
    text = stream.decode(errors="replace")
    assert process.returncode == 128 + signal.SIGINT, text
    errors = [line for line in terminal_lines(text) if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: interrupted by SIGINT"), errors


def test_log_lines_go_through_an_active_bar(monkeypatch, capsys):
    """On a terminal a log line clears the bar, prints whole on its own line and the bar comes
    back; without a terminal logs are kept and bars dropped."""
    import tqdm

    written = []
    monkeypatch.setattr(tqdm.tqdm, "write", classmethod(lambda cls, message, file=None: written.append(message)))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    set_quiet(False)
    log("attention backend on cpu: sdpa")
    assert written == ["attention backend on cpu: sdpa"]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    bar = progress(total=3, desc="x")
    assert bar.disable
    log("kept in a pipeline")
    assert "kept in a pipeline" in capsys.readouterr().err
    set_quiet(True)
    log("silenced")
    set_quiet(False)
    assert "silenced" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- ARC --input


def _task(rng: np.random.Generator, test_pairs: int = 1) -> dict:
    grid = lambda: rng.integers(0, 10, size=tuple(rng.integers(1, 6, size=2))).tolist()  # noqa: E731
    return {"train": [{"input": grid(), "output": grid()} for _ in range(2)],
            "test": [{"input": grid(), "output": grid()} for _ in range(test_pairs)]}


def test_arc_input_takes_a_single_task_file(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "tasks").mkdir()
    path = tmp_path / "tasks" / "abcd1234.json"
    path.write_text(json.dumps(_task(rng, test_pairs=2)))
    result = run_hrm("build-data", "arc", "--out", tmp_path / "one", "--input", path, "--aug", "3", "--json",
                     check=True)
    summary = json.loads(result.stdout)
    assert summary["tasks"] == 1 and summary["subsets"] == {"tasks": 1}
    assert summary["test_examples"] == 2 * 4  # 2 test pairs x (original + 3 versions)
    assert summary["train_examples"] == 2 * 4
    assert "test set: tasks" in result.stderr
    names = list(open_dataset(tmp_path / "one").identifiers())
    assert "abcd1234" in names


def test_arc_without_subsets_builds_the_default_subsets_present(tmp_path):
    rng = np.random.default_rng(1)
    for subset, count in (("training", 3), ("evaluation", 2)):
        (tmp_path / "arc" / subset).mkdir(parents=True)
        for i in range(count):
            (tmp_path / "arc" / subset / f"{subset[:4]}{i:04d}.json").write_text(json.dumps(_task(rng)))
    result = run_hrm("build-data", "arc", "--out", tmp_path / "d", "--input", tmp_path / "arc", "--aug", "1",
                     "--json", check=True)
    summary = json.loads(result.stdout)
    assert summary["subsets"] == {"training": 3, "evaluation": 2} and summary["test_tasks"] == 2
    assert "subsets: training evaluation" in result.stderr
    missing = run_hrm("build-data", "arc", "--out", tmp_path / "e", "--input", tmp_path / "arc",
                      "--subsets", "concept", "--test-set", "concept")
    assert_one_line_error(missing, "holds none of the subsets concept", "training", "evaluation")
    summary = build_arc(tmp_path / "f", inputs=[str(tmp_path / "arc" / "training")], aug=0)
    assert summary["subsets"] == {"training": 3} and summary["test_set"] == "training"


# ----------------------------------------------------------------------------- what it prints


def test_counts_read_as_numbers_with_the_word_in_its_form():
    from hrm.common import plural

    assert plural(1, "version") == "1 version" and plural(1.0, "version") == "1 version"
    assert plural(0, "task") == "0 tasks" and plural(2.5, "version") == "2.5 versions"
    assert plural(3633400, "example") == "3,633,400 examples"  # was 3.6334e+06
    assert plural(1001.0, "version") == "1,001 versions" and plural(5 / 3, "version") == "1.67 versions"
    assert plural(2, "box", "boxes") == "2 boxes"


def test_build_summaries_print_large_counts_in_full():
    from hrm.cli import build_arc, build_sudoku

    arc = build_arc._text({"out": "data/arc1", "tasks": 960, "subsets": {"training": 400, "evaluation": 400,
                                                                         "concept": 160},
                           "puzzle_identifiers": 960 * 1001 + 1, "train_examples": 3633400, "test_examples": 419419,
                           "test_tasks": 400, "test_set": "evaluation", "has_solutions": True, "shortfall_tasks": 1,
                           "aug": 1000, "seconds": 57.1})
    assert "train 3,633,400 examples, test 419,419 examples" in arc and "e+0" not in arc
    assert "1 task short of 1,000 versions" in arc
    sudoku = build_sudoku._text({"out": "data/s", "seconds": 1.0, "splits": {
        "train": {"groups": 1000, "puzzles": 1001000, "examples": 1001000, "rating_mean": 3.0},
        "test": {"groups": 1, "puzzles": 1, "examples": 1, "rating_mean": 3.0}}})
    assert "train 1,000 puzzles x 1,001 versions = 1,001,000 examples" in sudoku
    assert "test 1 puzzle x 1 version = 1 example" in sudoku


def test_eval_protocol_line_says_the_subset_in_words():
    from hrm.eval.run import format_protocol

    line = format_protocol({"split": "test", "items": 40, "versions_per_group": 8.0, "ranker": "votes",
                            "subset": {"items": 40, "of_items": 400, "max_versions": 1, "seed": 0}})
    assert "{" not in line and "'" not in line, line  # was (subset: {'items': 40, 'of_items': ...})
    assert line.startswith("protocol: test split, 40 items (a subset: 40 of 400, at most 1 version each, seed 0);")
    whole = format_protocol({"split": "test", "items": 400, "versions_per_group": 8.0, "ranker": "votes",
                             "subset": None})
    assert whole.startswith("protocol: test split, 400 items (all);")


def test_a_damaged_checkpoint_is_named_for_what_is_wrong(tmp_path):
    """torch's errors for a cut or foreign file are a bare number (`KeyError: '101'`), an opcode or
    zip internals; the message says truncated or not a checkpoint file instead."""
    import types

    import torch

    from hrm.models.checkpoints import torch_load_weights

    torch.save({"weights": torch.zeros(1000)}, tmp_path / "good.pt")
    whole = (tmp_path / "good.pt").read_bytes()
    cases = {"empty": (b"", "empty or truncated"), "cut": (whole[:len(whole) // 2], "truncated or damaged"),
             "cut_end": (whole[:-10], "truncated or damaged"), "head": (whole[:10], "truncated, or not a file"),
             "text": (b"hello world, not a checkpoint", "truncated, or not a file torch.save wrote"),
             "bytes": (bytes(range(256)) * 4, "truncated, or not a file torch.save wrote")}
    for name, (content, reason) in cases.items():
        (tmp_path / f"{name}.pt").write_bytes(content)
        with pytest.raises(HrmError) as error:
            torch_load_weights(tmp_path / f"{name}.pt")
        message = str(error.value)
        assert reason in message and "\n" not in message, (name, message)
        assert not re.search(r"\(\d+\)|operand|miniz", message), (name, message)
    torch.save({"payload": types.SimpleNamespace(x=1)}, tmp_path / "foreign.pt")  # a pickle of other objects
    with pytest.raises(HrmError, match="not a weights-only file.*SimpleNamespace"):
        torch_load_weights(tmp_path / "foreign.pt")
