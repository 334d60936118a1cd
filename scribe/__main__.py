"""`python -m scribe` (console script `scribe`): the command-line entry point of the ledger.

    scribe            run the demo (same as `scribe demo`)
    scribe demo       put three keys into a temporary ledger, read them back, count them
    scribe verify     check a key's proof from a node (scribe.verify)
    scribe monitor    follow the signed tree heads of nodes, alarm on forks (scribe.monitor)
    scribe fsck       check a data directory offline (scribe.fsck)

Each subcommand is one `Command` in `COMMANDS`: a name, a one-line help, a function that runs it
and returns the exit code, and optionally a function that adds its options to its subparser.
New subcommands are added by appending to that tuple; `main` needs no change.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import __version__, fsck, monitor, verify
from .ledger import Ledger

EXIT_OK = 0

DEMO_TITLE = "Simple Scribe Ledger Demo"
# The demo's data, in the order it is written and read back (the seed's `cargo run` output).
DEMO_PAIRS = (
    ("name", "Simple Scribe Ledger"),
    ("version", __version__),
    ("language", "Python"),
)
DEMO_MISSING_KEY = "nonexistent"


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    # Adds the command's options to its subparser; None for a command without options.
    configure: Callable[[argparse.ArgumentParser], None] | None = None


def run_demo(args: argparse.Namespace | None = None) -> int:
    """Really write and read the demo keys on a temporary ledger, printing what happens."""
    print(DEMO_TITLE)
    print("=" * len(DEMO_TITLE))
    with Ledger.temp() as led:
        print("Putting key-value pairs...")
        for key, value in DEMO_PAIRS:
            led.put(key, value)
        print("Getting values...")
        for key, _ in DEMO_PAIRS + ((DEMO_MISSING_KEY, None),):
            value = led.get(key)
            if value is None:
                print(f"Key '{key}' not found")
            else:
                print(f"{key}: {value.decode('utf-8', errors='replace')}")
        print(f"Total keys: {len(led)}")
    return EXIT_OK


COMMANDS: tuple[Command, ...] = (
    Command(
        "demo",
        "write three keys to a temporary ledger, read them back and count them (the default)",
        run_demo,
    ),
    Command(
        "verify",
        "check a key's inclusion proof, the node's signed tree head and its consistency with the "
        "last head trusted (exit 0 verified, 1 a check failed, 2 usage or unreachable)",
        verify.run,
        verify.configure,
    ),
    Command(
        "monitor",
        "follow the signed tree heads of nodes over time and raise an ALARM on any fork or "
        "rewrite (exit 0 consistent, 1 alarm, 2 usage)",
        monitor.run,
        monitor.configure,
    ),
    Command(
        "fsck",
        "check a stopped node's or an embedded ledger's data directory: checksums, records, leaf "
        "hashes, root (exit 0 clean, 1 damaged, 2 usage)",
        fsck.run,
        fsck.configure,
    ),
)
DEFAULT_COMMAND = "demo"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scribe",
        description="Scribe Ledger: a verifiable, durable, append-only key-value ledger.",
        epilog=(
            f"With no command, runs '{DEFAULT_COMMAND}'. "
            "Run 'scribe COMMAND --help' for the options of one command. "
            "The library API is 'from scribe import Ledger' (see README.md)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for cmd in COMMANDS:
        cmd_parser = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        if cmd.configure is not None:
            cmd.configure(cmd_parser)
        cmd_parser.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv (default: sys.argv[1:]), run the chosen command and return its exit code.

    Bad usage makes argparse print the usage and the problem to stderr and exit with code 2.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        run = next(cmd.run for cmd in COMMANDS if cmd.name == DEFAULT_COMMAND)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
