"""Which regular expressions a filter may carry (worker.read.patterns): the everyday ones, never one that backtracks."""

from __future__ import annotations

import re

import pytest

from worker.read.patterns import MAX_PATTERN_LENGTH, PatternRefused, check_pattern

# What SpaceONE users filter with: words, prefixes, suffixes, alternatives, bounded shapes.
TAKEN = [
    "aws", "AWS-China", "^job-", "^job-task-[0-9a-f]+$", "ec2|s3|gcp", "^(aws|gcp)$", "202403", r"20\d\d",
    r"-\d+$", r"\.json$", "colou?r", "https?://", r"^ds-[a-z]+-\d+$", r"\d{1,4}-\d{1,2}", "^(?:ab)+c",
    r"^[^,]+,[^,]+$", "gpu.*", r"^\w+@\w+\.com$", r"(?i)quota", r"\bcpu\b", r"^[a-z]+\d", r"^.{3}$",
    r"-[a-z]+!", "(?P<month>2024)",
]

REFUSED = [
    ("(a+)+$", "nested quantifiers"),
    ("(a|ab)*c", "alternation inside a repeated group"),
    (r"^(?:[\w-]|\w\w)*!", "alternation inside a repeated group"),  # the shape issue 17 was hit with
    ("(?:a{1,3})*b", "nested quantifiers"),
    (r"\w*\w*!", "what follows a quantifier"),
    ("a?a?a?aaa", "what follows a quantifier"),
    (".*x", "what follows a quantifier"),
    (r"^.*gpu", "what follows a quantifier"),
    (r"\w+!", "tried again from every position"),
    (r"[a-z]+-[a-z]+", "tried again from every position"),
    (r"[^,]+,", "tried again from every position"),
    (r"(\d)\1", "backreferences"),
    ("(?=a)b", "lookahead and lookbehind"),
    ("(?<!a)b", "lookahead and lookbehind"),
    ("a++b", "possessive"),
    ("(?>a+)b", "atomic"),
    (r"a\Z", "RE2"),
    ("(?x) a b", "RE2"),
    ("(", "not a regular expression"),  # answered as SpaceONE does, ERROR_DB_QUERY (tests/unit/test_query.py)
    ("(?:[a-z]{100}){3}", "no text shorter than 300"),
    ("x" * (MAX_PATTERN_LENGTH + 1), f"longer than {MAX_PATTERN_LENGTH}"),
]


@pytest.mark.parametrize("pattern", TAKEN)
def test_everyday_patterns_are_taken(pattern):
    assert check_pattern(pattern) == pattern
    re.compile(pattern, re.IGNORECASE)


@pytest.mark.parametrize(("pattern", "reason"), REFUSED)
def test_patterns_that_can_backtrack_are_refused_saying_why(pattern, reason):
    with pytest.raises(PatternRefused, match=re.escape(reason)):
        check_pattern(pattern)


def test_character_sets_are_compared_ignoring_case_as_the_store_matches():
    # 'A' can follow [a-z]+ only if the filter were case-sensitive; every filter is not.
    with pytest.raises(PatternRefused, match="what follows a quantifier"):
        check_pattern("^[a-z]+A")
    with pytest.raises(PatternRefused, match="what follows a quantifier"):
        check_pattern("^k+\u212a")  # the Kelvin sign is a k, ignoring case
    assert check_pattern("^[a-z]+[0-9]")
    assert check_pattern(r"^\d+\s") and check_pattern(r"^\w+\W")
