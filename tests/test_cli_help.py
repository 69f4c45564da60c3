"""Every example in `tapsense --help` and its subcommands' help is a command line the parser
accepts, naming files that exist: an example that fails teaches the wrong thing."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from stack.cli import build_parser

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
    for text in help_texts(build_parser()):
        joined = re.sub(r"\\\n\s*", "", text)
        for line in joined.splitlines():
            command = re.sub(r"^\s*(\w+=\S+\s+)*", "", line)  # leading VAR=value assignments
            if command.startswith("tapsense ") and not line.startswith("usage"):
                # The example's own explanation starts after a wide gap.
                found.append(re.split(r"\s{3,}", command.split(" > ")[0])[0])
    return sorted(set(found))


def test_there_are_examples_in_the_help() -> None:
    assert len(examples()) >= 10


@pytest.mark.parametrize("example", examples())
def test_every_help_example_parses_and_names_files_that_exist(example: str) -> None:
    argv = shlex.split(example)[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 after printing --help, 2 on an error
        assert exc.code == 0, f"{example!r} is refused by the parser"
        return
    scenario = getattr(args, "scenario", None)
    if scenario is not None:
        assert (REPO / scenario).is_file(), f"{example!r} names a file that does not exist"
