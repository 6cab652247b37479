"""The docs cannot drift from the CLI: every `hrm ...` command in README.md and docs/*.md names a
real subcommand, only options that subcommand has, and (for `hrm train`) only config keys that
exist (issue 22, section 3). The oracle is the real Typer app, built into its click command."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

from hrm.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Fenced blocks in these languages hold shell commands; python/yaml/text blocks are not read.
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console", "zsh"}
SHELL_OPERATORS = {"&&", "||", "|", ";", "&"}
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w-]*)")
INLINE_CODE = re.compile(r"(?<!`)`([^`]+)`(?!`)")
OPTIONAL_PART = re.compile(r"\[([^\[\]]*)\]")  # `[--index N | --task NAME]`: check what is inside


@dataclass(frozen=True)
class DocCommand:
    file: str   # relative to the repository root
    line: int   # 1-based line where the command starts
    args: tuple[str, ...]  # the tokens after `hrm`

    def where(self) -> str:
        return f"{self.file}:{self.line}: hrm {' '.join(self.args)}"


def _tokens(text: str) -> list[str]:
    text = OPTIONAL_PART.sub(lambda m: " " + m.group(1).replace("|", " ") + " ", text)
    text = text.replace("\\|", "|")  # a `|` escaped for a Markdown table cell
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True  # `--opt=value`, `N[,N...]` stay one token each
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote in prose: plain words are good enough
        return text.split("#", 1)[0].split()


def _hrm_arguments(segment: list[str]) -> list[str] | None:
    """The arguments of an `hrm` invocation (`hrm ...`, `python -m hrm ...`, `torchrun ... -m hrm
    ...`, after a `$ ` prompt or `VAR=value` prefixes), or None when the segment is not one."""
    while segment and (segment[0] == "$" or re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", segment[0])):
        segment = segment[1:]
    if not segment:
        return None
    if segment[0] == "hrm":
        return segment[1:]
    if Path(segment[0]).name in {"python", "python3", "torchrun"}:
        for position in range(1, len(segment) - 1):
            if segment[position] == "-m" and segment[position + 1] == "hrm":
                return segment[position + 2:]
    return None


def commands_in_line(text: str, file: str, line: int) -> list[DocCommand]:
    """Every hrm invocation in one shell line: `a && hrm x | tee f` has one, redirections dropped."""
    commands, segment = [], []
    tokens = _tokens(text) + [";"]
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if token in SHELL_OPERATORS:
            arguments = _hrm_arguments(segment)
            if arguments:  # a bare `hrm` is the name, not a command to check
                commands.append(DocCommand(file, line, tuple(arguments)))
            segment = []
        elif set(token) <= set("<>&"):  # `> file`, `2>&1`: the redirection and its target
            if segment and segment[-1].isdigit():
                segment.pop()  # the descriptor of `2>`
            position += 1
        else:
            segment.append(token)
        position += 1
    return commands


def extract_commands(text: str, file: str) -> list[DocCommand]:
    """The hrm commands of a Markdown text: lines of shell code blocks (backslash continuations
    joined) and inline code spans of the prose (which may wrap over lines)."""
    commands: list[DocCommand] = []
    prose: list[str] = []  # fenced lines blanked, so that offsets keep their line numbers
    fence: tuple[str, str] | None = None  # (marker, language) while inside a fenced block
    pending, pending_line = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = (opening.group(1), opening.group(2).lower())
            prose.append("")
            continue
        if fence is not None:
            prose.append("")
            if line.strip().startswith(fence[0]):
                fence = None
            elif fence[1] in SHELL_LANGUAGES:
                if not pending:
                    pending_line = number
                if line.rstrip().endswith("\\"):
                    pending += line.rstrip()[:-1] + " "
                    continue
                commands += commands_in_line(pending + line, file, pending_line)
                pending = ""
            continue
        prose.append(line)
    joined = "\n".join(prose)
    for match in INLINE_CODE.finditer(joined):
        line = joined.count("\n", 0, match.start()) + 1
        commands += commands_in_line(match.group(1).replace("\n", " "), file, line)
    return commands


def _config_key_problem(key: str) -> str | None:
    """Whether `key` of a `key=value` override is a config key of `hrm train`."""
    from dataclasses import fields

    from hrm.models.registry import ARCH_CONFIGS, SHAPE_KEYS
    from hrm.train.config import TrainConfig

    if key.startswith("arch."):
        arch_keys = {f.name for config in ARCH_CONFIGS.values() for f in fields(config)} - set(SHAPE_KEYS)
        return None if key[len("arch."):] in arch_keys else f"unknown config key '{key}'"
    top_keys = {f.name for f in fields(TrainConfig)} - {"arch"}
    return None if key in top_keys else f"unknown config key '{key}'"


def _is_placeholder(token: str) -> bool:
    return token == "..." or token.endswith("...") or token.isupper() or token.startswith("<")


def check_command(command: DocCommand, root) -> list[str]:
    """What in `command` the CLI does not know: an unknown subcommand, an option the (sub)command
    lacks, a stray argument for a command that takes none, an unknown config key."""
    cmd, path, args = root, ["hrm"], list(command.args)
    while hasattr(cmd, "commands"):  # a group: the next word is its subcommand
        if not args or _is_placeholder(args[0]):
            return []
        word = args.pop(0)
        if word.startswith("-"):
            return _check_options(cmd, path, [word] + args)
        if word not in cmd.commands:
            return [f"unknown command '{' '.join(path + [word])}'"]
        cmd = cmd.commands[word]
        path.append(word)
    return _check_options(cmd, path, args)


def _check_options(cmd, path: list[str], args: list[str]) -> list[str]:
    params = cmd.get_params(cmd.context_class(cmd, info_name=" ".join(path)))  # with --help
    options = {name: param for param in params if param.param_type_name == "option"
               for name in (*param.opts, *param.secondary_opts)}
    arguments = [param for param in params if param.param_type_name == "argument"]
    takes_overrides = any(param.metavar == "KEY=VALUE" for param in arguments)
    problems, position = [], 0
    while position < len(args):
        token = args[position]
        position += 1
        if token == "--":
            break
        if token.startswith("-") and len(token) > 1 and not re.fullmatch(r"-[\d.]+", token):
            name = token.split("=", 1)[0]
            option = options.get(name)
            if option is None:
                problems.append(f"'{' '.join(path)}' has no option '{name}'")
                while position < len(args) and not args[position].startswith("-"):
                    position += 1  # its value(s), unknown how many
                continue
            if option.is_flag or "=" in token:
                continue
            # The value(s): one per nargs; a repeatable option (a list) may be written with several.
            position += option.nargs
            while option.multiple and position < len(args) and not args[position].startswith("-"):
                position += 1
        elif takes_overrides and "=" in token and not _is_placeholder(token):
            problem = _config_key_problem(token.split("=", 1)[0])
            if problem:
                problems.append(problem)
        elif not arguments and not _is_placeholder(token):
            problems.append(f"'{' '.join(path)}' takes no argument '{token}'")
    return problems


def _all_doc_commands() -> list[DocCommand]:
    commands = []
    for path in DOC_FILES:
        commands += extract_commands(path.read_text(), str(path.relative_to(ROOT)))
    return commands


ROOT_COMMAND = typer.main.get_command(app)


def test_every_documented_command_exists_in_the_cli():
    problems = [f"{command.where()}\n    {problem}"
                for command in _all_doc_commands() for problem in check_command(command, ROOT_COMMAND)]
    assert not problems, "documented commands the CLI does not have:\n" + "\n".join(problems)


def test_the_extractor_finds_the_docs_commands():
    # Guard against passing vacuously: the docs hold about a hundred hrm commands, and every
    # top-level command of the CLI is documented somewhere.
    commands = _all_doc_commands()
    assert len(commands) >= 80, len(commands)
    documented = {command.args[0] for command in commands}
    assert set(ROOT_COMMAND.commands) <= documented, set(ROOT_COMMAND.commands) - documented
    builders = {command.args[1] for command in commands if command.args[0] == "build-data" and len(command.args) > 1}
    assert {"sudoku", "maze", "arc", "import-hrm"} <= builders


SAMPLE = """\
Some prose with `hrm eval --checkpoint runs/a --data d --vote 2` inline, and `hrm.eval.vote` (a module)
and a wrapped `hrm eval --checkpoint runs/a
--bogus-inline 3` span.

