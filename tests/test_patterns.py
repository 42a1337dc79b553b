"""Regular expressions over what a person sends: each reads it in time linear in its length (issue
28 #2), and each that checks a whole value checks all of it (#12).

A follow-up of 2,000 commas took 22 s in conversation.py's `_TAIL`, and "no more " and 170 letters
took 143 s in the rules parser, on the server's event loop. Two checks, neither on a clock:

- the patterns' structure (tests/backtracking.py): every pattern of conversation.py, and every one
  the rules parser and phrases.py read an instruction with, is free of the shapes that backtrack
  super-linearly. It fails the same way on any machine, at once, and names the pattern and the
  character whose run it would split. Its blind spot is a run of a repeated *word* ("a a a ..."),
  which the second check covers for the shapes found so far;
- the readers themselves on hostile texts of the longest length an instruction may have, built
  from the patterns' own alphabets and words: each ends in milliseconds now; a super-linear pattern
  makes this test take minutes (cubic: 22 s a text) or never end, which no run can miss.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from lasso_edit.core.errors import LassoError
from lasso_edit.core.plan import Edit
from lasso_edit.parse import phrases, rules
from lasso_edit.parse.limits import MAX_INSTRUCTION_CHARS
from lasso_edit.sessions import conversation

from .backtracking import MATCH, SEARCH, ambiguities

_MODES = {
    "match": MATCH,
    "fullmatch": MATCH,
    "search": SEARCH,
    "sub": SEARCH,
    "subn": SEARCH,
    "split": SEARCH,
    "findall": SEARCH,
    "finditer": SEARCH,
}


def _patterns(module, only_in: str | None = None) -> tuple[list[tuple[str, str, int, str]], list[str]]:
    """(pattern, mode, flags, where) for each regular expression `module` names in its source: the
    literal ones of its `re.<fn>(...)` calls (evaluated in the module, f-strings included) and its
    compiled ones, in the mode each is used in (a search where any use is one). Also the calls whose
    pattern is built from a local name (not read here). `only_in`: one function's calls alone."""
    tree = ast.parse(inspect.getsource(module))
    if only_in is not None:
        tree = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == only_in)
    names = vars(module)
    found, unread = [], []
    uses: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Name) and isinstance(names.get(owner.id), re.Pattern):
                    uses.setdefault(owner.id, set()).add(_MODES.get(node.func.attr, SEARCH))
            continue
        fn, owner, first = node.func.attr, node.func.value, node.args[0]
        if isinstance(owner, ast.Name) and isinstance(names.get(owner.id), re.Pattern):  # _TAIL.sub(...)
            uses.setdefault(owner.id, set()).add(_MODES.get(fn, SEARCH))
            continue
        if not (isinstance(owner, ast.Name) and owner.id == "re" and (fn in _MODES or fn == "compile")):
            continue
        if isinstance(first, ast.Name) and isinstance(names.get(first.id), re.Pattern):  # re.sub(_TAIL, ...)
            uses.setdefault(first.id, set()).add(_MODES.get(fn, SEARCH))
            continue
        try:
            pattern = eval(compile(ast.Expression(first), module.__name__, "eval"), names)  # noqa: S307
        except NameError:
            unread.append(f"line {node.lineno}: {ast.unparse(first)[:60]}")
            continue
        if fn == "compile" or not isinstance(pattern, str):
            continue
        flags = next((k.value for k in node.keywords if k.arg == "flags"), None)
        flag = eval(compile(ast.Expression(flags), "flags", "eval"), names) if flags is not None else 0  # noqa: S307
        found.append((pattern, _MODES[fn], int(flag), f"line {node.lineno}"))
    if only_in is None:
        for name, value in names.items():
            if isinstance(value, re.Pattern) and name.isidentifier():
                for mode in sorted(uses.get(name, {SEARCH})):
                    found.append((value.pattern, mode, value.flags & ~re.UNICODE, name))
    return found, unread


def _linear(found, collapsed: bool = False) -> list[str]:
    return [
        str(a) + f" ({where}, {mode})"
        for p, mode, flags, where in found
        for a in ambiguities(p, mode, flags, collapsed)
    ]


# ---------------------------------------------------------------------- the check itself
@pytest.mark.parametrize(
    "pattern, mode",
    [
        (r"[\s,.!?]*(?:please|pls|thanks|thank you|for me)?[\s,.!?]*$", SEARCH),  # conversation._TAIL, cubic
        (r"^(?:no\s+more)\s+(?P<t>(?:(?!\b(?:to)\b)[a-z'-]+\s*){1,5})$", MATCH),  # rules: a word split 5 ways
        (r"^(?:a+)+$", MATCH),
        (r"^(?:\w+\s*)*$", MATCH),
        (r"^(?P<t>.+?)\s+too$", MATCH),  # on a run of spaces (a text not collapsed)
        (r"[\s,]*\binstead$", SEARCH),
        (r"\s+instead$", SEARCH),
        (r"(?:[,\s]+(?:please|now))+$", SEARCH),
        (r"\s*[\r\n]+\s*", SEARCH),
    ],
)
def test_the_check_finds_each_shape_that_backtracked(pattern, mode):
    assert ambiguities(pattern, mode)


