"""The documentation is checked like code (after sqlite-utils' tests/test_docs.py): every CLI
command and option is in docs/CLI.md with a meaning, docs/CLI.md matches the parser, every
command is named in README.md, and the README's Python examples run."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pytest

from scripts.cli_reference import OUT, commands, render
from declip_desktop.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [(" ".join(path), sub) for path, sub, _ in commands(build_parser())]
OPTIONS = [(path, action) for path, sub in COMMANDS for action in sub._actions
           if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))]


def _section(text: str, path: str) -> str:
    start = text.index(f"\n## declip {path}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_the_parser_has_the_commands_this_test_relies_on():
    names = {path for path, _ in COMMANDS}
    assert {"case analyze", "case report", "case threshold", "analyze", "models download"} <= names


def test_the_cli_reference_is_up_to_date():
    assert OUT.read_text(encoding="utf-8") == render(), \
        "docs/CLI.md does not match the parser: run python scripts/cli_reference.py"


@pytest.mark.parametrize("path,action", OPTIONS, ids=[f"{p} {a.option_strings[0] if a.option_strings else a.dest}"
                                                       for p, a in OPTIONS])
def test_every_argument_is_in_the_reference_with_a_meaning(path, action):
    assert action.help, f"`declip {path}`: {action.option_strings or action.dest} has no help text"
    section = _section(OUT.read_text(encoding="utf-8"), path)
    name = action.option_strings[0] if action.option_strings else (action.metavar or action.dest)
    assert f"`{name}`" in section, f"`declip {path} {name}` is missing from docs/CLI.md"


@pytest.mark.parametrize("path", sorted({p.split()[0] for p, _ in COMMANDS}))
def test_every_command_is_named_in_the_readme(path):
    assert f"declip {path}" in (ROOT / "README.md").read_text(encoding="utf-8")


def _python_blocks(section: str) -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(f"## {section}\n")
    end = readme.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", readme[start:end if end != -1 else None], flags=re.S)


def test_the_readme_python_api_example_runs(tmp_path, monkeypatch, capsys):
    import torch

    torch.set_num_threads(1)
    blocks = _python_blocks("Python API")
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for block in blocks:  # one namespace, as a reader pastes them one after the other
        exec(compile(block, "README.md (Python API)", "exec"), namespace)  # noqa: S102 - our own README
    out = capsys.readouterr().out
    assert "starter" in out and "demo model — not for casework" in out
    assert (tmp_path / "example-case" / "case.sqlite").is_file()
    assert "torch" in sys.modules  # the example really ran the network
