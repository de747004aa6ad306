"""The token cache of masking: token-by-token masking (with its bounded cache) gives exactly the
tokens of masking the whole line, and the cache stays bounded."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from logprompt.parsing import (
    ParserConfig,
    TemplateLearner,
    TemplateMatcher,
    TemplateTable,
    TokenCache,
    _Preprocessor,
)
from logprompt.presets import BGL_RAW, HDFS

LINES = [
    "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
    "blk_38865049064139660 terminating",
    "081109 203807 222 INFO dfs.DataNode$PacketResponder: Received block blk_-6952295868487656571 "
    "of size 67108864 from /10.251.42.84",
    "081109 204005 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: "
    "10.251.73.220:50010 is added to blk_7128370237687728475 size 67108864",
    "Deleting block blk_789 file /mnt/hadoop/dfs/data/current/subdir11/blk_789",
    "uuid 123e4567-e89b-12d3-a456-426614174000 hex 0x1F deadbeefcafe abcdef12 x",
    "a<*> <*><*> 12<*> -3.5 +7 v1.2.3 r2d2 ab-12 /x /x/y/ ::1 1.2.3.4:80/a",
    "tabs\tand\u00a0nbsp\x1fus\u2028ls 42\u0663 é1 ß22",
    "",
    "   ",
]
ALPHABET = list("0123456789abcdefABCDEFxX/.:-+_<>*= \t,;()") + [
    "blk_", "blk_-", "0x", "<*>", "\u00a0", "\x1f", "\u0663", "é", "  ", "\u2028"]


def _random_lines(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 40))) for _ in range(n)]


def test_per_token_masking_equals_whole_line_masking() -> None:
    for config in (ParserConfig(), HDFS.parser, BGL_RAW.parser):
        pre = _Preprocessor(config, token_cache_size=64)  # small: clears often during the test
        for line in LINES + _random_lines(5000, seed=1):
            assert pre.masked_tokens_per_token(line) == pre.masked_tokens_whole(line), line


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET), max_size=30).map("".join))
def test_per_token_masking_equals_whole_line_masking_generated(line: str) -> None:
    pre = _Preprocessor(ParserConfig())
    assert pre.masked_tokens_per_token(line) == pre.masked_tokens_whole(line)


def test_cached_parse_equals_uncached_parse() -> None:
    lines = LINES + _random_lines(3000, seed=2)
    table = TemplateLearner(HDFS.parser, token_cache_size=0).learn_all(lines[:1000])
    assert TemplateLearner(HDFS.parser).learn_all(lines[:1000]) == table
    cached = TemplateMatcher(HDFS.parser, table, token_cache_size=16)
    uncached = TemplateMatcher(HDFS.parser, table, cache_size=0, token_cache_size=0)
    for line in lines + lines:  # the second pass hits the caches
        assert cached.parse(line) == uncached.parse(line)


def test_token_cache_is_bounded() -> None:
    cache = TokenCache(max_size=8)
    for i in range(100):
        cache.put(f"t{i}", "<*>")
        assert len(cache) <= 8
    assert cache.get("t99") == "<*>"
    pre = _Preprocessor(ParserConfig(), token_cache_size=32)
    for line in _random_lines(2000, seed=3):
        pre.masked_tokens(line)
    assert len(pre._token_cache) <= 32


def test_extra_masks_and_delimiters_take_the_whole_line_path() -> None:
    # A user mask may span whitespace, so token-by-token masking would miss it.
    config = ParserConfig(extra_masks={"pair": r"key [a-z]+"})
    matcher = TemplateMatcher(config, TemplateTable(templates=()))
    assert matcher.parse("set key abc now").template == "set <*> now"
    delimited = TemplateMatcher(ParserConfig(extra_delimiters=("=",)), TemplateTable(templates=()))
    assert delimited.parse("user=bob id=7").template == "user bob id <*>"
