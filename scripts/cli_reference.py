"""Write docs/CLI.md, the reference of every `declip` command and option, from the parser.

    python scripts/cli_reference.py           # rewrite docs/CLI.md
    python scripts/cli_reference.py --check   # exit 1 if docs/CLI.md is out of date

tests/test_docs.py runs the check, so a new command or option without its reference fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from declip_desktop.cli import build_parser  # noqa: E402

OUT = ROOT / "docs" / "CLI.md"


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(command path, parser, one-line help) for every sub-command, depth first, in parser order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield prefix + (name,), sub, helps.get(name) or ""
                yield from commands(sub, prefix + (name,))


def _cell(text: str) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _argument(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(f"`{o}`" for o in action.option_strings)
        if action.nargs == 0:
            return names
        metavar = action.metavar or (action.dest.upper() if not action.choices else "{" + ",".join(map(str, action.choices)) + "}")
        return f"{names} {metavar}" if isinstance(metavar, str) else names
    return f"`{action.metavar or action.dest}`"


def render() -> str:
    lines = ["# Command-line reference", "",
             "Every `declip` command and option (`python -m declip_desktop …` is the same). Generated from the",
             "parser by `python scripts/cli_reference.py`; `tests/test_docs.py` fails when it is out of date.",
             "Exit codes: 0 done, 1 some items failed (the others were done), 2 nothing could be done.", ""]
    for path, sub, summary in commands(build_parser()):
        lines += [f"## declip {' '.join(path)}", ""]
        text = _cell(sub.description or summary)
        if text:
            lines += [text, ""]
        rows = [a for a in sub._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
        if rows:
            lines += ["| argument | meaning |", "|---|---|"]
            for action in rows:
                meaning = _cell(action.help)
                if action.required and action.option_strings:
                    meaning = (meaning + " (required)").strip()
                lines.append(f"| {_argument(action)} | {meaning} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__).parse_known_args(argv)[1]
    text = render()
    if "--check" in args:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run python scripts/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
