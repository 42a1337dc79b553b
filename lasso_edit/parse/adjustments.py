"""The value of an `adjust` edit: a spec `KIND [AMOUNT]`, and how words become one.

Kinds: blur [sigma px], pixelate [block px], brightness/contrast/saturation [+-N%], exposure [+-N ev].
The parsers (rules and the VLM's answers) write specs with `spec_from_words`; the executor
(edit/adjust.py) reads them with `parse_spec`. No dependencies: imported by plan, parse and edit.
"""

from __future__ import annotations

import re

from ..core.errors import InvalidInstructionError

KINDS = ("blur", "pixelate", "brightness", "contrast", "saturation", "exposure")
DEFAULT_AMOUNT = {"brightness": 25.0, "contrast": 25.0, "saturation": 40.0, "exposure": 1.0}
_SPEC = re.compile(r"^(?P<kind>[a-z]+)(?:\s+(?P<amount>[+-]?\d+(?:\.\d+)?)\s*(?:%|ev|px)?)?$")


def spec(kind: str, amount: float | None = None) -> str:
    """'blur', 'blur 12px', 'brightness +25%', 'exposure -1ev', 'saturation -100%'."""
    if amount is None:
        return kind
    if kind in ("blur", "pixelate"):
        return f"{kind} {abs(amount):g}px"
    return f"{kind} {amount:+g}{'ev' if kind == 'exposure' else '%'}"


def parse_spec(value: str | None) -> tuple[str, float | None]:
    """'brightness +25%' -> ('brightness', 25.0); 'blur' -> ('blur', None). Raises for anything else."""
    m = _SPEC.fullmatch((value or "").strip().lower())
    if not m or m.group("kind") not in KINDS:
        raise InvalidInstructionError(
            f"unknown adjustment {value!r}; one of: blur [N px], pixelate [N px], brightness/contrast/saturation "
            "+-N%, exposure +-N ev"
        )
    amount = m.group("amount")
    return m.group("kind"), float(amount) if amount is not None else None


_SOFT = r"(?:slightly|a\s+(?:bit|little|touch|tad)|subtly|somewhat|a\s+little\s+bit|gently)"
_HARD = r"(?:a\s+lot|much|way|strongly|heavily|really|very|significantly|dramatically|considerably)"
_UP = r"(?:more|increase[sd]?|boost(?:ed)?|raise[sd]?|higher|up|add(?:ed)?|enhance[sd]?|stronger|bump(?:ed)?\s+up)"
_DOWN = r"(?:less|reduce[sd]?|decrease[sd]?|lower(?:ed)?|down|weaker|lessen(?:ed)?|soften(?:ed)?|tone\s+down)"

# (pattern, kind, sign or None for a fixed amount, fixed amount)
_WORDS: list[tuple[re.Pattern, str, int | None, float | None]] = [
    (re.compile(p), k, s, a)
    for p, k, s, a in [
        (
            r"\b(?:black\s*(?:and|&|n)\s*white|b\s*&\s*w|b/w|gr[ae]y\s*scale|monochrome|colou?rless|no\s+colou?rs?|"
            r"fully\s+desaturated?|completely\s+desaturated?)\b",
            "saturation",
            None,
            -100.0,
        ),
        (
            r"\bdesaturat\w*|\bmuted\b|\bwashed[\s-]out\b|\bless\s+(?:colou?rful|saturated|vivid)\b",
            "saturation",
            -1,
            None,
        ),
        (r"\b(?:saturat\w*|vivid|vibrant|colou?rful|punchy|colou?rs?\s+pop)\b", "saturation", 1, None),
        (r"\bpixel+at\w*|\bpixeli[sz]\w*|\bmosaic\w*|\bcensor\w*|\banonymi[sz]\w*", "pixelate", None, None),
        (r"\bblur\w*|\bout\s+of\s+focus\b|\bdefocus\w*|\bbokeh\b", "blur", None, None),
        (r"\bcontrast\w*\b", "contrast", 0, None),
        (r"\bexposure\b|\bexpos\w*|\bstops?\b", "exposure", 0, None),
        (r"\b(?:brighten\w*|lighten\w*|brighter|lighter|brightness|bright|light\s+up)\b", "brightness", 1, None),
        (r"\b(?:darken\w*|darker|dimmer|dim)\b", "brightness", -1, None),
    ]
]


def _direction(text: str) -> int:
    if re.search(rf"\b{_DOWN}\b|\bunder\s*expos", text):
        return -1
    return 1


def _amount(text: str, kind: str) -> float | None:
    m = re.search(r"(?P<n>[+-]?\d+(?:\.\d+)?)\s*(?P<u>%|percent|ev|stops?|px|pixels?)?", text)
    if m and (m.group("u") or kind in ("blur", "pixelate", "exposure")):
        return float(m.group("n"))
    scale = 0.5 if re.search(rf"\b{_SOFT}\b", text) else 2.0 if re.search(rf"\b{_HARD}\b", text) else None
    if scale is None:
        return None
    if kind in ("blur", "pixelate"):
        return None  # the default scales with the region; "a lot" of blur is the default
    return DEFAULT_AMOUNT[kind] * scale


def spec_from_words(text: str | None) -> str | None:
    """'a bit brighter' -> 'brightness +12.5%'; 'black and white' -> 'saturation -100%'; 'blur' ->
    'blur'; 'increase the exposure by 1 stop' -> 'exposure +1ev'; None if the words name no adjustment.
    A spec given as such ('brightness +25%') comes back as it is."""
    if not text:
        return None
    t = " ".join(text.lower().split())
    try:
        kind, amount = parse_spec(t)
        return spec(kind, amount)
    except InvalidInstructionError:
        pass
    for pattern, kind, sign, fixed in _WORDS:
        if not pattern.search(t):
            continue
        if fixed is not None:
            return spec(kind, fixed)
        amount = _amount(t, kind)
        if kind in ("blur", "pixelate"):
            return spec(kind, amount)
        direction = sign if sign else _direction(t)
        if sign == 1 and re.search(rf"\b{_DOWN}\b", t):  # "less bright", "tone down the vivid colours"
            direction = -1
        if amount is None:
            amount = DEFAULT_AMOUNT[kind]
        return spec(kind, direction * abs(amount))
    return None


# What a thing can be made, adjustment-wise: "make the photo black and white", "make the background blurry".
STATE = (
    r"(?:black\s*(?:and|&|n)\s*white|b\s*&\s*w|gr[ae]y\s*scale|monochrome|colou?rless|blurry|blurred|"
    r"out\s+of\s+focus|pixell?ated|desaturated|brighter|darker|lighter|dimmer|more\s+contrasty|"
    r"(?:more|less)\s+(?:vivid|saturated|colou?rful|vibrant|contrasty|bright)|vivid|vibrant)"
)


def is_adjustment_state(text: str) -> bool:
    """'black and white', 'a bit brighter', 'blurry': words an adjustment produces (not a style to paint)."""
    t = " ".join(text.lower().split())
    return re.fullmatch(rf"(?:a\s+bit\s+|slightly\s+|much\s+|a\s+lot\s+|way\s+)?{STATE}", t) is not None
