"""The one SCPI grammar of the simulated instruments (IEEE 488.2 section 7, SCPI-99 volume 1).

Pure text in, structures out; no pyvisa-sim here. :mod:`hil.sim.device` uses it for every
profile, so a new profile needs no code:

* :func:`split_units` cuts a program message at ``;`` (outside strings and blocks);
* :func:`parse_unit` reads one unit: header nodes (mnemonic, numeric suffix), query mark,
  leading colon, parameters split at ``,``;
* :class:`HeaderIndex` resolves an incoming header against the headers a profile spells (in
  short form): case, short or long form, optional nodes (``[:SOURce]``, ``[:LEVel]`` ...),
  suffix 1 = no suffix;
* :func:`parse_numeric` reads NR1/NR2/NR3, ``#H``/``#Q``/``#B``, ``INF``/``NAN``, and a unit
  suffix with its SI multiplier, converted to the wire unit of the setting.

Errors raise :class:`ScpiError` with the standard code (SCPI-99 volume 2, section 21.8).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

#: Standard texts of the codes the simulation raises.
ERROR_TEXT = {
    -100: "Command error", -101: "Invalid character", -102: "Syntax error",
    -103: "Invalid separator", -104: "Data type error", -108: "Parameter not allowed",
    -109: "Missing parameter", -110: "Command header error", -112: "Program mnemonic too long",
    -113: "Undefined header", -114: "Header suffix out of range", -120: "Numeric data error",
    -121: "Invalid character in number", -123: "Exponent too large", -131: "Invalid suffix",
    -134: "Suffix too long",
    -138: "Suffix not allowed", -141: "Invalid character data", -151: "Invalid string data",
    -161: "Invalid block data", -200: "Execution error", -221: "Settings conflict",
    -222: "Data out of range", -224: "Illegal parameter value", -350: "Queue overflow",
    -410: "Query INTERRUPTED", -440: "Query UNTERMINATED after indefinite response",
}


class ScpiError(Exception):
    """A unit the instrument refuses: ``code`` is the standard error number."""

    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    @property
    def text(self) -> str:
        """The standard text, as the error queue gives it."""
        return ERROR_TEXT.get(self.code, "Error")


# --- mnemonics ---------------------------------------------------------------------------------
#: Manual spellings (upper-case part = short form) of the mnemonics the profiles use. A header
#: whose long form is listed here is accepted only as short or long form (``FREQU`` is -113);
#: one that is not falls back to "starts with the short form".
MNEMONICS = """
ABORt ACTive ACTual ALC ALERt ALL AMPLitude ATTenuation AUTO AVERage BANDwidth BEAMdiameter
BORDer CALCulate CATalog CENTer CHANnel CLEar CODe CODE COLLect COMMunicate CONDition
CONFigure CONTinuous CORRection COUNt CURRent CYCLes DATA DEFine DELay DETector DISPlay
DWELl ENABle ERRor EVENt EXTernal FETCh FINe FORMat FREQuency FUNCtion GAIN GROups IDN
IMMediate INITiate INPut INSTrument INTernal LEVel LFRequency LOCK MARKer MAXimum MEASure
MINimum MODE MODe MODulation NEXT NTRansition OPERation OUTPut PARameter PHASe POINts POWer
PTRansition PULM QUEStionable RANGe READ READout REFerence REPeat RESolution ROSCillator
SANalyzer SCALar SELect SENSe SENSor SHUTter SOURce SPAN SPEed STARt STATe STATus STEP STOP
SWEep SYSTem TIME TRACe TRIGger TYPE UNIT UPPer USER VERSion VIDeo WAVelength WIDTh ZERO
"""


def _short_of(word: str) -> str:
    match = re.match(r"[A-Z0-9]*", word)
    return match.group(0) if match else word.upper()


LONG_FORMS: dict[str, set[str]] = {}
_SHORT_OF_LONG: dict[str, str] = {}
for _word in MNEMONICS.split():
    LONG_FORMS.setdefault(_short_of(_word), set()).add(_word.upper())
    _SHORT_OF_LONG[_word.upper()] = _short_of(_word)

#: Nodes SCPI lets a client leave out, unless a profile says otherwise.
DEFAULT_OPTIONAL = ("SOURce", "SENSe", "LEVel", "IMMediate", "AMPLitude")
#: Optional nodes that stand at the root of a header (the others are optional below it).
ROOT_DEFAULTS = {"SOUR", "SENS"}

_WHITESPACE = "".join(chr(c) for c in range(0x21) if c != 0x0A)  # CR is white space too
_NODE = re.compile(r"^([A-Za-z][A-Za-z_]*?)(\d*)$")


@dataclass(frozen=True)
class Node:
    word: str  # upper case, as sent
    suffix: int | None  # None: no suffix (= 1 for matching)


@dataclass(frozen=True)
class Unit:
    """One program message unit."""

    text: str
    nodes: tuple[Node, ...]
    query: bool
    common: bool  # *IDN? and friends
    rooted: bool  # leading colon
    params: tuple[str, ...]

    @property
    def header(self) -> str:
        return ":".join(n.word + ("" if n.suffix is None else str(n.suffix)) for n in self.nodes)


def _scan(text: str, separator: str) -> list[str]:
    """Split ``text`` at ``separator`` outside quoted strings and definite-length blocks."""
    parts, start, i, quote = [], 0, 0, ""
    n = len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == quote:
                if i + 1 < n and text[i + 1] == quote:  # doubled quote inside a string
                    i += 1
                else:
                    quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#" and i + 1 < n and text[i + 1] in "123456789":
            digits = int(text[i + 1])
            length = text[i + 2:i + 2 + digits]
            if not length.isdigit() or len(length) != digits:
                raise ScpiError(-161, "bad block header")
            i += 1 + digits + int(length)
        elif c == separator:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quote:
        raise ScpiError(-151, "unterminated string")
    parts.append(text[start:])
    return parts


def split_units(message: str) -> list[str]:
    """A program message -> its units; a trailing ``;`` (common in drivers) is tolerated."""
    units = _scan(message, ";")
    if units and not units[-1].strip(_WHITESPACE):
        units.pop()
    return units


def parse_unit(text: str) -> Unit:
    """One unit -> :class:`Unit`; raises :class:`ScpiError` for what no instrument would take."""
    body = text.strip(_WHITESPACE)
    if not body:
        raise ScpiError(-102, "empty message unit")
    cut = next((i for i, c in enumerate(body) if c in _WHITESPACE), len(body))
    header, rest = body[:cut], body[cut:].strip(_WHITESPACE)
    if "," in header or '"' in header:
        raise ScpiError(-111 if "," in header else -102, header)
    query = header.endswith("?")
    bare = header[:-1] if query else header
    params = tuple(p.strip(_WHITESPACE) for p in _scan(rest, ",")) if rest else ()
    if any(p == "" for p in params):
        raise ScpiError(-102, "empty parameter")
    if bare.startswith("*"):
        word = bare[1:]
        if not word.isalpha():
            raise ScpiError(-102, header)
        return Unit(text, (Node("*" + word.upper(), None),), query, True, False, params)
    rooted = bare.startswith(":")
    words = bare[1:].split(":") if rooted else bare.split(":")
    nodes = []
    for word in words:
        match = _NODE.match(word)
        if match is None:
            raise ScpiError(-102, header)
        if len(match.group(1)) > 12:
            raise ScpiError(-112, word)
        digits = match.group(2)
        nodes.append(Node(match.group(1).upper(), int(digits) if digits else None))
    return Unit(text, tuple(nodes), query, False, rooted, params)


# --- headers of a profile ----------------------------------------------------------------------
def _word_matches(got: str, canonical: str) -> bool:
    """``got`` (upper case) is the short or long form of ``canonical`` (a profile's short form)."""
    canonical = canonical.upper()
    if got == canonical:
        return True
    longs = LONG_FORMS.get(canonical)
    if longs is not None:
        return got in longs
    return got.startswith(canonical)


class HeaderIndex:
    """The headers a profile spells, to resolve what a client sends onto one of them.

    ``add(spelling, entry)`` registers an entry under its header (a profile writes it in short
    form, e.g. ``SENS:CORR:WAV?``); :meth:`lookup` returns the entries of the header an incoming
    unit names, in the order they were added.
    """

    def __init__(self, optional: Iterable[str] = DEFAULT_OPTIONAL, *, exact: bool = False) -> None:
        self.optional = {_short_of(w) for w in optional}
        self.exact = exact  # instruments with their own syntax: whole mnemonics only
        self._entries: dict[tuple, list] = {}  # (query, n nodes after dropping optional) -> ...
        self._cache: dict[tuple, list] = {}

    def _essential(self, nodes: Iterable[Node], canonical: bool) -> tuple[Node, ...]:
        kept = []
        for i, node in enumerate(nodes):
            word = node.word
            # [:SOURce] and [:SENSe] are optional at the root only; [:LEVel], [:STATe]... below it.
            droppable = {o for o in self.optional if (o in ROOT_DEFAULTS) == (i == 0)
                         and node.suffix in (None, 1)}  # SOURce2 is not the default source
            if canonical and not self.exact:
                word = _SHORT_OF_LONG.get(word, word)  # a profile that spells a long form
                if word in droppable:
                    continue
            elif any(_word_matches(word, o) for o in droppable):
                continue
            kept.append(Node(word, None if node.suffix == 1 else node.suffix))
        return tuple(kept)

    def add(self, unit: Unit, entry: object) -> None:
        nodes = self._essential(unit.nodes, canonical=True)
        bucket = self._entries.setdefault((unit.query, len(nodes)), [])
        for known, entries in bucket:
            if known == nodes:
                entries.append(entry)
                break
        else:
            bucket.append((nodes, [entry]))
        self._cache.clear()

    def all_entries(self) -> list[list]:
        return [entries for bucket in self._entries.values() for _, entries in bucket]

    def lookup(self, nodes: tuple[Node, ...], query: bool) -> list:
        key = (nodes, query)
        found = self._cache.get(key)
        if found is None:
            found = self._find(nodes, query)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _find(self, nodes: tuple[Node, ...], query: bool) -> list:
        essential = self._essential(nodes, canonical=False)
        for known, entries in self._entries.get((query, len(essential)), ()):
            if all(g.suffix == k.suffix and self._matches(g.word, k.word)
                   for g, k in zip(essential, known, strict=True)):
                return entries
        if self.exact:
            return []
        # An optional node that is also the name of a real node (e.g. a profile whose header
        # starts with SENS but where SENS is not optional): try the nodes as sent.
        full = tuple(Node(n.word, None if n.suffix == 1 else n.suffix) for n in nodes)
        for known, entries in self._entries.get((query, len(full)), ()):
            if all(g.suffix == k.suffix and _word_matches(g.word, k.word)
                   for g, k in zip(full, known, strict=True)):
                return entries
        return []

    def _matches(self, got: str, canonical: str) -> bool:
        return got == canonical if self.exact else _word_matches(got, canonical)


# --- parameters --------------------------------------------------------------------------------
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:\s*[eE]\s*[+-]?\d+)?)\s*([A-Za-z%]*)$")
#: Multipliers (488.2 table 7-2). ``M`` is milli, mega is ``MA``.
_MULTIPLIER = {"EX": 1e18, "PE": 1e15, "T": 1e12, "G": 1e9, "MA": 1e6, "K": 1e3, "M": 1e-3,
               "U": 1e-6, "N": 1e-9, "P": 1e-12, "F": 1e-15, "A": 1e-18}
