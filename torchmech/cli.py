"""``torchmech`` command line: ``torchmech chapter`` runs the chapter claim by claim."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from torchmech import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not a usage dump
        self.exit(2, f"torchmech: error: {message} (see torchmech --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="torchmech", description=__doc__)
    parser.add_argument("--version", action="version", version=f"torchmech {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    chapter = commands.add_parser(
        "chapter", help="reproduce the chapter's claims and print the book's value beside ours"
    )
    chapter.add_argument("--device", default="cpu",
                         help="cpu, cuda, mps or auto (default: cpu, where the golden values hold)")
    chapter.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from torchmech import report
    from torchmech.devices import resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as err:
        print(f"torchmech: error: {err}", file=sys.stderr)
        return 2
    claims = report.run_chapter(device)
    failed = [c for c in claims if c.holds == "no"]
    if args.json:
        print(json.dumps(report.as_json(claims, device), indent=2))
    else:
        print(report.format_table(claims))
        env = report.environment(device)
        print(f"\n{len(claims) - len(failed)}/{len(claims)} claims hold "
              f"(torch {env['torch']}, {env['device']}: {env['device_name']})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
