"""Step 2 of the tutorial: storing strings, numbers and JSON documents, and reading them back.

    python examples/data_types.py

The ledger stores bytes; str is stored as UTF-8. Everything else is encoded by the application:
numbers as decimal text (or fixed-width binary with struct), structures as JSON.
"""

import json
import struct
from dataclasses import asdict, dataclass
from decimal import Decimal

from scribe import Ledger


@dataclass
class User:
    name: str
    age: int
    email: str


def main() -> None:
    with Ledger.temp() as ledger:
        # Strings, including non-ASCII text.
        for key, text in (("greeting", "Hello, World!"), ("greeting:ja", "こんにちは世界")):
            ledger.put(key, text)
            back = ledger.get(key).decode("utf-8")
            print(f"String  {key!r}: {back!r} round-trips: {back == text}")

        # Numbers as decimal text: exact for integers and Decimal, repr() round-trips floats.
        ledger.put("counter", str(42))
        ledger.put("balance", str(Decimal("1250.75")))
        ledger.put("ratio", repr(0.1 + 0.2))
        counter = int(ledger.get("counter"))
        balance = Decimal(ledger.get("balance").decode())
        ratio = float(ledger.get("ratio"))
        print(f"Integer 'counter': {counter} round-trips: {counter == 42}")
        print(f"Decimal 'balance': {balance} round-trips: {balance == Decimal('1250.75')}")
        print(f"Float   'ratio': {ratio!r} round-trips: {ratio == 0.1 + 0.2}")

        # Numbers as fixed-width binary: 8-byte big-endian signed int and IEEE 754 double.
        ledger.put("packed", struct.pack(">qd", -(2**40), 3.5))
        packed = struct.unpack(">qd", ledger.get("packed"))
        print(f"Binary  'packed': {packed} round-trips: {packed == (-(2**40), 3.5)}")

        # A dataclass as JSON.
        alice = User(name="Alice", age=30, email="alice@example.com")
        ledger.put("user:alice", json.dumps(asdict(alice)))
        stored = ledger.get("user:alice")
        user = User(**json.loads(stored))
        print(f"JSON    'user:alice': {stored.decode()}")
        print(f"User: {user} round-trips: {user == alice}")

        print(f"Ledger holds {len(ledger)} keys")


if __name__ == "__main__":
    main()
