"""signalsmith on a real Redis Cluster (three masters), through the CLI as a user runs it: with
every name under one hash tag, posts are decided, published and stored exactly once, a worker
killed with SIGKILL is taken over cleanly, and start-up refuses names the commit cannot join.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster as SyncRedisCluster
from redis.crc import key_slot

from signalsmith.lifecycle import open_redis
from signalsmith.observe.heartbeat import live_workers
from signalsmith.settings import load_settings
from tests.conftest import (
    CLUSTER_START_ERRORS,
    cluster_nodes,
    cluster_unavailable,
    create_cluster,
    free_port,
    private_redis_server,
)
from tests.contracts import v1
from tests.integration.test_faults import _cli, _start, _write_posts
from tests.integration.test_startup import _one_line, _run

pytestmark = [pytest.mark.slow]
TICKERS = {"NVDA", "AMD", "TSLA", "AAPL", "MSFT"}  # what _write_posts mentions, one per post


@pytest.fixture
def cluster_env(redis_cluster: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings (as environment variables) for the cluster: every name of the test under one
    hash tag of its own; the test's keys are deleted afterwards."""
    tag = f"t{uuid.uuid4().hex[:10]}"
    yield {
        "REDIS_CLUSTER": "true",
        "REDIS_ADDR": redis_cluster,
        "STREAM": f"{{{tag}}}:in",
        "GROUP": "cluster-group",
        "CONSUMER": "first",
        "SIGNAL_STREAM": f"{{{tag}}}:signals",
        "DECISION_STREAM": f"{{{tag}}}:decisions:log",
        "DECISION_HASH_PREFIX": f"{{{tag}}}:decisions",
        "MARKET_STREAM": f"{{{tag}}}:market",
        "INSIGHT_STREAM": f"{{{tag}}}:insights",
        "STRATEGY_STREAM": f"{{{tag}}}:strategy",
        "ENHANCED_STREAM": f"{{{tag}}}:enhanced",
        "HEARTBEAT_PREFIX": f"{{{tag}}}:heartbeat",
        "STATE_DIR": str(tmp_path / "state"),
        "HTTP_PORT": "0",
        "BLOCK_MS": "100",
        "PUBLISH": "all",
    }
    with _cluster(redis_cluster) as client:
        keys = list(client.scan_iter(match=f"{{{tag}}}*", count=10_000))
        if keys:
            client.delete(*keys)  # one tag, one slot: a multi-key DELETE is fine


class _cluster:  # noqa: N801 - used as a context manager, reads like one
    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._client = SyncRedisCluster(host=host, port=int(port))

    def __enter__(self) -> SyncRedisCluster:
        return self._client

    def __exit__(self, *_exc: object) -> None:
        self._client.close()


def _posts(client: SyncRedisCluster, env: dict[str, str]) -> list[dict[str, object]]:
    entries = client.xrange(env["SIGNAL_STREAM"])
    return [p for _id, f in entries if v1.is_post(p := json.loads(f[b"data"]))]


def _assert_each_decided_once(client: SyncRedisCluster, env: dict[str, str]) -> list[str]:
    """Every valid input entry has exactly one decision per ticker (one correlation id each),
    and nothing is pending in the pipeline's group or the store's; the inputs' ids."""
    published = _posts(client, env)
    ids = Counter(str(p["correlation_id"]) for p in published)
    assert ids, "nothing was published"
    assert max(ids.values()) == 1, "a decision was published twice"
    pairs = Counter(
        (p["decision"]["source"]["entry_id"], p["decision"]["target"]["ticker"])  # type: ignore[index]
        for p in published
    )
    assert max(pairs.values()) == 1
    inputs = [entry_id.decode() for entry_id, _f in client.xrange(env["STREAM"])]
    dead = {f[b"entry_id"].decode() for _id, f in client.xrange(f"{env['STREAM']}:dlq")}
    assert {entry_id for entry_id, _ticker in pairs} == set(inputs) - dead, "a post was lost"
    assert client.xpending(env["STREAM"], env["GROUP"])["pending"] == 0
    assert client.xpending(env["DECISION_STREAM"], "signalsmith-store")["pending"] == 0
    return inputs


def _stored(env: dict[str, str]) -> set[str]:
    """The correlation ids in the SQL store (the SQLite file in STATE_DIR)."""
    database = Path(env["STATE_DIR"]) / "signalsmith.db"
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT correlation_id FROM decisions").fetchall()
    return {row[0] for row in rows}


def _logged(client: SyncRedisCluster, env: dict[str, str]) -> set[str]:
    """The correlation ids on the decision log (entries that are no JSON left out)."""
    ids = set()
    for _id, fields in client.xrange(env["DECISION_STREAM"]):
        with contextlib.suppress(ValueError):
            ids.add(json.loads(fields[b"data"])["correlation_id"])
    return ids


