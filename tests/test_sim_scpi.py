"""The simulation's SCPI grammar (hil.sim.scpi) against IEEE 488.2 section 7 and SCPI-99 vol. 1.

Expected values are the standards' (scpi.md 1.1-1.3): message units, headers, numbers, suffixes
and multipliers (488.2 table 7-2, with MHZ/MOHM and the milli/mega rule).
"""

from __future__ import annotations

import pytest

from hil.sim.scpi import HeaderIndex, Node, ScpiError, parse_numeric, parse_unit, split_units


def test_units_split_at_semicolons_outside_strings_and_blocks() -> None:
    assert split_units('SOUR:FREQ 1E9;POW -10;') == ["SOUR:FREQ 1E9", "POW -10"]
    assert split_units('SYST:DATE "a;b";*OPC?') == ['SYST:DATE "a;b"', "*OPC?"]
    assert split_units("DATA #13a;b;*CLS") == ["DATA #13a;b", "*CLS"]
    with pytest.raises(ScpiError) as caught:
        split_units('NAME "open')
    assert caught.value.code == -151


def test_a_unit_has_nodes_suffixes_query_mark_root_and_parameters() -> None:
    unit = parse_unit(":SOURce1:POWer:LEVel? MIN \r")
    assert unit.nodes == (Node("SOURCE", 1), Node("POWER", None), Node("LEVEL", None))
    assert (unit.query, unit.rooted, unit.common, unit.params) == (True, True, False, ("MIN",))
    assert parse_unit("*idn?").nodes == (Node("*IDN", None),)
    assert parse_unit("CALC:PAR:DEF 'a', 'S21'").params == ("'a'", "'S21'")


@pytest.mark.parametrize(("text", "code"), [
    ("SOUR::FREQ 1", -102), ("", -102), ("FREQ 1,,2", -102),
    ("ABCDEFGHIJKLM 1", -112), ("FREQ,1", -111),
])
def test_malformed_units_raise_their_codes(text, code) -> None:
    with pytest.raises(ScpiError) as caught:
        parse_unit(text)
    assert caught.value.code == code


@pytest.mark.parametrize(("token", "unit", "value"), [
    ("100", None, 100.0), ("-7.89E-001", None, -0.789), (".5", None, 0.5), ("+256", None, 256.0),
    ("4.56E 3", None, 4560.0), ("#HFF", None, 255.0), ("#B101", None, 5.0), ("#Q77", None, 63.0),
    ("INF", None, 9.9e37), ("NAN", None, 9.91e37),
    ("6.5 GHZ", "Hz", 6.5e9), ("120MHZ", "Hz", 120e6), ("10 mhz", "Hz", 10e6),  # MHZ is mega
    ("3 MAHZ", "Hz", 3e6), ("5 KHZ", "Hz", 5e3),
    ("1550 NM", "nm", 1550.0), ("1.55 UM", "nm", 1550.0), ("1550nm", "m", 1.55e-6),
    ("-16 dBm", "dBm", -16.0), ("1 MW", "dBm", 0.0), ("10 MW", "mW", 10.0), ("500E-9S", "s", 5e-7),
])
def test_numbers_and_suffixes_convert_to_the_wire_unit(token, unit, value) -> None:
    assert parse_numeric(token, unit) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize(("token", "unit", "code"), [
    ("1 FOO", "Hz", -131), ("1 DBM", "Hz", -131), ("1 HZ", None, -138), ("ON", "Hz", -104),
    ("1.2.3", None, -121),
])
def test_bad_numbers_raise_their_codes(token, unit, code) -> None:
    with pytest.raises(ScpiError) as caught:
        parse_numeric(token, unit)
    assert caught.value.code == code


def test_legacy_style_settings_refuse_any_suffix() -> None:
    with pytest.raises(ScpiError) as caught:
        parse_numeric("1550nm", "nm", suffix_allowed=False)
    assert caught.value.code == -138


def test_headers_match_by_short_or_long_form_and_optional_nodes_only() -> None:
    index = HeaderIndex()
    index.add(parse_unit("SOUR:POW {}"), "power")
    index.add(parse_unit("SENS:CORR:WAV?"), "wavelength?")
    index.add(parse_unit("PULM:SOUR {}"), "pulse source")

    def find(text: str) -> list:
        unit = parse_unit(text)
        return index.lookup(unit.nodes, unit.query)

    for spelling in (":SOURce:POWer:LEVel:IMMediate:AMPLitude -1", "pow -1", "SOUR1:POW -1"):
        assert find(spelling) == ["power"]
    assert find("SENSe:CORRection:WAVelength?") == ["wavelength?"]
    assert find("CORR:WAV?") == ["wavelength?"]
    assert find("PULM:SOURce INT") == ["pulse source"]  # SOURce below the root is a real node
    assert find("SOUR:POWE -1") == []  # neither short nor long form
    assert find("SOUR2:POW -1") == []  # another instance
    assert find("SENS:CORR:WAV 1") == []  # the query only


def test_instruments_with_their_own_syntax_match_whole_mnemonics() -> None:
    index = HeaderIndex((), exact=True)
    index.add(parse_unit("HTRST? 0"), "status")
    index.add(parse_unit("RANGE 0,{}"), "range")
    assert index.lookup(parse_unit("htrst? 0").nodes, True) == ["status"]
    assert index.lookup(parse_unit("HTRSET? 0").nodes, True) == []
    assert index.lookup(parse_unit("RANGE 0, 3").nodes, False) == ["range"]
