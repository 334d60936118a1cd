"""Step 3 of the tutorial: an interactive key-value store on the command line.

    python examples/cli_store.py [--data DIR]

Reads one command per line from stdin (type `help` for the list). Every write is flushed
(fsynced) before the next prompt, so what was stored survives a crash or a kill. The data
stays in DIR (default ./cli_store_data) between runs; delete the directory to start over.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from scribe import OP_CLEAR, OP_DELETE, OP_PUT, Ledger, ScribeError

PROMPT = "scribe> "
DEFAULT_DATA_DIR = "./cli_store_data"
OP_NAMES = {OP_PUT: "put", OP_DELETE: "delete", OP_CLEAR: "clear"}
HELP = """\
Commands:
  put <key> <value>   store value under key (the value is the rest of the line, spaces included)
  get <key>           print the newest value of key
  delete <key>        delete key (its history stays in the ledger)
  history <key>       print every version of key, oldest first
  list                print how many keys the store holds
  help                print this help
  quit                leave (end of input leaves too)"""
# Command name -> (argument count, usage line); `put` takes the rest of the line as its value.
COMMANDS = {
    "put": (2, "put <key> <value>"),
    "get": (1, "get <key>"),
    "delete": (1, "delete <key>"),
    "history": (1, "history <key>"),
    "list": (0, "list"),
    "help": (0, "help"),
    "quit": (0, "quit"),
}


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="backslashreplace")


def run_command(ledger: Ledger, line: str, out: TextIO) -> bool:
    """Execute one command line, writing its result to out. Returns False when the user quits."""
    parts = line.split(None, 1)
    if not parts:
        return True
    name, rest = parts[0], parts[1] if len(parts) > 1 else ""
    if name not in COMMANDS:
        print(f"error: unknown command '{name}' (type 'help' for the list)", file=out)
        return True
    nargs, usage = COMMANDS[name]
    # put's value is the rest of the line, so it keeps its inner spaces; keys have none.
    args = rest.strip().split(None, 1) if name == "put" else rest.split()
    if len(args) != nargs:
        print(f"error: usage: {usage}", file=out)
        return True

    if name == "quit":
        return False
    if name == "help":
        print(HELP, file=out)
    elif name == "list":
        print(f"Database contains {len(ledger)} keys", file=out)
    elif name == "put":
        key, value = args
        seq = ledger.put(key, value)
        ledger.flush()
        print(f"Stored: {key} = {value} (record #{seq})", file=out)
    elif name == "get":
        value = ledger.get(args[0])
        if value is None:
            print(f"Key '{args[0]}' not found", file=out)
        else:
            print(f"Found: {args[0]} = {_text(value)}", file=out)
    elif name == "delete":
        if ledger.get(args[0]) is None:
            print(f"Key '{args[0]}' not found", file=out)
        else:
            seq = ledger.delete(args[0])
            ledger.flush()
            print(f"Deleted: {args[0]} (record #{seq})", file=out)
    elif name == "history":
        versions = ledger.history(args[0])
        if not versions:
            print(f"Key '{args[0]}' was never written", file=out)
        for v in versions:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.ts_ms / 1000))
            shown = f" = {_text(v.value)}" if v.op == OP_PUT else ""
            print(f"  #{v.seq}  {when}  {OP_NAMES.get(v.op, v.op)}{shown}", file=out)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="An interactive key-value store on a Scribe ledger."
    )
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help=f"directory of the store, created if missing (default: {DEFAULT_DATA_DIR})",
    )
    args = parser.parse_args(argv)
    interactive = sys.stdin.isatty()
    try:
        ledger = Ledger(args.data)
    except (ScribeError, OSError) as exc:
        print(f"error: cannot open {args.data}: {exc}", file=sys.stderr)
        return 1
    with ledger:
        print(f"Scribe store in {args.data}: {len(ledger)} keys. Type 'help' for commands.")
        while True:
            if interactive:
                print(PROMPT, end="", flush=True)
            line = sys.stdin.readline()
            if not line:  # end of input
                if interactive:
                    print()
                break
            try:
                if not run_command(ledger, line, sys.stdout):
                    break
            except ScribeError as exc:
                # Bad input (an empty or oversized key, say) is reported; the session goes on.
                print(f"error: {exc}")
            sys.stdout.flush()
    print("Bye")
    return 0


if __name__ == "__main__":
    sys.exit(main())
