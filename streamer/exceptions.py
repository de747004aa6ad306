"""The streamer's errors. Each says what a person needs to act on it."""

from __future__ import annotations


class StreamerError(RuntimeError):
    """Base class of the streamer's errors."""


class BundleLoadError(StreamerError):
    """The model bundle could not be loaded at start: the process stops (exit code 2)."""


class ScoringError(StreamerError):
    """The model failed on a batch, or scoring did not finish in time."""


class FatalKafkaError(StreamerError):
    """A Kafka error the process cannot recover from (fenced producer, fatal transaction
    error): the process exits and its supervisor restarts it; committed state is consistent."""
