"""Step 5 of the tutorial, database management: len, is_empty, clear, and what clear keeps.

    python examples/database_management.py

Adds 1,000 keys with one atomic batch, clears them, and shows that the ledger's history
stays: clear appends a record; it does not erase any.
"""

from scribe import OP_CLEAR, OP_DELETE, OP_PUT, Ledger

KEY_COUNT = 1000
OP_NAMES = {OP_PUT: "put", OP_DELETE: "delete", OP_CLEAR: "clear"}


def main() -> None:
    with Ledger.temp() as ledger:
        print(f"Is empty: {ledger.is_empty()}")
        ledger.apply_batch((f"key{i}", f"value{i}") for i in range(KEY_COUNT))
        print(f"Database size: {len(ledger)} keys")
        print(f"Is empty: {ledger.is_empty()}")

        ledger.clear()
        print(f"After clear - Database size: {len(ledger)} keys")
        print(f"After clear - Is empty: {ledger.is_empty()}")
        print(f"After clear - get('key7'): {ledger.get('key7')}")

        head = ledger.tree_head()
        versions = ledger.history("key7")
        print(f"The ledger still holds {head.size} records ({KEY_COUNT} puts and 1 clear)")
        print(f"History of key7: {[(v.seq, OP_NAMES[v.op], v.value) for v in versions]}")


if __name__ == "__main__":
    main()