```bash
hrm build-data sudoku --out data/s --box 2 --blanks=8 -q   # a comment with --not-an-option
hrm train --data data/s --out runs/s \\
    --no-compile arch.L_cycles=8 lr=1e-4 arch.no_such_key=1 --made-up-option 3
cd /tmp && python -m hrm eval -c runs/a --data d > out.txt 2>&1
torchrun --nproc-per-node 2 -m hrm train --resume runs/s
hrm build-data arc --out data/a --subsets training evaluation concept --test-set evaluation
hrm show DIR [--split test] [--index N | --task NAME] --png a.png
hrm frobnicate --out x
hrm eval runs/a --data d
echo hrm is not run here
```

```python
hrm train --not-shell-code
```
"""


def test_extractor_reports_unknown_parts_with_file_and_line():
    commands = extract_commands(SAMPLE, "sample.md")
    assert [(c.line, c.args[0]) for c in commands] == [
        (6, "build-data"), (7, "train"), (9, "eval"), (10, "train"), (11, "build-data"), (12, "show"),
        (13, "frobnicate"), (14, "eval"), (1, "eval"), (2, "eval")]
    problems = {c.where().split(":")[1]: check_command(c, ROOT_COMMAND) for c in commands}
    assert problems == {
        "6": [], "10": [], "11": [], "12": [], "1": [],
        "7": ["unknown config key 'arch.no_such_key'", "'hrm train' has no option '--made-up-option'"],
        "9": ["'hrm eval' has no option '-c'"],
        "13": ["unknown command 'hrm frobnicate'"],
        "14": ["'hrm eval' takes no argument 'runs/a'"],
        "2": ["'hrm eval' has no option '--bogus-inline'"],
    }


@pytest.mark.parametrize("text", ["`hrm eval --made-up 1`", "```\nhrm eval --made-up 1\n```"])
def test_a_made_up_option_fails_the_docs_check(text):
    [command] = extract_commands(text, "x.md")
    assert check_command(command, ROOT_COMMAND) == ["'hrm eval' has no option '--made-up'"]


# Links: a page moved or a heading renamed must not leave a dead link behind.
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)  # a `# comment` in code is no heading
    return {_anchor(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def dead_links(path: Path, root: Path = ROOT) -> list[str]:
    dead, name = [], path.relative_to(root)
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                dead.append(f"{name}:{number}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                dead.append(f"{name}:{number}: {target} (no such heading)")
    return dead


def test_every_docs_link_reaches_a_file_and_heading():
    dead = [problem for path in DOC_FILES for problem in dead_links(path)]
    assert not dead, "\n".join(dead)


def test_a_dead_link_is_reported(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A title\n\n## The `hrm eval` options\n\n[ok](#the-hrm-eval-options) [ok](page.md#a-title)\n"
                    "[gone](missing.md) [stale](#old-heading) ![picture](show.png)\n")
    assert dead_links(page, root=tmp_path) == ["page.md:6: missing.md (no such file)", "page.md:6: #old-heading (no such heading)",
                                "page.md:6: show.png (no such file)"]


def test_the_readme_set_up_and_test_commands_are_what_ci_runs():
    """README's two commands are the ones `.ci/run` runs on a fresh clone, so CI tests the front door."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Set up and test\n.*?```bash\n(.*?)```", readme, flags=re.S)
    assert block, "README.md has no 'Set up and test' section with a bash block"
    set_up, test = block.group(1).strip().splitlines()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    steps = [*set_up.split(" && "), test]
    positions = [ci_lines.index(step) if step in ci_lines else -1 for step in steps]
    assert -1 not in positions, f".ci/run lacks {[s for s, p in zip(steps, positions) if p == -1]}"
    assert positions == sorted(positions), "the README's steps run in another order in .ci/run"
