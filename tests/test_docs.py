"""The commands the README and docs/ show are commands that exist, with options that exist.

Every `vidclass CMD ...` in a fenced code block (also after `-m vidclass`, as under torchrun or
srun) is checked against the CLI itself: CMD must be a command and each `--option` one of
its options. A renamed option then fails here instead of in a user's shell.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import typer

from vidclass.cli import app

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "shell", "console", ""}


def shell_blocks(text: str) -> list[str]:
    """The text of each fenced block labelled as shell (or not labelled): a ```python block's
    `from vidclass import ...` is not a command."""
    blocks, label, lines = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if label is None:
                label, lines = line[3:].strip(), []
            else:
                if label in SHELL:
                    blocks.append("\n".join(lines))
                label = None
        elif label is not None:
            lines.append(line)
    return blocks


def shown_commands(text: str) -> list[tuple[str, list[str]]]:
    """(line, words after `vidclass`) of each vidclass command in the text's shell blocks,
    wherever it stands on the line (`srun vidclass ...`, `torchrun ... -m vidclass ...`)."""
    found = []
    for block in shell_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            try:
                words = shlex.split(line, comments=True)
                # a quoted command (`sbatch --wrap "vidclass prepare ..."`) is read too
                words = [part for w in words for part in (shlex.split(w) if " " in w else [w])]
            except ValueError:
                continue
            for i, word in enumerate(words):
                if word.rsplit("/", 1)[-1] == "vidclass":
                    found.append((line.strip(), words[i + 1 :]))
                    break
    return found


def wrong_commands(text: str) -> list[str]:
    cli = typer.main.get_command(app)
    wrong = []
    for line, words in shown_commands(text):
        if not words or words[0].startswith("-"):
            continue
        command = cli.get_command(None, words[0])  # type: ignore[attr-defined]
        if command is None:
            wrong.append(f"{line}: no command {words[0]!r}")
            continue
        known = options_of(command)
        for word in words[1:]:
            if word in ("|", ">", "&&", ";", "&", "||"):
                break
            option = word.split("=")[0]
            if option.startswith("--") and option not in known:
                wrong.append(f"{line}: {words[0]} has no option {option}")
    return wrong


def options_of(command) -> set[str]:
    opts = set()
    for param in command.params:
        opts.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
    return opts | {"--help"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_commands_the_docs_show_exist(doc: Path):
    wrong = wrong_commands(doc.read_text())
    assert not wrong, f"{doc.name}:\n" + "\n".join(wrong)


def test_the_readme_shows_every_command_and_a_wrong_option_is_caught():
    shown = {words[0] for _, words in shown_commands((REPO / "README.md").read_text()) if words}
    commands = set(typer.main.get_command(app).list_commands(None))  # type: ignore[attr-defined]
    assert commands - {"models", "demo"} <= shown, sorted(commands - shown)
    text = "```bash\nsrun vidclass prepare in --out o --shard 0/2 --bogus 1 \\\n  --no-such\n```\n"
    assert [w.rsplit(": ", 1)[1] for w in wrong_commands(text)] == [
        "prepare has no option --bogus",
        "prepare has no option --no-such",
    ]
    assert wrong_commands("```bash\nvidclass trian data\n```\n") == [
        "vidclass trian data: no command 'trian'"
    ]
    assert wrong_commands("```python\nfrom vidclass import Classifier\n```\n") == []
