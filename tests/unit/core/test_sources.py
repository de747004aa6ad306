from logprompt.records import LogRecord
from logprompt.sources import SourceKeyConfig, source_keys


def test_regex_keys_every_block_once_in_order() -> None:
    config = SourceKeyConfig(kind="regex", pattern=r"(blk_-?\d+)", default_key=None)
    record = LogRecord("ask 10.0.0.1 to delete blk_1 blk_-2 blk_1")
    assert source_keys(record, config) == ["blk_1", "blk_-2"]
    assert source_keys(LogRecord("no block here"), config) == []


def test_field_fixed_and_default_keys() -> None:
    assert source_keys(LogRecord("m", source="svc"), SourceKeyConfig(kind="field")) == ["svc"]
    assert source_keys(LogRecord("m"), SourceKeyConfig(kind="field")) == ["unkeyed"]
    assert source_keys(LogRecord("m"), SourceKeyConfig(kind="fixed", fixed_key="all")) == ["all"]


def test_fan_out_is_bounded() -> None:
    config = SourceKeyConfig(kind="regex", pattern=r"(k\d+)", max_keys_per_record=3)
    assert len(source_keys(LogRecord(" ".join(f"k{i}" for i in range(100))), config)) == 3
