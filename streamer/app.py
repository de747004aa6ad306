"""The streamer: a consumer-group member that cuts windows, scores them and publishes alerts,
exactly once.

One loop, one thread for Kafka (the scoring worker is the only other busy thread):

    consume a batch -> per record: decode/parse/key/window (the core Pipeline of the record's
    partition) -> closed windows to the scoring worker; undecodable records to the dead-letter
    topic -> scored windows above the threshold to the alerts topic -> every
    ``commit_interval_ms``: commit one transaction (see :meth:`StreamerApp.commit`).

Everything a transaction carries (alerts, dead letters, input offsets with their checkpoint)
becomes visible together or not at all; see :mod:`streamer.partitions` for how open windows
are rebuilt after a crash or a rebalance without emitting anything twice.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import structlog
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from logprompt.alerts import Alert
from logprompt.parsing import TemplateMatcher
from logprompt.records import DecodeError
from logprompt.windows import Window
from streamer import kafka_clients
from streamer.bundles import fingerprint, load_scorer
from streamer.dead_letter import Header, dead_letter
from streamer.exceptions import BundleLoadError, FatalKafkaError, ScoringError
from streamer.health import HealthServer
from streamer.metrics import StreamerMetrics
from streamer.partitions import Checkpoint, PartitionState, new_pipeline
from streamer.scoring import ScoredWindow, Scorer, ScoringWorker
from streamer.settings import StreamerSettings
from streamer.window_state import KeyState, open_starts, read_starts, state_partition

log = structlog.get_logger("streamer")

TP = tuple[str, int]


@dataclass
class RunSummary:
    records: int = 0
    dead_letters: int = 0
    windows: int = 0
    suppressed: int = 0
    alerts: int = 0
    transactions: int = 0
    aborts: int = 0
    rebalances: int = 0
    cache_hit_rate: float = 0.0
    stop_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class StreamerApp:
    """Build with settings (no network call); :meth:`run` does the work until stopped."""

    def __init__(self, settings: StreamerSettings, scorer: Scorer | None = None,
                 metrics: StreamerMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or StreamerMetrics()
        self.summary = RunSummary()
        self._scorer = scorer
        self._stop = threading.Event()
        self._stop_reason = ""
        self._states: dict[TP, PartitionState] = {}
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._worker: ScoringWorker | None = None
        self._matcher: TemplateMatcher | None = None
        self._known_ids: frozenset[str] = frozenset()
        self._in_txn = False
        self._closing = False
        self._paused = False
        self._loop_beat = time.monotonic()
        self._bundle_fp: str | None = None
        self.http_port: int | None = None
        self._state_topic = settings.state_topic or f"{settings.group_id}.window-starts"
        self._state_parts = 1

    # -- public ---------------------------------------------------------------------------------
    def request_stop(self, reason: str = "requested") -> None:
        self._stop_reason = self._stop_reason or reason
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish the open transaction (within shutdown_timeout_s), then exit."""
        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def healthy(self) -> bool:
        return time.monotonic() - self._loop_beat < max(30.0, self.settings.shutdown_timeout_s)

    def ready(self) -> bool:
        return self._scorer is not None and bool(self._states) and not self._closing

    def run(self, max_seconds: float | None = None, max_records: int | None = None
            ) -> RunSummary:
        """Consume until stopped, ``max_seconds`` pass, or ``max_records`` are consumed; then
        commit what was processed and leave the group. Raises BundleLoadError when the bundle
        cannot be loaded, FatalKafkaError when the producer is fenced or fails fatally."""
        s = self.settings
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            scorer = self._scorer
            if scorer is None:
                self._bundle_fp = fingerprint(s.bundle_path)
                scorer = load_scorer(s)
            self._use_scorer(scorer)
            log.info("bundle loaded", path=str(s.bundle_path), model_version=scorer.model_version,
                     providers=list(scorer.providers), threshold=scorer.threshold,
                     pipeline=scorer.pipeline_config.name)
            if s.http_port >= 0:
                server = HealthServer(s.http_host, s.http_port, self.metrics.registry,
                                      self.healthy, self.ready)
                server.start()
                self.http_port = server.port
                stack.callback(server.stop)
            self._worker = ScoringWorker(scorer, s.max_batch_size, s.max_batch_wait_ms,
                                         s.score_cache_size, self.metrics)
            self._worker.start()
            stack.callback(self._worker.stop)
            producer_conf = kafka_clients.producer_config(s)
            consumer_conf = kafka_clients.consumer_config(s)
            log.info("kafka clients", producer=kafka_clients.redacted(producer_conf),
                     consumer=kafka_clients.redacted(consumer_conf))
            self._state_parts = ensure_state_topic(s, self._state_topic)
            self._producer = Producer(producer_conf)
            self._producer.init_transactions(s.transaction_timeout_ms / 1000.0)
            self._consumer = Consumer(consumer_conf)
            stack.callback(self._close_consumer)
            self._subscribe()
            try:
                self._loop(started, max_seconds, max_records)
            finally:
                self._shutdown()
        self.summary.stop_reason = self._stop_reason
        self.summary.cache_hit_rate = self._worker.cache.hit_rate if self._worker else 0.0
        return self.summary

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self, started: float, max_seconds: float | None, max_records: int | None) -> None:
        s = self.settings
        assert self._consumer is not None and self._worker is not None
        commit_every = s.commit_interval_ms / 1000.0
        last_commit = time.monotonic()
        next_reload_check = time.monotonic() + s.bundle_reload_interval_s
        next_lag = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            self._loop_beat = now
            if max_seconds is not None and now - started >= max_seconds:
                self.request_stop("max_seconds")
                break
            if max_records is not None and self.summary.records >= max_records:
                self.request_stop("max_records")
                break
            batch = max_records - self.summary.records if max_records else s.max_poll_records
            messages = self._consumer.consume(min(batch, s.max_poll_records), 0.05)
            self._process(messages)
            self._backpressure()
            if s.idle_flush_s is not None:
                self._idle_flush(s.idle_flush_s)
            assert self._producer is not None
            self._producer.poll(0)
            now = time.monotonic()
            if now - last_commit >= commit_every:
                self.commit()
                last_commit = time.monotonic()
            if now >= next_reload_check:
                self._maybe_reload()
                next_reload_check = time.monotonic() + s.bundle_reload_interval_s
            if now >= next_lag:
                self._update_lag()
                self._update_state_gauges()
                next_lag = now + s.lag_refresh_s

    def _process(self, messages: list[Message]) -> None:
        """Handle a consumed batch and publish what the worker has scored. A produce here can
        fail as a commit can (the transaction turned abortable, e.g. while the broker
        restarted: librdkafka then refuses produce() with _STATE): recover the same way, abort
        and rewind (exit 3 if fatal), instead of letting the exception end the process."""
        assert self._worker is not None
        try:
            self._handle_batch(messages)
            self._publish(self._worker.collect())
        except KafkaException as exc:
            self._on_txn_error(exc)

    def _handle_batch(self, messages: list[Message]) -> None:
        """Process a consumed batch in order. Per record only what must be per record; metrics
        and the hand-over of closed windows to the scoring worker happen once per batch."""
        states = self._states
        counts: dict[str, int] = {}
        closed: list[Window] = []
        processed = 0
        try:
            for message in messages:
                if message.error() is not None:
                    self._consumer_error(message)
                    continue
                topic, partition, offset = message.topic(), message.partition(), message.offset()
                assert topic is not None and partition is not None and offset is not None
                counts[topic] = counts.get(topic, 0) + 1
                state = states.get((topic, partition))
                if state is None or not state.accepts(offset):
                    continue  # revoked, or fetched before a rewind: not ours to process
                processed += 1
                outcome = state.process(message.value(), offset)
                if outcome.replay:
                    self.metrics.replayed_records.inc()
                    if outcome.suppressed:
                        self.metrics.windows_suppressed.inc(outcome.suppressed)
                        self.summary.suppressed += outcome.suppressed
                if outcome.error is not None:
                    self._dead_letter(message, outcome.error)
                if outcome.windows:
                    closed.extend(outcome.windows)
        finally:
            # Also when a record raised: what was processed before it is handed over, so a
            # commit on the way out never checkpoints past windows that were not scored.
            self.summary.records += processed
            # One metric update per topic and batch, not per record (labels() costs microseconds).
            for topic, n in counts.items():
                self.metrics.records_in.labels(topic).inc(n)
            if closed:
                self._windows_closed(closed)

    def _consumer_error(self, message: Message) -> None:
        error = message.error()
        assert error is not None
        if error.code() == KafkaError._PARTITION_EOF:
            return
        log.error("consumer error", topic=message.topic(), partition=message.partition(),
                  offset=message.offset(), error=str(error))
        if error.fatal():
            raise FatalKafkaError(f"fatal consumer error: {error}")

    def _windows_closed(self, windows: list[Window]) -> None:
        reasons: dict[str, int] = {}
        for w in windows:
            reasons[w.close_reason] = reasons.get(w.close_reason, 0) + 1
        for reason, n in reasons.items():
            self.metrics.windows_closed.labels(reason).inc(n)
        self.summary.windows += len(windows)
        assert self._worker is not None
        self._worker.submit(windows)

    def _dead_letter(self, message: Message, exc: DecodeError) -> None:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None
        ts_type, ts = message.timestamp()
        log.warning("undecodable record to the dead-letter topic", topic=topic,
                    partition=partition, offset=offset, reason=exc.reason, detail=exc.detail[:200])
        record = dead_letter(exc, message.key(), message.value(), topic, partition, offset,
                             ts if ts_type else None, self.settings.dead_letter_max_value_bytes)
        self._produce(self.settings.dead_letter_topic, record.key, record.value, record.headers)
        self.metrics.decode_errors.labels(exc.reason).inc()
        self.summary.dead_letters += 1

    def _publish(self, scored: list[ScoredWindow]) -> None:
        scorer = self._scorer
        assert scorer is not None
        for item in scored:
            if item.score < scorer.threshold:
                continue
            alert = Alert.from_window(item.window, item.score, scorer.threshold,
                                      scorer.model_version, self._known_ids,
                                      self.settings.max_raw_lines_per_alert)
            headers: list[Header] = [("logprompt.schema_version", str(alert.schema_version).encode()),
                       ("logprompt.model_version", alert.model_version.encode())]
            self._produce(self.settings.alerts_topic, alert.kafka_key(), alert.to_json(), headers)
            self.metrics.alerts_out.inc()
            self.summary.alerts += 1

    def _produce(self, topic: str, key: bytes | None, value: bytes | None,
                 headers: list[Header], partition: int = -1) -> None:
        assert self._producer is not None
        self._begin()
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers,
                                       partition=partition, on_delivery=self._on_delivery)
                return
            except BufferError:
                self._producer.poll(0.05)  # local queue full: let deliveries drain

    @staticmethod
    def _on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            # The transaction will fail to commit and be aborted; this says why.
            log.error("produce failed", topic=msg.topic(), partition=msg.partition(),
                      error=str(err))

    def _begin(self) -> None:
        if not self._in_txn:
            assert self._producer is not None
            self._producer.begin_transaction()
            self._in_txn = True

    # -- the transaction ------------------------------------------------------------------------
    def commit(self, timeout_s: float | None = None) -> bool:
        """Commit everything processed so far in one transaction. Returns False when it had to
        be aborted (then every partition is rewound to its committed offset and rebuilt).

        Commit order, and why:
          1. Drain the scoring worker: every window closed by a processed record has a score.
          2. Produce the alerts of those windows (dead letters were produced as they came)
             into the open transaction.
          3. Checkpoint each partition: offset = oldest record still needed by an open window
             (else the next offset), metadata = the next offset (what was processed) and the
             session watermark; produce each open key's changed start offset (or a tombstone)
             to the compacted state topic (streamer.window_state). A partition still replaying
             keeps its previous checkpoint.
          4. send_offsets_to_transaction with the consumer's group metadata (KIP-447: a zombie
             of an older generation is fenced by the group coordinator).
          5. commit_transaction: alerts, dead letters and offsets become visible together.
        A crash before 5 aborts all of it (on restart: the transaction coordinator aborts it
        when the same transactional.id calls init_transactions, or at its timeout) and the
        records are processed again from the last checkpoint.
        """
        assert self._producer is not None and self._consumer is not None
        assert self._worker is not None
        timeout_s = timeout_s or self.settings.shutdown_timeout_s
        started = time.monotonic()
        try:
            self._publish(self._worker.drain(timeout_s))  # 1, 2
            offsets: list[TopicPartition] = []  # 3
            starts: dict[TP, dict[str, KeyState]] = {}
            for tp_key, st in self._states.items():
                if not st.dirty or st.replaying:
                    continue
                current = open_starts(st.windower)
                cp = st.checkpoint(current)
                if cp is None:
                    continue
                offsets.append(cp)
                starts[tp_key], changes = st.state_changes(current)
                for key, value in changes:
                    self._produce(self._state_topic, key, value, [],
                                  partition=state_partition(st.partition, self._state_parts))
            if not offsets and not self._in_txn:
                return True
            for tp in offsets:
                st = self._states[(tp.topic, tp.partition)]
                if st.committed_offset is not None and tp.offset < st.committed_offset:
                    log.error("checkpoint offset went backwards", topic=tp.topic,
                              partition=tp.partition, offset=tp.offset,
                              committed=st.committed_offset)
            self._begin()
            if offsets:
                self._producer.send_offsets_to_transaction(  # 4
                    offsets, self._consumer.consumer_group_metadata(), timeout_s)
            self._commit_transaction(timeout_s)  # 5
        except KafkaException as exc:
            return self._on_txn_error(exc)
        except ScoringError as exc:
            log.error("scoring failed; aborting the transaction", error=str(exc))
            self._abort_and_rewind()
            raise
        for tp in offsets:
            self._states[(tp.topic, tp.partition)].committed(
                tp.offset, starts[(tp.topic, tp.partition)])
        self.metrics.transactions.labels("committed").inc()
        self.metrics.commit_seconds.observe(time.monotonic() - started)
        self.summary.transactions += 1
        return True

    def _commit_transaction(self, timeout_s: float) -> None:
        assert self._producer is not None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._producer.commit_transaction(max(0.1, deadline - time.monotonic()))
                self._in_txn = False
                return
            except KafkaException as exc:
                err = exc.args[0]
                if err.retriable() and time.monotonic() < deadline:
                    continue
                raise

    def _on_txn_error(self, exc: KafkaException) -> bool:
        err: KafkaError = exc.args[0]
        # produce() reports the producer's fatal state as code _FATAL with fatal() False.
        if err.fatal() or err.code() == KafkaError._FATAL:
            log.error("fatal transaction error; exiting so a restart can recover",
                      error=str(err))
            self.metrics.transactions.labels("fatal").inc()
            raise FatalKafkaError(f"fatal transaction error: {err}") from exc
        log.warning("transaction aborted; rewinding to the committed offsets", error=str(err),
                    requires_abort=err.txn_requires_abort())
        self._abort_and_rewind()
        return False

    def _abort_and_rewind(self) -> None:
        assert self._producer is not None and self._worker is not None
        self._worker.discard()
        if self._in_txn:
            try:
                self._producer.abort_transaction(self.settings.shutdown_timeout_s)
            except KafkaException as exc:
                if exc.args[0].fatal():
                    raise FatalKafkaError(f"cannot abort: {exc.args[0]}") from exc
                raise
            self._in_txn = False
        self.metrics.transactions.labels("aborted").inc()
        self.summary.aborts += 1
        self._rewind(list(self._states))

    def _rewind(self, tps: list[TP]) -> None:
        """Drop the window state of these partitions and resume them at their committed
        offsets: the records since are replayed (their committed outcomes suppressed)."""
        assert self._consumer is not None
        if not tps:
            return
        # A partition with nothing committed yet restarts at the first record it processed (where
        # auto.offset.reset put it), not at the consumer's position: that would skip records.
        firsts = {tp: self._states[tp].first_offset for tp in tps if tp in self._states}
        fresh = self._fresh_states([TopicPartition(t, p) for t, p in tps])
        for tp in fresh:
            offset = tp.offset if tp.offset >= 0 else firsts.get((tp.topic, tp.partition))
            if tp.offset < 0:  # kept for the next rewind, should it come before any record
                self._states[(tp.topic, tp.partition)].first_offset = offset
            if offset is not None:
                with contextlib.suppress(KafkaException):
                    self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        log.info("partitions rewound", partitions=[f"{t}[{p}]" for t, p in tps])

    def _fresh_states(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        """Read the committed offsets and checkpoints of these partitions and start fresh
        window state for each; returns the committed offsets."""
        assert self._consumer is not None and self._scorer is not None
        committed = self._consumer.committed(tps, timeout=self.settings.shutdown_timeout_s)
        with_checkpoint = [(tp.topic, tp.partition) for tp in committed
                           if Checkpoint.decode(tp.metadata) is not None]
        saved = read_starts(kafka_clients.consumer_config(self.settings), self._state_topic,
                            with_checkpoint, self.settings.state_restore_timeout_s
                            ) if with_checkpoint else {}
        config, table = self._scorer.pipeline_config, self._scorer.table
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else None
            checkpoint = Checkpoint.decode(tp.metadata)
            replay_until = max(checkpoint.next_offset if checkpoint else 0, offset or 0)
            key_starts = saved.get((tp.topic, tp.partition), {}) if checkpoint else {}
            self._states[(tp.topic, tp.partition)] = PartitionState(
                tp.topic, tp.partition, new_pipeline(config, table, self._matcher),
                committed_offset=offset, replay_until=replay_until,
                committed_starts=key_starts,
                watermark=checkpoint.watermark if checkpoint else None)
            log.info("partition state", topic=tp.topic, partition=tp.partition,
                     committed=offset, replay_until=replay_until, open_keys=len(key_starts))
        return list(committed)

    # -- rebalancing ----------------------------------------------------------------------------
    def _subscribe(self) -> None:
        assert self._consumer is not None
        s = self.settings
        topics = [s.input_topic_regex] if s.input_topic_regex else s.input_topics
        if s.input_topic_regex and not s.input_topic_regex.startswith("^"):
            topics = ["^" + s.input_topic_regex]  # librdkafka treats '^...' as a regex
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_lost)
        log.info("subscribed", topics=topics, group_id=s.group_id)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels("assign").inc()
        self.summary.rebalances += 1
        if not partitions:
            consumer.incremental_assign([])
            return
        committed = self._fresh_states(partitions)
        # Start exactly at the committed (trailing) offset: the open windows are rebuilt from it.
        consumer.incremental_assign(committed)
        if self._paused:
            consumer.pause(partitions)
        self.metrics.assigned_partitions.set(len(self._states))
        log.info("partitions assigned", partitions=[f"{p.topic}[{p.partition}]@{p.offset}"
                                                    for p in committed])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels("revoke").inc()
        self.summary.rebalances += 1
        # Commit what we processed while we still own the partitions; the new owner rebuilds
        # the open windows from the (trailing) committed offsets.
        if not self._closing and self._producer is not None:
            try:
                self.commit()
            except (ScoringError, BundleLoadError) as exc:
                log.error("commit on revoke failed", error=str(exc))
        for tp in partitions:
            self._states.pop((tp.topic, tp.partition), None)
        self.metrics.assigned_partitions.set(len(self._states))
        log.info("partitions revoked", partitions=[f"{p.topic}[{p.partition}]"
                                                   for p in partitions])

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalances.labels("lost").inc()
        self.summary.rebalances += 1
        log.warning("partitions lost", partitions=[f"{p.topic}[{p.partition}]"
                                                   for p in partitions])
        # Their offsets cannot be committed any more: abort everything in flight and rebuild
        # the partitions we still own from their committed offsets.
        for tp in partitions:
            self._states.pop((tp.topic, tp.partition), None)
        if self._producer is not None:
            self._abort_and_rewind()
        self.metrics.assigned_partitions.set(len(self._states))

    # -- backpressure, idle flush, lag ----------------------------------------------------------
    def _backpressure(self) -> None:
        assert self._worker is not None and self._consumer is not None
        inflight = self._worker.inflight
        self.metrics.inflight_windows.set(inflight)
        limit = self.settings.max_inflight_windows
        if not self._paused and inflight > limit:
            self._consumer.pause(self._consumer.assignment())
            self._paused = True
            self.metrics.paused.set(1)
            log.info("backpressure: partitions paused", inflight=inflight)
        elif self._paused and inflight <= limit // 2:
            self._consumer.resume(self._consumer.assignment())
            self._paused = False
            self.metrics.paused.set(0)
            log.info("backpressure: partitions resumed", inflight=inflight)

    def _idle_flush(self, idle_s: float) -> None:
        now = time.monotonic()
        for state in self._states.values():
            windower = state.pipeline.windower
            # Never during a replay: the committed run did not flush there (a flush leaves no
            # open window, so the checkpoint after it is never trailing).
            if (windower.open_keys and not state.replaying and now - state.last_input >= idle_s
                    and self._caught_up(state)):
                windows = state.flush()
                if windows:
                    self._windows_closed(windows)

    def _caught_up(self, state: PartitionState) -> bool:
        """Whether this partition has no record left to fetch. "No record for idle_flush_s"
        alone is not enough: a partition can be starved while others fill the fetch queue,
        and flushing it then would cut windows an uninterrupted run would not."""
        assert self._consumer is not None
        tp = TopicPartition(state.topic, state.partition)
        try:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            (position,) = self._consumer.position([tp])
        except KafkaException:
            return False
        # position skips transaction markers; with read_committed, high is the last stable offset.
        return high >= 0 and position.offset >= high

    def _update_state_gauges(self) -> None:
        """What the process holds in memory, refreshed with the lag (not per record): a soak
        watches these stay bounded."""
        assert self._worker is not None
        self.metrics.open_windows.set(
            sum(state.pipeline.windower.open_keys for state in self._states.values()))
        self.metrics.open_window_events.set(
            sum(state.pipeline.windower.open_events for state in self._states.values()))
        self.metrics.score_cache_entries.set(len(self._worker.cache))

    def _update_lag(self) -> None:
        assert self._consumer is not None
        for (topic, partition), state in list(self._states.items()):
            try:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True)
            except KafkaException:
                continue
            if high >= 0 and state.next_offset is not None:
                self.metrics.consumer_lag.labels(topic, str(partition)).set(
                    max(0, high - state.next_offset))

    # -- hot reload -----------------------------------------------------------------------------
    def _maybe_reload(self) -> None:
        current = fingerprint(self.settings.bundle_path)
        if current is None or current == self._bundle_fp:
            return
        self._bundle_fp = current  # a refused bundle is not retried until it changes again
        try:
            scorer = load_scorer(self.settings)
        except BundleLoadError as exc:
            self.metrics.bundle_reloads.labels("refused").inc()
            log.error("new bundle refused; the old one keeps serving", error=str(exc))
            return
        old = self._scorer
        assert old is not None and self._worker is not None
        # Finish the old model's transaction before switching models.
        if not self.commit():
            log.warning("commit before reload aborted; switching anyway")
        self._worker.swap_scorer(scorer)
        self._use_scorer(scorer)
        same_pipeline = (scorer.pipeline_config == old.pipeline_config
                         and scorer.table == old.table)
        if not same_pipeline:
            # Open windows were cut with the old templates: rebuild them with the new ones.
            self._rewind(list(self._states))
        self.metrics.bundle_reloads.labels("loaded").inc()
        log.info("bundle reloaded", model_version=scorer.model_version,
                 providers=list(scorer.providers), rebuilt_windows=not same_pipeline)

    def _use_scorer(self, scorer: Scorer) -> None:
        self._scorer = scorer
        self._matcher = TemplateMatcher(scorer.pipeline_config.parser, scorer.table)
        self._known_ids = frozenset(scorer.table.ids())
        self.metrics.set_model(scorer.model_version, list(scorer.providers))

    # -- shutdown -------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        """Commit the open transaction within shutdown_timeout_s, else abort it (the next owner
        replays from the last checkpoint); then leave the group."""
        if self._producer is None or self._worker is None:
            return
        try:
            if not self._stop_reason:
                self._stop_reason = "error"
            self.commit(timeout_s=self.settings.shutdown_timeout_s)
        except (ScoringError, FatalKafkaError) as exc:
            log.error("final commit failed", error=str(exc))
            if self._in_txn:
                with contextlib.suppress(KafkaException):
                    self._producer.abort_transaction(5)
        finally:
            self._closing = True
            log.info("stopped", reason=self._stop_reason, records=self.summary.records,
                     windows=self.summary.windows, alerts=self.summary.alerts,
                     dead_letters=self.summary.dead_letters,
                     cache_hit_rate=round(self._worker.cache.hit_rate, 4))

    def _close_consumer(self) -> None:
        self._closing = True
        if self._consumer is not None:
            with contextlib.suppress(KafkaException, RuntimeError):
                self._consumer.close()
            self._consumer = None
        if self._producer is not None:
            # Best effort: a producer in a fatal state raises here, and that must not replace
            # the error that ended the loop (a FatalKafkaError exits 3, a restart recovers).
            with contextlib.suppress(KafkaException):
                self._producer.flush(5)


def ensure_state_topic(settings: StreamerSettings, name: str) -> int:
    """The state topic's partition count; creates it (compacted) when allowed and missing."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin_config: dict[str, Any] = dict(settings.kafka.librdkafka_config())
    admin = AdminClient(admin_config)
    timeout = settings.state_restore_timeout_s
    topic = admin.list_topics(name, timeout=timeout).topics.get(name)
    if topic is None or topic.error is not None:
        if not settings.create_state_topic:
            raise FatalKafkaError(f"state topic {name!r} does not exist "
                                  "(create it compacted, or set create_state_topic)")
        futures = admin.create_topics([NewTopic(
            name, num_partitions=settings.state_topic_partitions, replication_factor=-1,
            config={"cleanup.policy": "compact"})])
        try:
            futures[name].result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise FatalKafkaError(f"cannot create state topic {name!r}: {exc}") from exc
        log.info("state topic created", topic=name, partitions=settings.state_topic_partitions)
    # A topic just created may show no partitions in metadata for a moment.
    deadline = time.monotonic() + timeout
    while topic is None or topic.error is not None or not topic.partitions:
        if time.monotonic() > deadline:
            raise FatalKafkaError(f"state topic {name!r} has no partitions in metadata")
        time.sleep(0.2)
        topic = admin.list_topics(name, timeout=timeout).topics.get(name)
    return len(topic.partitions)
