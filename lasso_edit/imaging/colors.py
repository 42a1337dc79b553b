"""Colour names as people write them -> sRGB, for the rules parser and the recolour executor."""

from __future__ import annotations

import re

# Base names (CSS where it agrees with common speech, adjusted where it does not: "green" is
# the green people mean, not CSS's dark #008000). Multi-word names are matched first.
NAMED: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "crimson": (220, 20, 60),
    "scarlet": (255, 36, 0),
    "maroon": (128, 0, 0),
    "burgundy": (128, 0, 32),
    "wine": (114, 47, 55),
    "ruby": (224, 17, 95),
    "cherry": (210, 4, 45),
    "orange": (255, 140, 0),
    "tangerine": (242, 133, 0),
    "peach": (255, 203, 164),
    "coral": (255, 127, 80),
    "salmon": (250, 128, 114),
    "rust": (183, 65, 14),
    "amber": (255, 191, 0),
    "yellow": (255, 220, 0),
    "gold": (212, 175, 55),
    "golden": (218, 165, 32),
    "mustard": (225, 173, 1),
    "lemon": (255, 247, 0),
    "cream": (255, 253, 208),
    "beige": (225, 198, 153),
    "khaki": (195, 176, 145),
    "tan": (210, 180, 140),
    "brown": (120, 72, 30),
    "chocolate": (123, 63, 0),
    "caramel": (175, 111, 9),
    "bronze": (205, 127, 50),
    "copper": (184, 115, 51),
    "green": (30, 160, 60),
    "lime": (50, 205, 50),
    "olive": (128, 128, 0),
    "mint": (152, 255, 152),
    "emerald": (0, 155, 119),
    "jade": (0, 168, 107),
    "teal": (0, 128, 128),
    "sage": (178, 172, 136),
    "forest green": (34, 139, 34),
    "dark green": (0, 100, 0),
    "light green": (144, 238, 144),
    "lime green": (50, 205, 50),
    "olive green": (107, 142, 35),
    "army green": (75, 83, 32),
    "cyan": (0, 200, 220),
    "turquoise": (64, 224, 208),
    "aqua": (0, 220, 220),
    "aquamarine": (127, 255, 212),
    "blue": (30, 80, 220),
    "navy": (0, 0, 128),
    "navy blue": (20, 30, 110),
    "royal blue": (65, 105, 225),
    "sky blue": (135, 206, 235),
    "light blue": (173, 216, 230),
    "dark blue": (0, 0, 139),
    "baby blue": (137, 207, 240),
    "cobalt": (0, 71, 171),
    "cobalt blue": (0, 71, 171),
    "azure": (0, 127, 255),
    "indigo": (75, 0, 130),
    "denim": (21, 96, 189),
    "steel blue": (70, 130, 180),
    "purple": (128, 40, 170),
    "violet": (143, 0, 255),
    "lavender": (181, 126, 220),
    "lilac": (200, 162, 200),
    "magenta": (255, 0, 255),
    "fuchsia": (255, 0, 255),
    "plum": (142, 69, 133),
    "mauve": (224, 176, 255),
    "pink": (255, 150, 190),
    "hot pink": (255, 105, 180),
    "baby pink": (244, 194, 194),
    "rose": (255, 0, 127),
    "white": (245, 245, 245),
    "off white": (250, 249, 246),
    "ivory": (255, 255, 240),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "silver": (192, 192, 192),
    "charcoal": (54, 69, 79),
    "blonde": (230, 200, 120),
    "blond": (230, 200, 120),
    "platinum": (229, 228, 226),
    "auburn": (165, 42, 42),
    "ginger": (176, 101, 0),
    "brunette": (100, 60, 30),
    "chestnut": (149, 69, 53),
    "light gray": (200, 200, 200),
    "light grey": (200, 200, 200),
    "dark gray": (80, 80, 80),
    "dark grey": (80, 80, 80),
}
# Words that modify a colour: (lightness shift in L*, chroma factor).
MODIFIERS: dict[str, tuple[float, float]] = {
    "light": (18, 0.7),
    "pale": (22, 0.5),
    "pastel": (20, 0.55),
    "soft": (10, 0.7),
    "dark": (-22, 1.0),
    "deep": (-15, 1.15),
    "bright": (8, 1.25),
    "vivid": (0, 1.35),
    "neon": (10, 1.5),
    "vibrant": (0, 1.3),
    "dull": (-5, 0.6),
    "muted": (0, 0.55),
    "rich": (-8, 1.2),
    "metallic": (0, 0.9),
    "matte": (0, 0.9),
    "electric": (5, 1.4),
    "stormy": (-12, 0.5),
    "dusty": (5, 0.5),
    "smoky": (-5, 0.4),
    "icy": (15, 0.6),
    "warm": (3, 1.1),
    "cool": (0, 0.9),
    "cold": (0, 0.85),
    "sandy": (10, 0.6),
    "slate": (-10, 0.6),
    "midnight": (-30, 1.0),
    "ash": (5, 0.3),
    "powder": (18, 0.5),
    "candy": (5, 1.3),
}
RELATIVE = {
    "darker": (-18, 1.0),
    "lighter": (18, 0.9),
    "brighter": (10, 1.2),
    "paler": (15, 0.6),
    "more colorful": (0, 1.4),
    "more colourful": (0, 1.4),
    "less colorful": (0, 0.6),
}
COMPARATIVE = {
    "redder": "red",
    "greener": "green",
    "bluer": "blue",
    "yellower": "yellow",
    "pinker": "pink",
    "oranger": "orange",
    "whiter": "white",
    "blacker": "black",
    "browner": "brown",
    "grayer": "gray",
    "greyer": "grey",
}
_HEX = re.compile(r"^#?([0-9a-f]{6}|[0-9a-f]{3})$")
_SUFFIX = re.compile(r"(?:ish|-ish)$")
_FILLER = {"colored", "coloured", "color", "colour", "in", "a", "shade", "of", "tone", "hue", "-"}


def parse_color(text: str | None) -> tuple[tuple[int, int, int], float, float] | None:
    """Read a colour phrase: ("navy blue" | "light pink" | "#ff8800" | "darker") ->
    (base sRGB, lightness shift in L*, chroma factor), or None when it is not a colour.
    """
    if not text:
        return None
    t = text.lower().strip().strip(".!")
    t = re.sub(r"\s+", " ", t.replace("-", " "))
    if t in COMPARATIVE:
        return NAMED[COMPARATIVE[t]], 0.0, 1.15
    if t in RELATIVE:
        dl, dc = RELATIVE[t]
        return (-1, -1, -1), dl, dc  # relative: keep the hue, shift lightness/chroma
    m = _HEX.fullmatch(t)
    if m:
        h = m.group(1)
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)), 0.0, 1.0
    words = [w for w in t.split() if w not in _FILLER]
    if not words:
        return None
    # Longest known name at the end ("navy blue" before "blue"), modifiers before it.
    for n in (3, 2, 1):
        if len(words) >= n:
            name = " ".join(words[-n:])
            base = NAMED.get(name) or NAMED.get(_SUFFIX.sub("", name))
            if base is None:
                continue
            shift, scale = 0.0, 1.0
            for w in words[:-n]:
                if w not in MODIFIERS:
                    return None
                shift, scale = shift + MODIFIERS[w][0], scale * MODIFIERS[w][1]
            return base, shift, scale
    return None


def is_color(text: str | None) -> bool:
    return parse_color(text) is not None
