"""SCPI header matching as instruments do it: case-insensitive, short or long mnemonics.

A profile spells each command once, in short form (``SENS:CORR:WAV {}``). A real instrument
also takes ``sense:correction:wavelength 1550`` or ``:SENSe:CORRection:WAVelength 1550``. SCPI
long forms begin with their short form, so an incoming mnemonic matches a canonical one when,
upper-cased, it starts with it (the rule accepts a few spellings a strict parser would refuse,
such as ``WAVEL``; it never maps a command onto the wrong header).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NODE = re.compile(r"^([A-Za-z*]+)(\d*)(\??)$")


def _split(header: str) -> list[str] | None:
    """``:SENS:CORR:WAV?`` -> ['SENS', 'CORR', 'WAV?'] (the root colon is optional in SCPI)."""
    nodes = header.lstrip(":").split(":")
    if not all(_NODE.match(n) for n in nodes):
        return None
    return nodes


def _node_matches(incoming: str, canonical: str) -> bool:
    got, want = _NODE.match(incoming), _NODE.match(canonical)
    if got is None or want is None:
        return False
    word, suffix, query = got.groups()
    c_word, c_suffix, c_query = want.groups()
    return (query == c_query and suffix == c_suffix
            and word.upper().startswith(c_word.upper()) and len(word) >= len(c_word))


class HeaderIndex:
    """Canonical headers of one device, to rewrite an incoming command into its canonical form."""

    def __init__(self, commands: Iterable[str]) -> None:
        self._by_length: dict[int, list[tuple[str, list[str]]]] = {}
        self._cache: dict[str, str | None] = {}
        for command in commands:
            header = command.split(" ", 1)[0]
            nodes = _split(header)
            if nodes is not None:
                entries = self._by_length.setdefault(len(nodes), [])
                if all(h != header for h, _ in entries):
                    entries.append((header, nodes))

    def canonical(self, command: str) -> str | None:
        """The command with its header in the profile's spelling, or None if none matches."""
        header, sep, rest = command.partition(" ")
        if header not in self._cache:
            self._cache[header] = self._find(header)
        found = self._cache[header]
        return None if found is None else found + sep + rest

    def _find(self, header: str) -> str | None:
        nodes = _split(header)
        if nodes is None:
            return None
        for canonical, c_nodes in self._by_length.get(len(nodes), ()):
            if all(_node_matches(n, c) for n, c in zip(nodes, c_nodes, strict=True)):
                return canonical
        return None
