"""Drain parsing: masking, learning on training data only, read-only matching, stable ids."""

from __future__ import annotations

import subprocess
import sys

from logprompt.parsing import (
    ParserConfig,
    TemplateLearner,
    TemplateMatcher,
    TemplateTable,
    template_id,
    template_words,
)

CONFIG = ParserConfig()
LINES = [
    "Receiving block blk_123 src: /10.0.0.1:5000 dest: /10.0.0.2:50010",
    "Receiving block blk_-456 src: /10.0.0.3:5001 dest: /10.0.0.4:50010",
    "PacketResponder 1 for block blk_123 terminating",
    "PacketResponder 2 for block blk_-456 terminating",
    "Deleting block blk_789 file /data/dfs/current/blk_789",
]


def test_learner_masks_parameters() -> None:
    table = TemplateLearner(CONFIG).learn_all(LINES)
    assert "Receiving block <*> src: <*> dest: <*>" in table.templates
    assert "PacketResponder <*> for block <*> terminating" in table.templates
    assert "Deleting block <*> file <*>" in table.templates
    assert sum(table.counts) == len(LINES)


def test_matcher_is_read_only_and_matches_known_templates() -> None:
    table = TemplateLearner(CONFIG).learn_all(LINES)
    matcher = TemplateMatcher(CONFIG, table)
    parsed = matcher.parse("PacketResponder 0 for block blk_999 terminating")
    assert parsed.matched and parsed.template == "PacketResponder <*> for block <*> terminating"
    unseen = matcher.parse("Disk failure on node 7 reported")
    assert not unseen.matched
    assert unseen.template == "Disk failure on node <*> reported"
    assert unseen.template_id == template_id(unseen.template)
    # Matching never learns: the unseen line is still unseen the second time.
    assert not matcher.parse("Disk failure on node 8 reported").matched
    assert matcher.table == table


def test_template_ids_are_stable_across_processes() -> None:
    code = "from logprompt.parsing import template_id; print(template_id('a <*> b'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == template_id("a <*> b") == template_id("a <*> b")


def test_table_round_trips_through_json() -> None:
    table = TemplateLearner(CONFIG).learn_all(LINES)
    restored = TemplateTable.model_validate_json(table.model_dump_json())
    a, b = TemplateMatcher(CONFIG, table), TemplateMatcher(CONFIG, restored)
    for line in LINES + ["something new 42"]:
        assert a.parse(line) == b.parse(line)


def test_preparsed_messages_are_kept_as_templates() -> None:
    config = ParserConfig(preparsed=True)
    table = TemplateLearner(config).learn_all(["a <*> b", "a <*> b", "c d"])
    assert table.templates == ("a <*> b", "c d") and table.counts == (2, 1)
    assert TemplateMatcher(config, table).parse("a <*>  b").template == "a <*> b"


def test_content_regex_drops_headers() -> None:
    config = ParserConfig(content_regex=r"^\S+ \S+ (?P<content>.*)$")
    table = TemplateLearner(config).learn_all(["081109 203615 job 1 done", "081109 203616 job 2 done"])
    assert table.templates == ("job <*> done",)


def test_template_words_split_camel_case_and_drop_parameters() -> None:
    assert template_words("BLOCK* NameSystem.allocateBlock: <*> done") == [
        "block", "name", "system", "allocate", "block", "done"]
