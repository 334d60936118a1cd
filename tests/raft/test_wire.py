"""Wire formats: every message type round-trips; bad input raises WireError, never anything else."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scribe.errors import CorruptionError, ScribeError
from scribe.raft import Entry, EntryType, HardState, Message, MessageType, WireError
from scribe.raft.wire import (
    WIRE_VERSION,
    ConfChange,
    ConfChangeOp,
    decode_conf_change,
    decode_entry,
    decode_hard_state,
    decode_message,
    encode_conf_change,
    encode_entry,
    encode_hard_state,
    encode_message,
)

u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)


@st.composite
def messages(draw) -> Message:
    mtype = draw(st.sampled_from(list(MessageType)))
    index = draw(st.integers(min_value=0, max_value=1 << 40))
    entries = []
    if mtype in (MessageType.APP, MessageType.PROP):
        count = draw(st.integers(min_value=0, max_value=5))
        for offset in range(count):
            entries.append(
                Entry(
                    draw(u64),
                    index + 1 + offset if mtype == MessageType.APP else 0,
                    draw(st.sampled_from(list(EntryType))),
                    draw(st.binary(max_size=40)),
                )
            )
    return Message(
        mtype,
        draw(u64),
        draw(u64),
        term=draw(u64),
        log_term=draw(u64),
        index=index,
        commit=draw(u64),
        reject=draw(st.booleans()),
        force=draw(st.booleans()),
        hint_index=draw(u64),
        hint_term=draw(u64),
        read_seq=draw(u64),
        ctx=draw(st.binary(max_size=64)),
        entries=entries,
    )


@settings(max_examples=300, deadline=None)
@given(messages())
def test_every_message_round_trips(m: Message) -> None:
    assert decode_message(encode_message(m)) == m


@pytest.mark.parametrize("mtype", list(MessageType))
def test_each_type_round_trips(mtype: MessageType) -> None:
    entries = [Entry(3, 8, EntryType.NORMAL, b"x"), Entry(3, 9, EntryType.NOOP, b"")]
    carries = mtype in (MessageType.APP, MessageType.PROP)
    m = Message(mtype, 2, 1, 3, 2, 7, 5, True, True, 4, 1, 9, b"ctx", entries if carries else ())
    assert decode_message(encode_message(m)) == m


@settings(max_examples=200, deadline=None)
@given(messages(), st.data())
def test_truncation_and_bit_flips_are_rejected(m: Message, data) -> None:
    frame = encode_message(m)
    cut = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    with pytest.raises(WireError):
        decode_message(frame[:cut])
    position = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    flipped = bytearray(frame)
    flipped[position] ^= 1 << bit
    with pytest.raises(WireError):
        decode_message(bytes(flipped))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_raises_wire_error_only(garbage: bytes) -> None:
    try:
        decode_message(garbage)
    except WireError:
        pass


def test_unknown_version_and_trailing_bytes_are_rejected() -> None:
    frame = encode_message(Message(MessageType.HEARTBEAT, 2, 1, 4, commit=3))
    with pytest.raises(WireError, match="version"):
        decode_message(bytes([WIRE_VERSION + 1]) + frame[1:])
    with pytest.raises(WireError):
        decode_message(frame + b"\x00")


def test_wire_error_is_a_typed_scribe_error() -> None:
    assert issubclass(WireError, CorruptionError) and issubclass(WireError, ScribeError)


def test_entries_on_a_type_that_carries_none_are_rejected() -> None:
    m = Message(MessageType.HEARTBEAT, 2, 1, 4, entries=[Entry(1, 1, EntryType.NORMAL, b"")])
    with pytest.raises(WireError, match="cannot carry"):
        decode_message(encode_message(m))


def test_non_consecutive_append_entries_are_rejected() -> None:
    entries = [Entry(1, 5, EntryType.NORMAL, b""), Entry(1, 7, EntryType.NORMAL, b"")]
    m = Message(MessageType.APP, 2, 1, 1, index=4, entries=entries)
    with pytest.raises(WireError, match="consecutive"):
        decode_message(encode_message(m))


def test_out_of_range_fields_cannot_be_encoded() -> None:
    with pytest.raises(WireError):
        encode_message(Message(MessageType.APP, 2, 1, term=1 << 64))


def test_entry_hard_state_and_conf_change_formats() -> None:
    entry = Entry(7, 42, EntryType.CONF_CHANGE, b"\x01\x02")
    assert decode_entry(encode_entry(entry)) == entry
    with pytest.raises(WireError):
        decode_entry(encode_entry(entry)[:-1])
    hard_state = HardState(9, 2, 40)
    assert decode_hard_state(encode_hard_state(hard_state)) == hard_state
    with pytest.raises(WireError):
        decode_hard_state(b"\x02" + encode_hard_state(hard_state)[1:])
    change = ConfChange(ConfChangeOp.ADD_LEARNER, 4)
    assert decode_conf_change(encode_conf_change(change)) == change
    with pytest.raises(WireError):
        decode_conf_change(encode_conf_change(change)[:-1])
    with pytest.raises(WireError):
        encode_conf_change(ConfChange(9, 4))