@pytest.mark.parametrize(
    "pattern, mode",
    [
        (conversation._TAIL.pattern, SEARCH),
        (r"(?<![\s,])[\s,]*\binstead$", SEARCH),
        (r"(?<!\s)\s+instead$", SEARCH),
        (r"\s+", SEARCH),  # always ends where the run does: nothing to try again
        (r"^(?:(?:ok|hmm+|um+)\b[\s,.!]*)+", SEARCH),
        (r"^(?:no+[\s,]+)*", SEARCH),
        (r"(?:and )?(?P<target>.+?) (?:too|as well|also)", MATCH),
        (r"the (?P<where>[\w ]+?) (?:one|(?P<noun>\w+))", MATCH),
        (r"[a-z'-]+(?:\s+[a-z'-]+){0,4}\s*$", MATCH),
        (r"\b(?:it|them|that one|this one)\b", SEARCH),
    ],
)
def test_the_check_passes_what_reads_a_run_once(pattern, mode):
    assert ambiguities(pattern, mode) == ()


# ---------------------------------------------------------------------- the patterns
def test_every_pattern_of_the_conversation_reads_in_linear_time():
    found, unread = _patterns(conversation)
    assert unread == [] and len(found) > 25  # every one read, none skipped
    assert _linear(found) == []


def test_every_pattern_the_rules_parser_reads_words_with_is_linear():
    """The rules' and phrases.py's patterns read a text whose whitespace runs are single spaces
    (normalize, split_target), so a run of spaces is not one they can meet; normalize's own patterns
    read the raw instruction and are held to every run."""
    found, _ = _patterns(rules)
    found += [(p.pattern, MATCH, p.flags & ~re.UNICODE, "a clause pattern") for p, _ in rules._COMPILED]
    found += [(p.pattern, MATCH, p.flags & ~re.UNICODE, "a rephrasing") for p, _ in rules._REPHRASE_COMPILED]
    found += [(p, SEARCH, 0, "a qualifier after the noun") for p in phrases._POST_QUALIFIERS]
    found += [(p, MATCH, 0, "a qualifier before the noun") for p, _ in phrases._PRE_QUALIFIERS]
    found += _patterns(phrases)[0]
    raw, _ = _patterns(rules, only_in="normalize")
    assert len(found) > 100 and raw
    assert _linear(found, collapsed=True) + _linear(raw) == []


# ---------------------------------------------------------------------- the readers, on hostile texts
def _longest(start: str, unit: str, end: str = "") -> str:
    """`start`, `unit` repeated, `end`: MAX_INSTRUCTION_CHARS characters in all."""
    room = MAX_INSTRUCTION_CHARS - len(start) - len(end)
    return start + (unit * (room // len(unit) + 1))[:room] + end


HOSTILE = [
    _longest("", ",", "a"),  # the issue's: 22 s in _TAIL
    _longest("a", ","),
    _longest("make it red", ", ", "x"),
    _longest("undo that and try ", ", ", "x"),
    _longest("no more ", "a", "#"),  # 143 s at 170 letters, in a rephrasing of rules.py
    _longest("and no more ", "a", "# too"),
    _longest("and the ", "a ", "x"),
    _longest("and ", "x ", "too"),
    _longest("make it ", "a bit "),
    _longest("the ", "a ", "one"),
    _longest("", "no, "),
    _longest("", "please, thank you "),
    _longest("give the ", "a ", "x"),
    _longest("make ", "x not ", "#"),
    _longest("blur the", " 1", " #"),
    _longest("increase the contrast of the", " 1", " #"),
    _longest("a", " ", "->"),
    _longest("x", " \n", "y"),
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:24]))
def test_hostile_follow_ups_and_instructions_of_the_longest_length_are_read_at_once(text):
    car = conversation.Context("make the car red", [Edit("recolor", "car", "red")], [(10.0, 20.0, 60.0, 70.0)])
    assert len(text) == MAX_INSTRUCTION_CHARS
    for context in (car, None):
        assert conversation.resolve(text, context).kind in ("new", "again", "revise", "undo", "question")
    try:
        rules.parse_instruction(text)
    except LassoError:  # not understood, or too many edits: said in words, in time
        pass
    assert phrases.split_target(text).noun


# ---------------------------------------------------------------------- whole values
def _ends_with_dollar_and_matched() -> list[str]:
    """Each `re.match(r"...$", x)` and `NAME.match(x)` (NAME compiled from a pattern ending in `$`)
    in the package: `$` also holds before a last line break, so such a check lets "value\n" through.
    The parsers (parse/) are not checks: they read text whose line breaks are already gone
    (normalize() makes each one a clause's end, split() a space), where `$` is the end."""
    import lasso_edit

    root = Path(lasso_edit.__file__).parent
    found = []
    for path in sorted(p for p in root.rglob("*.py") if "parse" not in p.relative_to(root).parts):
        tree = ast.parse(path.read_text(), str(path))
        compiled = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1:
                call, target = node.value, node.targets[0]
                if (
                    isinstance(target, ast.Name)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "compile"
                    and call.args
                    and isinstance(call.args[0], ast.Constant)
                ):
                    compiled[target.id] = call.args[0].value
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "match"):
                continue
            owner = node.func.value
            if (
                isinstance(owner, ast.Name)
                and owner.id == "re"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                pattern = node.args[0].value
            elif isinstance(owner, ast.Name) and owner.id in compiled:
                pattern = compiled[owner.id]
            else:
                continue
            if isinstance(pattern, str) and pattern.endswith("$") and not pattern.endswith("\\$"):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def test_no_check_of_a_whole_value_lets_a_line_break_after_it_through():
    assert _ends_with_dollar_and_matched() == []
