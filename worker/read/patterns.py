"""Regular expressions a filter may carry: only ones that run in linear time on the store; no I/O.

The store evaluates ``$regex`` with a backtracking engine (secantusdb: Python's
``re``; MongoDB: PCRE) in one thread that no time limit interrupts, so a
pattern that backtracks catastrophically holds it for every tenant. A pattern
is taken only if it is short (``MAX_PATTERN_LENGTH``), written in the subset
RE2 reads (``google-re2``: no backreferences, lookaround, atomic groups or
possessive quantifiers), and shaped so that a backtracking engine meets each
character a bounded number of times:

- no quantifier inside a repeated group but a fixed count (``(a+)+``,
  ``(a{1,3})*``), and no alternation inside one (``(a|ab)*``): the two ways
  one text can be matched in exponentially many ways;
- whatever may follow a variable quantifier cannot begin with a character the
  quantified part may begin with (``\\w*\\w*!``, ``a?a?a``, ``.*x``): each
  such pair multiplies the ways to split a text;
- a repetition that may run long (more than ``LONG_RUN``) cannot match a
  character a match may start with, unless the pattern is anchored with
  ``^`` or ends with it (``\\w+!`` tried at every position of a long word
  rescans it from each);
- the shortest text the pattern matches has at most ``MAX_PATTERN_LENGTH``
  characters (``(?:x{100}){10}`` reads 1,000 from each position a search
  tries).

A search then reads each character a bounded number of times, so its cost
grows with the text times the pattern, never worse.

Every filter is case-insensitive, so character sets are compared as the store
compares them, ignoring case. What is refused says why and how to write it
instead; the checks read the pattern with Python's own parser, the one the
store compiles it with.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import re2

# A pattern's longest text; SpaceONE's filters name a word or a prefix, never a program.
MAX_PATTERN_LENGTH = 256
# A repetition that can match more characters than this must not overlap where a match starts.
LONG_RUN = 16
# A character set with more members than this is compared by its matcher only.
_MAX_MEMBERS = 2048

# Python's parser of regular expressions, the one ``re.compile`` (and so the store) uses; typeshed
# describes it only under its deprecated name ``sre_parse``, so it is loaded by name.
_parser: Any = importlib.import_module("re._parser")
_constants: Any = importlib.import_module("re._constants")


class PatternRefused(ValueError):
    """A pattern this API does not run, with the reason in words a user can act on.

    ``compiles`` is false when the text is no regular expression at all (Python's parser refuses it).
    """

    def __init__(self, reason: str, compiles: bool = True) -> None:
        super().__init__(reason)
        self.compiles = compiles


def check_pattern(pattern: str) -> str:
    """``pattern`` if it runs in linear time on the store, else ``PatternRefused`` saying why."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternRefused(f"longer than {MAX_PATTERN_LENGTH} characters")
    try:
        parsed = _parser.parse(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError):
        raise PatternRefused("not a regular expression", compiles=False) from None
    _Shape(parsed).check()
    shortest, _ = parsed.getwidth()
    if shortest > MAX_PATTERN_LENGTH:
        # Each position a search tries may read this far: the text's length times this is the cost.
        raise PatternRefused(f"it matches no text shorter than {shortest} characters, more than "
                             f"{MAX_PATTERN_LENGTH}")
    try:
        re2.compile(pattern)
    except re2.error as exc:
        raise PatternRefused(f"outside the RE2 syntax ({exc})") from None
    return pattern


# --- single characters ----------------------------------------------------------------------------

_CATEGORY_CLASSES = {
    "CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W",
}
_COMPLEMENTS = {("CATEGORY_DIGIT", "CATEGORY_NOT_DIGIT"), ("CATEGORY_SPACE", "CATEGORY_NOT_SPACE"),
                ("CATEGORY_WORD", "CATEGORY_NOT_WORD")}


@dataclass(frozen=True)
class _Char:
    """One item that matches one character: its matcher, and its members when they are few."""

    matcher: re.Pattern[str]
    members: frozenset[str] | None
    category: str | None = None

    def disjoint(self, other: _Char) -> bool:
        """Whether no character matches both (``False`` when that cannot be shown)."""
        pair = (self.category, other.category)
        if pair in _COMPLEMENTS or pair[::-1] in _COMPLEMENTS:
            return True
        if self.members is not None:
            return not any(other.matcher.fullmatch(char) for char in self.members)
        if other.members is not None:
            return not any(self.matcher.fullmatch(char) for char in other.members)
        return False


def _escaped(code: int) -> str:
    return f"\\U{code:08x}"


def _char(op: Any, av: Any) -> _Char:
    name = op.name
    if name == "LITERAL":
        return _made(_escaped(av), _variants({chr(av)}))
    if name == "NOT_LITERAL":
        return _made(f"[^{_escaped(av)}]", None)
    if name == "ANY":
        return _made(".", None)
    # IN: literals, ranges, categories, perhaps negated.
    parts: list[str] = []
    members: set[str] = set()
    negated, enumerable, category = False, True, None
    for item_op, item in av:
        kind = item_op.name
        if kind == "NEGATE":
            negated = True
        elif kind == "LITERAL":
            parts.append(_escaped(item))
            members.add(chr(item))
        elif kind == "RANGE":
            low, high = item
            parts.append(f"{_escaped(low)}-{_escaped(high)}")
            if high - low < _MAX_MEMBERS:
                members.update(chr(code) for code in range(low, high + 1))
            else:
                enumerable = False
        elif kind == "CATEGORY":
            parts.append(_CATEGORY_CLASSES[item.name])
            category = item.name if len(av) == 1 else None
            listed = _category_members(item.name)
            if listed is None:
                enumerable = False
            else:
                members.update(listed)
        else:
            raise PatternRefused(f"a character class this API does not read ({kind})")
    source = f"[{'^' if negated else ''}{''.join(parts)}]"
    if negated:
        return _made(source, None)
    return _made(source, _variants(members) if enumerable and len(members) <= _MAX_MEMBERS else None, category)


def _made(source: str, members: frozenset[str] | None, category: str | None = None) -> _Char:
    # Case-insensitive as every filter is, and '.' taking newlines too: a superset is the safe side.
    return _Char(re.compile(source, re.IGNORECASE | re.DOTALL), members, category)


def _variants(chars: set[str]) -> frozenset[str]:
    """``chars`` and their other cases, as a case-insensitive match may meet them."""
    found = set(chars)
    for char in chars:
        for other in (char.lower(), char.upper(), char.swapcase(), char.casefold(), char.title()):
            if len(other) == 1:
                found.add(other)
    return frozenset(found)


@cache
def _category_members(name: str) -> frozenset[str] | None:
    """The members of ``\\d`` and ``\\s`` (Python's ``re``: decimal digits and whitespace); others are too many."""
    if name == "CATEGORY_DIGIT":
        return frozenset(chr(code) for code in range(0x110000) if chr(code).isdecimal())
    if name == "CATEGORY_SPACE":
        return frozenset(chr(code) for code in range(0x110000) if chr(code).isspace())
    return None


# --- the shape of a pattern ----------------------------------------------------------------------

_SINGLE = {"LITERAL", "NOT_LITERAL", "ANY", "IN"}
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT"}
_REFUSED = {
    "GROUPREF": "backreferences are not allowed",
    "GROUPREF_EXISTS": "conditional groups are not allowed",
    "ASSERT": "lookahead and lookbehind are not allowed",
    "ASSERT_NOT": "lookahead and lookbehind are not allowed",
    "ATOMIC_GROUP": "atomic groups are not allowed",
    "POSSESSIVE_REPEAT": "possessive quantifiers are not allowed",
}
# What follows a sequence once it ends: the rest of the enclosing sequence, and what follows that.
_Then = tuple[list[Any], int, Any] | None


@dataclass
class _Firsts:
    """The characters a part may begin with, and whether it may match nothing and reach the end."""

    chars: list[_Char]
    reaches_end: bool


class _Shape:
    """The structural checks of ``check_pattern`` over one parsed pattern."""

    def __init__(self, parsed: Any) -> None:
        self.items: list[Any] = parsed.data
        self.multiline = bool(parsed.state.flags & re.MULTILINE)
        self.starts: list[_Char] = []

    def check(self) -> None:
        self.starts = self._start_chars(self.items)
        self._walk(self.items, None, repeated=False)

    def _walk(self, items: list[Any], then: _Then, repeated: bool) -> None:
        for index, (op, av) in enumerate(items):
            name = op.name
            after: _Then = (items, index + 1, then)
            if name in _REFUSED:
                raise PatternRefused(_REFUSED[name])
            if name == "SUBPATTERN":
                self._walk(av[-1].data, after, repeated)
            elif name == "BRANCH":
                if repeated:
                    raise PatternRefused("an alternation inside a repeated group can match one text in many "
                                         "ways; use a character class ([ab]) or repeat each alternative apart")
                for alternative in av[1]:
                    self._walk(alternative.data, after, repeated)
            elif name in _REPEATS:
                low, high, body = av
                variable = low != high
                if repeated and variable:
                    raise PatternRefused("a quantifier inside a repeated group (nested quantifiers) can match "
                                         "one text in many ways; use a fixed count inside, as in (ab{2})*")
                self._walk(body.data, after, repeated or high > 1)
                if variable:
                    self._check_variable(body.data, high, after)
            elif name not in _SINGLE and name != "AT":
                raise PatternRefused(f"a construct this API does not read ({name})")

    def _check_variable(self, body: list[Any], high: int, after: _Then) -> None:
        begins = self._firsts(body, 0, None).chars
        follows = self._firsts(*after) if after is not None else _Firsts([], True)
        if any(not one.disjoint(other) for one in begins for other in follows.chars):
            raise PatternRefused("what follows a quantifier can begin with a character the quantified part "
                                 "matches, so a text splits in many ways; make them exclusive, as in "
                                 "[^,]*, or [a-z]+[0-9]")
        long_run = high > LONG_RUN and not self._is_last(after)
        if long_run and any(not one.disjoint(start) for one in begins for start in self.starts):
            raise PatternRefused("a repetition that can match where a match starts is tried again from every "
                                 "position of a long text; anchor the pattern with ^, or begin it with a "
                                 "character the repetition does not match")

    def _firsts(self, items: list[Any], start: int, then: _Then) -> _Firsts:
        chars: list[_Char] = []
        for op, av in items[start:]:
            firsts = self._item_firsts(op, av)
            chars += firsts.chars
            if not firsts.reaches_end:
                return _Firsts(chars, False)
        if then is None:
            return _Firsts(chars, True)
        rest = self._firsts(*then)
        return _Firsts(chars + rest.chars, rest.reaches_end)

    def _item_firsts(self, op: Any, av: Any) -> _Firsts:
        name = op.name
        if name in _SINGLE:
            return _Firsts([_char(op, av)], False)
        if name == "AT":
            return _Firsts([], True)  # zero-width: what follows it begins the match
        if name == "SUBPATTERN":
            return self._firsts(av[-1].data, 0, None)
        if name == "BRANCH":
            alternatives = [self._firsts(alternative.data, 0, None) for alternative in av[1]]
            return _Firsts([char for one in alternatives for char in one.chars],
                           any(one.reaches_end for one in alternatives))
        if name in _REPEATS:
            low, _, body = av
            firsts = self._firsts(body.data, 0, None)
            return _Firsts(firsts.chars, firsts.reaches_end or low == 0)
        raise PatternRefused(_REFUSED.get(name, f"a construct this API does not read ({name})"))

    def _start_chars(self, items: list[Any]) -> list[_Char]:
        """The characters a match may start with; none when the pattern is anchored at the start."""
        if not items:
            return []
        op, av = items[0]
        name = op.name
        if name == "AT" and (av.name == "AT_BEGINNING_STRING" or (av.name == "AT_BEGINNING" and not self.multiline)):
            return []
        if name == "BRANCH":
            return [char for alternative in av[1] for char in self._start_chars(alternative.data + items[1:])]
        if name == "SUBPATTERN" and not av[1] & re.MULTILINE:
            return self._start_chars(av[-1].data + items[1:])
        return self._firsts(items, 0, None).chars

    @staticmethod
    def _is_last(then: _Then) -> bool:
        # Nothing at all after it: once reached, the match succeeds, so its run is never read again.
        while then is not None:
            items, start, then = then
            if items[start:]:
                return False
        return True

