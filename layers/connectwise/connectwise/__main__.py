"""Command line: `python -m connectwise glexport FILE` validates a GLExport and prints its summary."""

import argparse
import json
import sys
from pathlib import Path

from connectwise.errors import DocumentError
from connectwise.glexport import parse_glexport


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectwise", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    glexport = commands.add_parser("glexport", help="validate a GLExport document and print its summary")
    glexport.add_argument("file", type=Path)
    args = parser.parse_args(argv)

    try:
        batch = parse_glexport(args.file.read_bytes())
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except DocumentError as exc:
        print(f"error: {args.file}: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(batch.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
