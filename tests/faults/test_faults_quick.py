"""The fault suite's quick layer: one repetition of three scenarios of ``bench/faults`` (consumer
SIGKILLed mid-stream, the broker SIGKILLed and restarted on its data dir, a corrupt bundle hot
reloaded) against the project's own broker, on a small input. The full suite, five repetitions
of every scenario, is ``python -m bench.faults`` (docs/reliability.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.faults.harness import Cluster
from bench.faults.scenarios import run_scenario
from bench.faults.workload import Workload, build_workload
from logprompt.local_kafka import LocalKafkaBroker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

LINES, REPLAY_S = 5_000, 6.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A broker of our own (not the session's): the broker scenario kills it."""
    broker = LocalKafkaBroker(data_dir=tmp_path_factory.mktemp("faults-kafka")).start()
    try:
        yield Cluster(broker.bootstrap_servers, broker)
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    return build_workload(tmp_path_factory.mktemp("faults-bundles"), LINES)


@pytest.mark.parametrize("scenario", ["kill9", "broker_restart", "reload_corrupt"])
def test_no_alert_lost_or_duplicated(cluster: Cluster, workload: Workload, tmp_path: Path,
                                     scenario: str) -> None:
    result = run_scenario(scenario, cluster, workload, tmp_path, rep=1, replay_s=REPLAY_S,
                          seed=7)
    summary = (f"{scenario}: lost {result.lost}, duplicated {result.duplicated}, extra "
               f"{result.extra}, {result.alerts}/{result.expected} alerts, problems "
               f"{result.problems}, notes {result.notes}\n{result.logs[-3000:]}")
    assert result.expected > 0, summary
    assert (result.lost, result.duplicated, result.extra) == (0, 0, 0), summary
    assert result.ok, summary