#: Base units by suffix and the SI quantity they measure.
_BASE = {"HZ": "Hz", "M": "m", "W": "W", "S": "s", "K": "K", "V": "V", "A": "A", "OHM": "ohm",
         "DBM": "dBm", "DB": "dB", "DEG": "deg", "RAD": "rad", "PCT": "%"}
#: Whole units matched before multiplier + unit (488.2 table footnote; SCPI practice).
_WHOLE = {"MHZ": (1e6, "Hz"), "MOHM": (1e6, "ohm"), "MA": (1e-3, "A"), "MW": (1e-3, "W"),
          "MV": (1e-3, "V"), "DBM": (1.0, "dBm"), "DB": (1.0, "dB")}
#: Wire units (hil.sim.units names) -> (SI quantity, scale to SI).
_WIRE = {"m": ("m", 1.0), "nm": ("m", 1e-9), "pm": ("m", 1e-12), "Hz": ("Hz", 1.0),
         "GHz": ("Hz", 1e9), "THz": ("Hz", 1e12), "W": ("W", 1.0), "mW": ("W", 1e-3),
         "K": ("K", 1.0), "s": ("s", 1.0), "dBm": ("dBm", 1.0), "ohm": ("ohm", 1.0),
         "V": ("V", 1.0), "A": ("A", 1.0), "deg": ("deg", 1.0), "rad": ("rad", 1.0)}
