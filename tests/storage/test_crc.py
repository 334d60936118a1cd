"""The hot path's CRC-32C (the `crc32c` package) agrees with the reference (`crcmod`'s crc-32c)."""

import random

import crcmod.predefined
from crc32c import crc32c
from hypothesis import given
from hypothesis import strategies as st

reference = crcmod.predefined.mkCrcFun("crc-32c")


def test_known_answer():
    assert crc32c(b"123456789") == reference(b"123456789") == 0xE3069283


@given(st.binary(max_size=4096))
def test_agree_on_random_data(data):
    assert crc32c(data) == reference(data)


def test_agree_on_frame_sized_and_large_buffers():
    rng = random.Random(1)
    for size in (0, 1, 7, 8, 63, 64, 4096, 65537, 1 << 20):
        data = rng.randbytes(size)
        assert crc32c(data) == reference(data)


def test_incremental_crc_matches_whole():
    data = random.Random(2).randbytes(10_000)
    assert crc32c(data[5000:], crc32c(data[:5000])) == reference(data)
