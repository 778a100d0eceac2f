"""hil.testing: the transcript helper itself, on a minimal driver."""

from __future__ import annotations

import re

import pytest
from qcodes.instrument import Instrument, VisaInstrument
from qcodes.validators import Ints

from hil.testing import TranscriptMismatch, TranscriptResource, expected_protocol, scpi_write


class Box(VisaInstrument):
    """A minimal VISA driver: one write at init, one settable and gettable parameter."""

    default_terminator = "\n"

    def __init__(self, name: str, *, greet: bool = True, **kwargs) -> None:
        super().__init__(name, **kwargs)
        if greet:
            self.write("HELLO")
        self.level = self.add_parameter(
            "level", get_cmd="LEV?", set_cmd="LEV {}", get_parser=int, vals=Ints(0, 9)
        )
        """A level."""


class IdnBox(VisaInstrument):
    """A driver that ends its init with ``connect_message()`` (``*IDN?``)."""

    default_terminator = "\n"

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.connect_message()


def test_happy_path_yields_the_driver_on_the_fake_resource() -> None:
    with expected_protocol(Box, [("HELLO", None), ("LEV 3", None), ("LEV?", "3")]) as box:
        assert isinstance(box, Box)
        assert box.name == "dut"
        assert isinstance(box.visa_handle, TranscriptResource)
        box.level(3)
        assert box.level.get() == 3
        resource = box.visa_handle
        assert resource.written == [b"HELLO\n", b"LEV 3\n", b"LEV?\n"]
    assert not Instrument.exist("dut")
    assert resource.session is None


def test_name_and_driver_kwargs_are_forwarded() -> None:
    with expected_protocol(Box, [("LEV?", "7")], name="other", greet=False,
                           terminator="\r\n") as box:
        assert box.name == "other"
        assert box.level() == 7
        assert box.visa_handle.written == [b"LEV?\r\n"]


def test_writes_are_compared_with_the_driver_terminator() -> None:
    # The transcript is written without terminators; the driver's terminator is what counts.
    with (
        pytest.raises(TranscriptMismatch, match=re.escape(r"expected write b'HELLO\r\n'")),
        expected_protocol(Box, [("HELLO", None)], greet=False, terminator="\r\n") as box,
    ):
        box.visa_handle.write("HELLO", termination="\n")


def test_mismatch_names_step_expected_and_actual_bytes() -> None:
    with (
        pytest.raises(TranscriptMismatch) as info,
        expected_protocol(Box, [("HELLO", None), ("LEV 4", None)]) as box,
    ):
        box.level(3)
    assert info.value.args[0] == "step 2: expected write b'LEV 4\\n', got b'LEV 3\\n'"


def test_mismatch_during_init_is_reported() -> None:
    with (
        pytest.raises(TranscriptMismatch,
                      match=re.escape(r"expected write b'HI\n', got b'HELLO\n'")),
        expected_protocol(Box, [("HI", None)]),
    ):
        pass
    assert not Instrument.exist("dut")


def test_read_with_nothing_queued_fails() -> None:
    with (
        pytest.raises(TranscriptMismatch, match="read after 'LEV\\?' with no reply pending"),
        expected_protocol(Box, [("HELLO", None), ("LEV?", None)]) as box,
    ):
        box.level.get()


def test_write_while_a_reply_is_unread_fails() -> None:
    with (
        pytest.raises(TranscriptMismatch, match="while the reply 'OK' to 'LEV 1' was still unread"),
        expected_protocol(Box, [("HELLO", None), ("LEV 1", "OK"), ("LEV 2", None)]) as box,
    ):
        box.level(1)
        box.level(2)


def test_unread_reply_at_the_end_fails() -> None:
    with (
        pytest.raises(TranscriptMismatch, match="the reply 'OK' to 'LEV 1' was never read"),
        expected_protocol(Box, [("HELLO", None), ("LEV 1", "OK")]) as box,
    ):
        box.level(1)


def test_leftover_exchanges_fail_on_exit() -> None:
    with (
        pytest.raises(TranscriptMismatch,
                      match=re.escape("2 exchange(s) of the transcript never happened, "
                                      "from step 2: [('LEV 1', None), ('LEV?', '1')]")),
        expected_protocol(Box, [("HELLO", None), ("LEV 1", None), ("LEV?", "1")]),
    ):
        pass