SPECIAL_NUMBERS = {"INF": 9.9e37, "NINF": -9.9e37, "NAN": 9.91e37}


def _suffix(suffix: str) -> tuple[float, str]:
    """A unit suffix -> (multiplier, SI quantity); -131 if no instrument knows it."""
    s = suffix.upper()
    if len(s) > 12:
        raise ScpiError(-134, suffix)
    if s in _WHOLE:
        return _WHOLE[s]
    if s in _BASE:
        return 1.0, _BASE[s]
    for prefix in sorted(_MULTIPLIER, key=len, reverse=True):
        if s.startswith(prefix) and s[len(prefix):] in _BASE:
            return _MULTIPLIER[prefix], _BASE[s[len(prefix):]]
    raise ScpiError(-131, suffix)


def parse_numeric(token: str, wire_unit: str | None, *, suffix_allowed: bool = True) -> float:
    """A numeric parameter -> its value in ``wire_unit`` (the unit the setting keeps)."""
    upper = token.upper()
    if upper in SPECIAL_NUMBERS:
        return SPECIAL_NUMBERS[upper]
    if upper.startswith("#") and len(upper) > 2 and upper[1] in "HQB":
        base = {"H": 16, "Q": 8, "B": 2}[upper[1]]
        try:
            return float(int(upper[2:], base))
        except ValueError:
            raise ScpiError(-121, token) from None
    match = _NUMBER.match(token)
    if match is None:
        if token[:1].isalpha():
            raise ScpiError(-104, token)  # character data where a number belongs
        raise ScpiError(-121, token)
    number, suffix = match.groups()
    value = float(number.replace(" ", ""))
    if not suffix:
        return value
    if not suffix_allowed or wire_unit is None or wire_unit not in _WIRE:
        raise ScpiError(-138, token)
    multiplier, quantity = _suffix(suffix)
    wire_quantity, scale = _WIRE[wire_unit]
    if quantity == wire_quantity:
        return value * multiplier / scale
    if wire_quantity == "dBm" and quantity == "W":
        watts = value * multiplier
        if watts <= 0:
            raise ScpiError(-222, token)
        return 10 * math.log10(watts / 1e-3)
    if wire_quantity == "W" and quantity == "dBm":
        return 1e-3 * 10 ** (value / 10) / scale
    raise ScpiError(-131, token)


def unquote(token: str) -> str | None:
    """The text of a string parameter, or None if ``token`` is not one."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        q = token[0]
        return token[1:-1].replace(q + q, q)
    return None


def character_matches(token: str, choice: str) -> bool:
    """``token`` names ``choice`` (short or long form, any case): ``INTernal`` -> ``INT``."""
    t, c = token.upper(), choice.upper()
    return t == c or (t.isalpha() and c.isalpha() and len(t) > len(c) and t.startswith(c)
                      and (c not in LONG_FORMS or t in LONG_FORMS[c]))


SPECIAL_CHOICES = {"MIN": "MIN", "MINIMUM": "MIN", "MAX": "MAX", "MAXIMUM": "MAX",
                   "DEF": "DEF", "DEFAULT": "DEF", "UP": "UP", "DOWN": "DOWN"}
BOOLEANS = {"ON": 1, "OFF": 0}