@pytest.mark.cluster
def test_replay_and_run_decide_every_post_once_on_the_cluster(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    """2,000 posts and a few malformed lines replayed and run on the cluster: each post is
    decided and published once, the malformed ones dead-lettered, every decision stored, nothing
    pending. The store dead-letters a hostile entry on the decision log in the transaction that
    acknowledges it; ``dlq list`` and ``dlq replay`` (a transaction too) work there as well."""
    posts = tmp_path / "posts.jsonl"
    _write_posts(posts, 2_000)
    with posts.open("a") as handle:
        handle.writelines('{"data": "{broken json"}\n' for _ in range(3))
    replayed = _cli(["replay", str(posts)], cluster_env)
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    with _cluster(cluster_env["REDIS_ADDR"]) as client:
        client.xadd(cluster_env["DECISION_STREAM"], {"data": "not an envelope"})
    run = _cli(["run", "--until-idle", "1"], cluster_env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "(cluster)" in run.stderr  # where it connected, as logged
    with _cluster(cluster_env["REDIS_ADDR"]) as client:
        inputs = _assert_each_decided_once(client, cluster_env)
        assert len(inputs) == 2_003
        assert len(_posts(client, cluster_env)) == 2_000
        assert _stored(cluster_env) == _logged(client, cluster_env)
        store_dlq = client.xrange(f"{cluster_env['DECISION_STREAM']}:store:dlq")
        assert [fields[b"reason"] for _id, fields in store_dlq] == [b"bad_envelope"]
        listed = _cli(["dlq", "list"], cluster_env)
        assert [json.loads(line)["reason"] for line in listed.stdout.splitlines()] == [
            "bad_json"
        ] * 3
        again = _cli(["dlq", "replay"], cluster_env)
        assert again.returncode == 0, again.stderr[-2000:]
        assert client.xlen(f"{cluster_env['STREAM']}:dlq") == 0
        assert client.xlen(cluster_env["STREAM"]) == 2_006


@pytest.mark.cluster
def test_kill_9_mid_run_then_a_new_worker_finishes_exactly_once(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    """5,000 posts; the worker is SIGKILLed once signals are flowing and a new one (another
    consumer, as a restarted container) takes over its pending entries after CLAIM_IDLE_MS:
    every (entry, ticker) ends with exactly one correlation id on the signal stream, one row in
    the store, and nothing pending."""
    posts = tmp_path / "posts.jsonl"
    _write_posts(posts, 5_000)
    env = {**cluster_env, "CLAIM_IDLE_MS": "500", "READ_COUNT": "50"}
    assert _cli(["replay", str(posts)], env).returncode == 0
    with _cluster(env["REDIS_ADDR"]) as client:
        for attempt in range(3):  # a kill between a commit and the next read leaves none
            _kill_mid_run(client, env, f"doomed-{attempt}")
            if client.xpending(env["STREAM"], env["GROUP"])["pending"] > 0:
                break
        else:
            pytest.fail("no kill left entries pending")
        assert client.xlen(env["SIGNAL_STREAM"]) < 5_000, "the kill did not land mid-run"
        final = _cli(["run", "--until-idle", "1.5"], {**env, "CONSUMER": "survivor"})
        assert final.returncode == 0, final.stderr[-2000:]
        _assert_each_decided_once(client, env)
        decided = _posts(client, env)
        assert len(decided) == 5_000
        assert {p["decision"]["target"]["ticker"] for p in decided} == TICKERS  # type: ignore[index]
        assert _stored(env) == _logged(client, env)


def _kill_mid_run(client: SyncRedisCluster, env: dict[str, str], consumer: str) -> None:
    """Start a worker and SIGKILL it once it has published 300 more signals and holds
    entries it has not acknowledged."""
    published = client.xlen(env["SIGNAL_STREAM"])
    worker = _start(env, consumer)
    deadline = time.monotonic() + 60
    while (
        client.xlen(env["SIGNAL_STREAM"]) < published + 300
        or client.xpending(env["STREAM"], env["GROUP"])["pending"] == 0
    ):
        assert worker.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, "the worker never got going"
        time.sleep(0.005)
    worker.kill()
    worker.wait()


@pytest.mark.cluster
async def test_check_finds_heartbeats_on_every_node(redis_cluster: str) -> None:
    """Heartbeat keys of one group in different slots (a prefix without a tag) are all found:
    the scan covers every node and the reads need no common slot."""
    prefix = f"hb-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        redis_cluster=True,
        redis_addr=redis_cluster,
        stream="{hb}:in",
        signal_stream="{hb}:signals",
        decision_stream="{hb}:log",
        decision_hash_prefix="{hb}:decisions",
        market_stream="{hb}:market",
        insight_stream="{hb}:insights",
        strategy_stream="{hb}:strategy",
        enhanced_stream="{hb}:enhanced",
    )
    consumers = [f"worker-{n}" for n in range(12)]
    async with open_redis(settings) as handle:
        for consumer in consumers:
            await handle.client.set(f"{prefix}:{consumer}", json.dumps({"consumer": consumer}))
        try:
            found = await live_workers(handle.client, f"{prefix}:*")
        finally:
            for consumer in consumers:
                await handle.client.delete(f"{prefix}:{consumer}")
    assert sorted(str(worker["consumer"]) for worker in found) == sorted(consumers)
    assert len({key_slot(f"{prefix}:{c}".encode()) for c in consumers}) > 1


def test_names_without_a_common_tag_stop_run_with_one_line(tmp_path: Path) -> None:
    """REDIS_CLUSTER=true with seed 000's names: exit 2 and one line naming the settings that
    need the common tag, with an example, before any connection is tried."""
    result = _run(
        {
            "REDIS_CLUSTER": "true",
            "REDIS_ADDR": f"127.0.0.1:{free_port()}",
            "STREAM": "reddit-events",
            "SIGNAL_STREAM": "trade-signals",
            "DECISION_STREAM": "trade-decisions",
            "DECISION_HASH_PREFIX": "signalsmith:decisions",
            "MARKET_ENABLED": "false",
            "STRATEGY_ENABLED": "false",
            "STATE_DIR": str(tmp_path / "state"),
        }
    )
    line = _one_line(result, "STREAM, SIGNAL_STREAM, DECISION_STREAM, DECISION_HASH_PREFIX")
    assert "STREAM={signalsmith}:reddit-events" in line
    assert "Traceback" not in result.stderr


@pytest.mark.redis
def test_a_server_that_is_no_cluster_node_stops_start_up(tmp_path: Path) -> None:
    """REDIS_CLUSTER=true pointed at a plain server: exit 2, one line naming REDIS_CLUSTER."""
    with private_redis_server(tmp_path) as port:
        result = _run(
            {
                "REDIS_CLUSTER": "true",
                "REDIS_ADDR": f"127.0.0.1:{port}",
                "STREAM": "{t}:in",
                "SIGNAL_STREAM": "{t}:signals",
                "DECISION_STREAM": "{t}:log",
                "DECISION_HASH_PREFIX": "{t}:decisions",
                "MARKET_STREAM": "{t}:market",
                "INSIGHT_STREAM": "{t}:insights",
                "STRATEGY_STREAM": "{t}:strategy",
                "ENHANCED_STREAM": "{t}:enhanced",
                "STATE_DIR": str(tmp_path / "state"),
            }
        )
    assert "is no cluster node" in _one_line(result, "REDIS_CLUSTER")


def test_a_cluster_not_reachable_at_start_up_is_waited_out(tmp_path: Path) -> None:
    """No node answers yet: the worker waits (no traceback, no exit) and SIGTERM still ends it
    cleanly with status 0."""
    env = {
        "REDIS_CLUSTER": "true",
        "REDIS_ADDR": f"127.0.0.1:{free_port()}",
        "STREAM": "{t}:in",
        "SIGNAL_STREAM": "{t}:signals",
        "DECISION_STREAM": "{t}:log",
        "DECISION_HASH_PREFIX": "{t}:decisions",
        "MARKET_STREAM": "{t}:market",
        "INSIGHT_STREAM": "{t}:insights",
        "STRATEGY_STREAM": "{t}:strategy",
        "ENHANCED_STREAM": "{t}:enhanced",
        "STATE_DIR": str(tmp_path / "state"),
        "HTTP_PORT": "0",
    }
    worker = _Worker(env, tmp_path / "run.log")
    try:
        time.sleep(4)
        assert worker.running(), "the worker gave up on an unreachable cluster"
    finally:
        returncode, err = worker.stop()
    assert returncode == 0, err[-2000:]
    assert "Traceback" not in err
    assert "redis not reachable yet" in err


class _Worker:
    """``signalsmith run`` in the background with only ``env``'s Redis settings; stderr goes to
    a file (a pipe nobody reads could fill up and stall it)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        dropped = {"REDIS_URL", "REDIS_ADDR", "REDIS_PASSWORD", "SIGNALSMITH_CONFIG"}
        base = {k: v for k, v in os.environ.items() if k not in dropped}
        self._log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "signalsmith", "run"],
                env={**base, **env},
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> tuple[int, str]:
        """SIGTERM (if still running); the exit status and what it wrote to stderr."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
        returncode = self.process.wait(timeout=30)
        return returncode, self._log.read_text()


@pytest.mark.cluster
def test_a_worker_started_before_its_cluster_is_formed_waits_then_works(tmp_path: Path) -> None:
    """The nodes answer but hold no slots yet (the cluster is still being created, as when
    everything starts together): the worker waits without a traceback, then decides the posts
    once the cluster is whole, and SIGTERM ends it with status 0."""
    with contextlib.ExitStack() as stack:
        try:
            ports = stack.enter_context(cluster_nodes(tmp_path / "nodes"))
        except CLUSTER_START_ERRORS as exc:
            cluster_unavailable(str(exc))
        env = {
            "REDIS_CLUSTER": "true",
            "REDIS_ADDR": f"127.0.0.1:{ports[0]}",
            "STREAM": "{early}:in",
            "SIGNAL_STREAM": "{early}:signals",
            "DECISION_STREAM": "{early}:log",
            "DECISION_HASH_PREFIX": "{early}:decisions",
            "MARKET_STREAM": "{early}:market",
            "INSIGHT_STREAM": "{early}:insights",
            "STRATEGY_STREAM": "{early}:strategy",
            "ENHANCED_STREAM": "{early}:enhanced",
            "STATE_DIR": str(tmp_path / "state"),
            "HTTP_PORT": "0",
            "BLOCK_MS": "100",
        }
        worker = _Worker(env, tmp_path / "run.log")
        stack.callback(worker.stop)
        time.sleep(3)
        assert worker.running(), "the worker gave up on a cluster still forming"
        create_cluster(ports)
        posts = tmp_path / "posts.jsonl"
        _write_posts(posts, 200)
        assert _cli(["replay", str(posts)], env).returncode == 0
        with _cluster(env["REDIS_ADDR"]) as client:
            deadline = time.monotonic() + 60
            while client.xlen(env["SIGNAL_STREAM"]) < 200:
                assert worker.running(), "the worker exited"
                assert time.monotonic() < deadline, "the worker never got going"
                time.sleep(0.05)
        returncode, err = worker.stop()
        assert returncode == 0, err[-2000:]
        assert "Traceback" not in err
        assert "slots are not covered" in err  # waited out as an outage


@pytest.mark.cluster
@pytest.mark.parametrize("tagged_prefix", [True, False], ids=["one-slot", "two-slots"])
async def test_a_posted_signal_is_queued_once_whether_or_not_its_key_shares_the_stream_slot(
    redis_cluster: str, tagged_prefix: bool
) -> None:
    """The request key and the stream in one slot: one script queues the signal; in two slots
    (a prefix without the stream's tag), the same in three calls. Either way a second POST of
    the signal id queues nothing, and the key leads to the entry."""
    from signalsmith.intake import IntakeConfig, StreamIntake
    from signalsmith.strategy.submission import strategy_submission

    tag = f"t{uuid.uuid4().hex[:10]}"
    stream = f"{{{tag}}}:strategy"
    prefix = f"{{{tag}}}:requests" if tagged_prefix else f"requests-{uuid.uuid4().hex[:8]}"
    signal_id = f"sig-{uuid.uuid4().hex[:8]}"
    settings = load_settings(
        redis_cluster=True,
        redis_addr=redis_cluster,
        stream=f"{{{tag}}}:in",
        signal_stream=f"{{{tag}}}:signals",
        decision_stream=f"{{{tag}}}:log",
        decision_hash_prefix=f"{{{tag}}}:decisions",
        market_stream=f"{{{tag}}}:market",
        insight_stream=f"{{{tag}}}:insights",
        strategy_stream=stream,
        enhanced_stream=f"{{{tag}}}:enhanced",
    )
    config = IntakeConfig(stream, "signalsmith-strategy", f"{stream}:dlq", 65_536, prefix, 60)
    body = json.dumps(
        {
            "signal_id": signal_id,
            "symbol": "AAPL",
            "side": "buy",
            "price": 189.5,
            "timestamp": time.time(),
        }
    ).encode()
    async with open_redis(settings) as handle:
        intake = StreamIntake(config, handle.connect, strategy_submission(500))
        key = f"{prefix}:{signal_id}"
        try:
            first = await intake.submit(body)
            again = await intake.submit(body)
            entries = await handle.client.xrange(stream)
            remembered = await handle.client.get(key)
            state = await intake.state(signal_id)
        finally:
            await handle.client.delete(stream)
            await handle.client.delete(key)
    assert (key_slot(key.encode()) == key_slot(stream.encode())) is tagged_prefix
    assert first.entry_id is not None
    assert again.entry_id is None
    assert [entry_id.decode() for entry_id, _fields in entries] == [first.entry_id]
    assert json.loads(entries[0][1][b"data"])["signal_id"] == signal_id
    assert remembered == first.entry_id.encode()
    assert state is not None
    assert state.state == "pending"
