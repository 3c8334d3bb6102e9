"""Command line: `python -m connectwise glexport FILE` validates a GLExport and prints its summary.

The file is read as the download reads a reply, a piece at a time: a batch of any size fits."""

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from connectwise.errors import DocumentError
from connectwise.glexport import read_glexport

CHUNK = 2**16


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectwise", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    glexport = commands.add_parser("glexport", help="validate a GLExport document and print its summary")
    glexport.add_argument("file", type=Path)
    args = parser.parse_args(argv)

    try:
        batch = read_glexport(_chunks(args.file))
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except DocumentError as exc:
        print(f"error: {args.file}: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(batch.summary()))
    return 0


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk


if __name__ == "__main__":
    sys.exit(main())
