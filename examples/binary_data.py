"""Step 5 of the tutorial: binary values (every byte 0..255) round-trip unchanged.

python examples/binary_data.py
"""

import sys

from scribe import Ledger


def main() -> int:
    binary_data = bytes(range(256))
    with Ledger.temp() as ledger:
        ledger.put("binary_key", binary_data)
        binary_key = b"\x00\xffbinary\x01key"
        ledger.put(binary_key, b"keys may be binary too")
        data = ledger.get("binary_key")
        print(
            f"Stored {len(binary_data)} bytes: {list(binary_data[:5])} ... {list(binary_data[-3:])}"
        )
        print(f"Read   {len(data)} bytes: {list(data[:5])} ... {list(data[-3:])}")
        print(f"Binary key: {binary_key!r} -> {ledger.get(binary_key)!r}")
        if data != binary_data:
            print("MISMATCH: the value read back differs from the value stored")
            return 1
    print("All 256 byte values round-trip unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