def test_write_after_the_end_of_the_transcript_fails() -> None:
    with (
        pytest.raises(TranscriptMismatch,
                      match=re.escape(r"step 2: wrote b'LEV 5\n' after the end")),
        expected_protocol(Box, [("HELLO", None)]) as box,
    ):
        box.level(5)


def test_swallowed_mismatch_is_raised_when_the_block_ends() -> None:
    # QCoDeS' get_idn() catches every exception: the mismatch must not vanish with it.
    with (
        pytest.raises(TranscriptMismatch,
                      match=re.escape(r"step 2: expected write b'*IDN?X\n', got b'*IDN?\n'")),
        expected_protocol(IdnBox, [("*IDN?", "A,B,C,D"), ("*IDN?X", "A,B,C,D")]) as box,
    ):
        box.connect_message()


def test_swallowed_mismatch_is_the_reported_cause_of_a_later_error() -> None:
    with (
        pytest.raises(TranscriptMismatch, match="after the end of the transcript") as info,
        expected_protocol(IdnBox, [("*IDN?", "A,B,C,D")]) as box,
    ):
        box.connect_message()  # swallowed: the transcript is already used up
        raise RuntimeError("later failure")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_instrument_is_closed_when_the_block_raises() -> None:
    with pytest.raises(KeyError), expected_protocol(Box, [("HELLO", None)]):
        raise KeyError("boom")
    assert not Instrument.exist("dut")


def test_device_clear_and_snapshot_send_nothing() -> None:
    with expected_protocol(Box, [("HELLO", None)], device_clear=True) as box:
        box.device_clear()
        snap = box.snapshot(update=False)
        assert snap["address"] == "TRANSCRIPT::dut::INSTR"
        assert snap["write_terminator"] == "\n"
        assert snap["timeout"] == 5
        box.timeout(None)
        assert box.timeout() == float("inf")


def test_idn_exchange_in_init() -> None:
    with expected_protocol(IdnBox, [("*IDN?", "Acme,Box 1,SN7,2.0")]) as box:
        assert box.visa_handle.written == [b"*IDN?\n"]


def test_malformed_transcript_is_refused() -> None:
    with pytest.raises(TypeError, match="transcript step must be"):
        TranscriptResource([("HELLO", 3)], "TRANSCRIPT::x::INSTR")  # type: ignore[list-item]


def test_scpi_write_builds_write_and_empty_error_read() -> None:
    assert scpi_write("OUTP 1") == [("OUTP 1", None), ("SYST:ERR?", '+0,"No error"')]
    assert scpi_write(":POW 1.00", error_query=":SYST:ERR?", no_error='0,"No error"') == [
        (":POW 1.00", None), (":SYST:ERR?", '0,"No error"'),
    ]


# --- binary replies ----------------------------------------------------------------------------

def _ieee_block(payload: bytes) -> bytes:
    """``#<n><length><payload>``, built here independently of the helper under test."""
    length = str(len(payload)).encode("ascii")
    return b"#" + str(len(length)).encode("ascii") + length + payload


def test_query_binary_values_decodes_a_little_endian_float64_block() -> None:
    import struct

    import numpy as np

    values = [1.5, -2.25, 1e-12, 6.0]
    block = _ieee_block(struct.pack("<4d", *values))
    with expected_protocol(Box, [("HELLO", None), ("DATA?", block)]) as box:
        data = box.visa_handle.query_binary_values("DATA?", datatype="d", is_big_endian=False,
                                                   container=np.array)
        assert isinstance(data, np.ndarray)
        assert data.tolist() == values
        assert box.visa_handle.written[-1] == b"DATA?\n"


def test_binary_block_with_big_endian_float32() -> None:
    import struct

    block = _ieee_block(struct.pack(">2f", 0.5, -4.0))
    with expected_protocol(Box, [("HELLO", None), ("DATA?", block)]) as box:
        assert box.visa_handle.query_binary_values("DATA?", datatype="f",
                                                   is_big_endian=True) == [0.5, -4.0]


