"""Every example in `tapsense --help`, `tapsense-agent --help` and their subcommands' help is a
command line the parser accepts, naming files that exist: an example that fails teaches the
wrong thing."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from edge.cli import build_parser as agent_parser
from stack.cli import build_parser

PARSERS = {"tapsense": build_parser, "tapsense-agent": agent_parser}

REPO = Path(__file__).resolve().parent.parent


def help_texts(parser: argparse.ArgumentParser) -> list[str]:
    texts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                texts += help_texts(sub)
    return texts


def examples() -> list[str]:
    found = []
    for program, parser in PARSERS.items():
        found += _examples(program, parser())
    return sorted(set(found))


def _examples(program: str, parser: argparse.ArgumentParser) -> list[str]:
    found = []
    for text in help_texts(parser):
        joined = re.sub(r"\\\n\s*", "", text)
        for line in joined.splitlines():
            command = re.sub(r"^\s*(\w+=\S+\s+)*", "", line)  # leading VAR=value assignments
            if command.startswith(f"{program} ") and not line.startswith("usage"):
                # The example's own explanation starts after a wide gap.
                found.append(re.split(r"\s{3,}", command.split(" > ")[0])[0])
    return found


def test_there_are_examples_in_the_help() -> None:
    assert len(examples()) >= 10


@pytest.mark.parametrize("example", examples())
def test_every_help_example_parses_and_names_files_that_exist(example: str) -> None:
    program, *argv = shlex.split(example)
    try:
        args = PARSERS[program]().parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 after printing --help, 2 on an error
        assert exc.code == 0, f"{example!r} is refused by the parser"
        return
    scenario = getattr(args, "scenario", None)
    if scenario is not None:
        assert (REPO / scenario).is_file(), f"{example!r} names a file that does not exist"
