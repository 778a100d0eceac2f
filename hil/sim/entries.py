"""What a profile spells (:class:`Entry`: a dialogue, a getter, a setter) and the token rules
that match a parsed command onto that spelling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hil.sim.scpi import SPECIAL_CHOICES, character_matches, unquote


@dataclass
class Entry:
    """One command a profile spells: a dialogue, a property's getter or setter."""

    kind: str  # "dialogue", "get" or "set"
    spelling: str  # as the profile writes it: what pyvisa-sim matches
    header: str
    params: tuple[str, ...]  # the spelling's parameters: fixed text or {} / {ch_id}
    prop: Any = None  # the pyvisa-sim Property of a getter or setter
    reply_format: str = "{}"
    wire_unit: str | None = None  # unit the property keeps on the wire (suffixes convert to it)
    default: Any = None
    extra: dict = field(default_factory=dict)


def flag(value: Any) -> bool:
    """A profile's yes/no (pyvisa-sim's loader hands every value over as text)."""
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def param_text(token: str) -> str:
    """A string parameter's text, anything else as it is."""
    text = unquote(token)
    return token if text is None else text


def is_slot(token: str) -> bool:
    return token.startswith("{") and token.endswith("}")


def same_token(got: str, want: str) -> bool:
    """A fixed parameter of a spelling: same text, same character data or same number."""
    if got.upper() == want.upper() or character_matches(got, want):
        return True
    g, w = SPECIAL_CHOICES.get(got.upper()), SPECIAL_CHOICES.get(want.upper())
    if g is not None and g == w:
        return True
    try:
        return float(got) == float(want)
    except ValueError:
        return False


def spell(entry: Entry, params: tuple[str, ...]) -> bytes:
    """``header p1,p2`` in the profile's spelling (the slot filled with the converted value)."""
    out = []
    for i, token in enumerate(params):
        want = entry.params[i] if i < len(entry.params) else None
        out.append(want if want is not None and not is_slot(want) else token)
    text = entry.header + (" " + ",".join(out) if out else "")
    return text.encode()


def is_stored(prop) -> bool:
    binding = getattr(prop, "binding", None)
    return binding is None or binding.kind == "state"


def wire_unit_of(entry: Entry) -> str:
    """The unit a moded property keeps on the wire (the profile loader insists it has one)."""
    if entry.wire_unit is None:
        raise ValueError(f"profile property {entry.spelling!r} has modes but no unit")
    return entry.wire_unit