def test_read_raw_stops_at_a_newline_byte_inside_binary_data() -> None:
    # 0x0A inside the data ends a VISA read with termchar enabled: read_raw is not a block read.
    block = _ieee_block(b"ab\ncd")
    with (
        pytest.raises(TranscriptMismatch,
                      match=re.escape("the rest of the reply, b'cd\\n' to 'DATA?' was never read")),
        expected_protocol(Box, [("HELLO", None), ("DATA?", block)]) as box,
    ):
        box.visa_handle.write("DATA?")
        assert box.visa_handle.read_raw() == b"#15ab\n"


def test_read_raw_then_read_bytes_gets_the_whole_reply_with_termination() -> None:
    block = _ieee_block(b"ab\ncd")
    with expected_protocol(Box, [("HELLO", None), ("DATA?", block)]) as box:
        box.visa_handle.write("DATA?")
        first = box.visa_handle.read_raw()
        rest = box.visa_handle.read_bytes(3)
        assert first + rest == block + b"\n"


def test_text_reply_through_read_raw_carries_the_termination() -> None:
    with expected_protocol(Box, [("HELLO", None), ("LEV?", "7")]) as box:
        box.visa_handle.write("LEV?")
        assert box.visa_handle.read_raw() == b"7\n"


def test_binary_reply_read_as_text_decodes_up_to_the_termination() -> None:
    with expected_protocol(Box, [("HELLO", None), ("LEV?", b"7")]) as box:
        assert box.level() == 7


def test_read_bytes_beyond_the_reply_fails() -> None:
    with (
        pytest.raises(TranscriptMismatch, match="read 10 byte\\(s\\) of the reply to 'DATA\\?', "
                                                "only 4 left"),
        expected_protocol(Box, [("HELLO", None), ("DATA?", b"abc")]) as box,
    ):
        box.visa_handle.write("DATA?")
        box.visa_handle.read_bytes(10)


def test_block_shorter_than_announced_fails() -> None:
    with (
        pytest.raises(TranscriptMismatch, match="announces 16 byte\\(s\\) after 4, only 8 present"),
        expected_protocol(Box, [("HELLO", None), ("DATA?", b"#216" + bytes(7))]) as box,
    ):
        box.visa_handle.query_binary_values("DATA?", datatype="d")


def test_block_not_followed_by_the_termination_fails() -> None:
    import struct

    block = _ieee_block(struct.pack("<d", 1.0)) + b"X"
    with (
        pytest.raises(TranscriptMismatch, match=re.escape("followed by b'X', not the read "
                                                          "termination b'\\n'")),
        expected_protocol(Box, [("HELLO", None), ("DATA?", block)]) as box,
    ):
        box.visa_handle.query_binary_values("DATA?", datatype="d")


def test_block_without_expected_termination_leaves_it_unread() -> None:
    import struct

    block = _ieee_block(struct.pack("<d", 1.0))
    with (
        pytest.raises(TranscriptMismatch, match=re.escape("b'\\n' to 'DATA?' was still unread")),
        expected_protocol(Box, [("HELLO", None), ("DATA?", block), ("LEV 1", None)]) as box,
    ):
        assert box.visa_handle.query_binary_values("DATA?", datatype="d",
                                                   expect_termination=False) == [1.0]
        box.level(1)


def test_binary_read_with_nothing_pending_fails() -> None:
    with (
        pytest.raises(TranscriptMismatch,
                      match="read_binary_values after 'HELLO' with no reply pending"),
        expected_protocol(Box, [("HELLO", None)]) as box,
    ):
        box.visa_handle.read_binary_values()


def test_unread_binary_reply_is_reported() -> None:
    with (
        pytest.raises(TranscriptMismatch, match=re.escape("the reply b'#10' to 'DATA?' was never "
                                                          "read")),
        expected_protocol(Box, [("HELLO", None), ("DATA?", b"#10")]) as box,
    ):
        box.visa_handle.write("DATA?")


def test_empty_block_decodes_to_no_values() -> None:
    with expected_protocol(Box, [("HELLO", None), ("DATA?", b"#10")]) as box:
        assert box.visa_handle.query_binary_values("DATA?", datatype="d") == []


def test_text_reply_is_returned_exactly_as_written_even_if_not_ascii() -> None:
    # Adding binary reads must not change what a plain text read returns.
    with expected_protocol(Box, [("HELLO", None), ("UNIT?", "µW")]) as box:
        assert box.ask("UNIT?") == "µW"
