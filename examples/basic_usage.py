"""Step 1 of the tutorial: put, get, a missing key, flush, and reopening the ledger from disk.

    python examples/basic_usage.py

Works in a temporary directory that is removed at the end.
"""

import tempfile

from scribe import Ledger


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="scribe-basic-usage-") as data_dir:
        print(f"Opening a ledger in {data_dir}")
        with Ledger(data_dir) as ledger:
            for key, value in (
                ("user:alice", "Alice Smith"),
                ("user:bob", "Bob Johnson"),
                ("counter", "42"),
            ):
                seq = ledger.put(key, value)
                print(f"Stored: {key} = {value} (record #{seq})")

            alice = ledger.get("user:alice")
            print(f"Found: user:alice = {alice.decode()}")
            if ledger.get("user:carol") is None:
                print("Key 'user:carol' not found")

            # flush() returns once every write before it is on disk (fsync): it survives a crash.
            ledger.flush()
            print(f"Flushed. Storage contains {len(ledger)} keys")

        print("Closed. Reopening the same directory...")
        with Ledger(data_dir) as ledger:
            print(f"After reopen: {len(ledger)} keys, counter = {ledger.get('counter').decode()}")
    print("Removed the temporary directory")


if __name__ == "__main__":
    main()
