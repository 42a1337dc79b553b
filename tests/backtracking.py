"""Which regular expressions can backtrack super-linearly, read from their parse trees.

Python's `re` backtracks: a pattern with two ways to spend the same run of characters tries every
split of that run before it gives up, and a search tries that again from every position. `_TAIL` in
conversation.py (`[\\s,.!?]*(?:please|...)?[\\s,.!?]*$`) had two stars over the same characters; a
2,000-character follow-up of commas took 22 s, and a pattern in rules.py with five words that could
split one another (`(?:[a-z'-]+\\s*){1,5}$`) took 143 s on 170 characters.

`ambiguities(pattern, mode)` names each place where a run of one repeated character `c` can be
spent in several ways (the standard shapes of polynomial and exponential backtracking):

- two unbounded repeats that can both take a run of `c` with nothing between them that `c` could
  not also fill (`a*a*`, `.+?\\s+`, `x*(?:word)?x*`);
- a repeat whose two consecutive passes can share a run of `c` (`(?:a+)+`, `(?:\\w+\\s*){1,5}`), or
  whose alternatives both take `c` (`(?:a|a)*`);
- in a search (`re.search`, `re.sub`, `re.split`, `re.findall`), an unbounded repeat the pattern can
  start with on a run of `c`, when what follows can fail there: every position of the run starts an
  attempt that scans the rest of it (`\\s+instead$`); a leading `^`, or a negative lookbehind that `c`
  fails, stops that.

It is a check over the structure (sre's parse tree), not a clock: the tests that use it fail the
same way on any machine. `collapsed=True` reads a text whose whitespace runs are single spaces (the
parsers' normalised text), so whitespace is never the repeated character there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

try:  # Python 3.11+
    from re import _constants as C
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as C  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

import re

# The characters a run may repeat: every one the pattern names, and one of each kind besides (a
# character it does not name behaves as any other of its kind does).
OTHERS = " \t\nqQ7_-,.!?'\":;#%&()[]{}<>=+*/\\|~`@$^\xa0\u2019\u2192\u00e9\u4e00"
LONG = 8  # a bounded repeat up to this many passes is short; beyond it, a run
SEARCH = "search"  # how the pattern is used: search (also sub, split, findall) or match (match, fullmatch)
MATCH = "match"


@dataclass(frozen=True)
class Ambiguity:
    pattern: str
    char: str
    where: str

    def __str__(self) -> str:
        return f"{self.where} on a run of {self.char!r} in {self.pattern[:120]!r}"


_CATEGORIES = {
    C.CATEGORY_DIGIT: r"\d",
    C.CATEGORY_NOT_DIGIT: r"\D",
    C.CATEGORY_SPACE: r"\s",
    C.CATEGORY_NOT_SPACE: r"\S",
    C.CATEGORY_WORD: r"\w",
    C.CATEGORY_NOT_WORD: r"\W",
}
_REPEATS = {C.MAX_REPEAT, C.MIN_REPEAT} | ({C.POSSESSIVE_REPEAT} if hasattr(C, "POSSESSIVE_REPEAT") else set())
_ONE_CHAR = {C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN}


def _member(op, av, c: str, flags: int) -> bool:
    """Whether the one-character node (op, av) takes `c`."""
    if flags & re.IGNORECASE and c.lower() != c.upper():
        flags &= ~re.IGNORECASE
        return _member(op, av, c.lower(), flags) or _member(op, av, c.upper(), flags)
    if op is C.LITERAL:
        return c == chr(av)
    if op is C.NOT_LITERAL:
        return c != chr(av)
    if op is C.ANY:
        return c != "\n" or bool(flags & re.DOTALL)
    negate = bool(av) and av[0][0] is C.NEGATE
    hit = False
    for item_op, item in av[1:] if negate else av:
        if item_op is C.LITERAL:
            hit = c == chr(item)
        elif item_op is C.RANGE:
            hit = item[0] <= ord(c) <= item[1]
        elif item_op is C.CATEGORY:
            hit = re.fullmatch(_CATEGORIES[item], c) is not None
        if hit:
            break
    return hit != negate


def _literals(seq):
    """The code points `seq` names: its literals and the ends of its ranges."""
    for op, av in seq:
        if op in (C.LITERAL, C.NOT_LITERAL):
            yield av
        elif op is C.IN:
            for item_op, item in av:
                if item_op is C.LITERAL:
                    yield item
                elif item_op is C.RANGE:
                    yield from item
        elif op is C.BRANCH:
            for b in av[1]:
                yield from _literals(b)
        elif op is C.SUBPATTERN:
            yield from _literals(av[-1])
        elif op in _REPEATS:
            yield from _literals(av[2])
        elif op in (C.ASSERT, C.ASSERT_NOT):
            yield from _literals(av[1])


class _Reader:
    """The questions asked of each node, answered for every character at once: the set of the
    characters `c` for which the answer is yes.

    only: the node can match a string of c alone (c^k, k >= 0); plus: with k >= 1; pump: with k as
    large as a run may be; head / tail: it can start / end with such a run taken by one repeat (with
    only c before / after it in the node); meet: the characters whose run two of its repeats can share.
    """

    def __init__(self, alphabet: frozenset[str], flags: int):
        self.all, self.flags = alphabet, flags
        self._memo: dict = {}

    def leaf(self, op, av) -> frozenset[str]:
        key = ("leaf", op, repr(av))
        if key not in self._memo:
            self._memo[key] = frozenset(c for c in self.all if _member(op, av, c, self.flags))
        return self._memo[key]

    def read(self, seq):
        """(only, plus, pump, head, tail, meet) of a sequence."""
        key = id(seq)
        if key not in self._memo:
            self._memo[key] = (seq, self._read(list(seq)))  # the node kept alive: its id stays its own
        return self._memo[key][1]

    def _read(self, items):
        nodes = [self.node(op, av) for op, av in items]
        only = self.all
        plus = pump = frozenset()
        for o, p, q, *_ in nodes:
            only = only & o
            plus, pump = plus | p, pump | q
        plus, pump = plus & only, pump & only
        head, before = frozenset(), self.all
        for o, _, _, h, _, _ in nodes:
            head |= h & before
            before = before & o
        tail, after = frozenset(), self.all
        for o, _, _, _, t, _ in reversed(nodes):
            tail |= t & after
            after = after & o
        meet = frozenset().union(*(n[5] for n in nodes))
        for i, (_, _, _, _, t, _) in enumerate(nodes):  # a repeat's run, then only c, then another repeat's
            between = t
            for o, _, _, h, _, _ in nodes[i + 1 :]:
                if not between:
                    break
                meet |= between & h
                between = between & o
        return only, plus, pump, head, tail, meet

    def node(self, op, av):
        none = frozenset()
        if op in _ONE_CHAR:
            one = self.leaf(op, av)
            return one, one, none, none, none, none
        if op is C.BRANCH:
            parts = [self.read(b) for b in av[1]]
            return tuple(frozenset().union(*(p[k] for p in parts)) for k in range(6))
        if op is C.SUBPATTERN:
            return self.read(av[-1])
        if op in _REPEATS:
            lo, hi, body = av
            o, p, q, h, t, m = self.read(body)
            only = self.all if lo == 0 else o
            plus = p if hi >= 1 else none
            pump = ((p if hi > LONG else none) | (q if hi >= 1 else none)) & only
            head, tail = pump | (h if hi >= 1 else none), pump | (t if hi >= 1 else none)
            if hi >= 2:
                m = m | (t & h)  # two passes share a run
            if hi > LONG and len(body) == 1 and body[0][0] is C.BRANCH:  # alternatives that both take c
                counts: dict[str, int] = {}
                for b in body[0][1][1]:
                    for c in self.read(b)[1]:
                        counts[c] = counts.get(c, 0) + 1
                m = m | frozenset(c for c, n in counts.items() if n >= 2)
            return only, plus, pump, head, tail, m
        if op is C.AT:  # ^, $ and \b never hold inside a run of one character; \B always does
            return (self.all if av is C.AT_NON_BOUNDARY else none), none, none, none, none, none
        if op is C.ASSERT_NOT:  # inside the run, what it refuses is there when it can be c alone
            inner = self.read(av[1])
            return self.all - inner[0], none, none, none, none, inner[5]
        if op is C.ASSERT:
            inner = self.read(av[1])
            return inner[0], none, none, none, none, inner[5]
        return self.all, none, none, none, none, none  # group references and the like: the worst


@lru_cache(maxsize=None)
def ambiguities(pattern: str, mode: str = SEARCH, flags: int = 0, collapsed: bool = False) -> tuple[Ambiguity, ...]:
    """Each shape of super-linear backtracking `pattern` has (empty: none), used as `mode` says."""
    tree = sre_parse.parse(pattern, flags)
    flags = int(flags | tree.state.flags)
    alphabet = {chr(v) for v in _literals(tree)} | set(OTHERS)
    if flags & re.IGNORECASE:
        alphabet |= {c.swapcase() for c in alphabet}
    if collapsed:
        alphabet = {c for c in alphabet if not c.isspace()}
    reader = _Reader(frozenset(alphabet), flags)
    only, _, _, head, _, meet = reader.read(tree)
    found = {c: "two ways to split the run" for c in meet}
    if mode == SEARCH:  # an attempt started inside the run scans the rest of it, and can fail there
        found.update({c: "a search that scans the run again from each of its characters" for c in head - only})
    return tuple(Ambiguity(pattern, c, where) for c, where in sorted(found.items()))
