"""``torchmech`` on the command line: parser (the commands and their options, the one error boundary) and
commands (each command, returning a result). The top layer: it may import every other."""

from torchmech.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
