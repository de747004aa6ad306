"""Raw record -> decoded record -> template -> source keys -> windows: the one path that
training, evaluation and the streamer all use."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from logprompt.parsing import ParserConfig, TemplateMatcher, TemplateTable
from logprompt.prompts import PromptConfig
from logprompt.records import LogRecord, RecordFormat, decode_record
from logprompt.sources import SourceKeyConfig, source_keys
from logprompt.windows import Event, Position, Window, WindowConfig, Windower


class PipelineConfig(BaseModel):
    """Everything that turns raw records into model inputs; it travels in the model bundle."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    record: RecordFormat = Field(default_factory=RecordFormat)
    parser: ParserConfig = Field(default_factory=ParserConfig)
    source: SourceKeyConfig = Field(default_factory=SourceKeyConfig)
    window: WindowConfig = Field(default_factory=WindowConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    max_message_chars: int = 1000  # of each raw line kept in a window (alerts quote them)


@dataclass(frozen=True, slots=True)
class Processed:
    """What one record became: its decoded form, its events, and the windows it closed."""

    record: LogRecord
    events: list[Event]
    windows: list[Window]


class Pipeline:
    """Feeds records one at a time through decoding, parsing, keying and windowing.

    Decoding errors propagate as :class:`logprompt.records.DecodeError` before any state
    changes, so a caller can dead-letter the record and carry on.
    """

    def __init__(self, config: PipelineConfig, table: TemplateTable) -> None:
        self.config = config
        self.matcher = TemplateMatcher(config.parser, table)
        self.windower = Windower(config.window)

    def process(self, value: bytes | None, position: Position, label: int | None = None) -> Processed:
        record = decode_record(value, self.config.record)
        return self.process_record(record, position, label)

    def process_record(
        self, record: LogRecord, position: Position, label: int | None = None
    ) -> Processed:
        parsed = self.matcher.parse(record.message)
        message = record.message[: self.config.max_message_chars]
        keys = source_keys(record, self.config.source)
        if len(keys) == 1:  # the common case, without the list building below
            event = Event(keys[0], parsed.template_id, parsed.template, record.timestamp,
                          position, message, label)
            return Processed(record, [event], self.windower.add(event))
        events = [
            Event(key, parsed.template_id, parsed.template, record.timestamp, position, message, label)
            for key in keys
        ]
        windows: list[Window] = []
        for event in events:
            windows.extend(self.windower.add(event))
        return Processed(record, events, windows)

    def flush(self) -> list[Window]:
        return self.windower.flush()
