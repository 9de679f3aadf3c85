"""The embedded broker and Redis really serve, really stop, and never outlive us."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from guardstream.embedded import EmbeddedBroker, EmbeddedRedis, EmbeddedStartError, free_port
from guardstream.embedded.broker import metadata_brokers
from guardstream.embedded.ports import ManagedProcess, port_is_listening

pytestmark = pytest.mark.integration

SERVERS: list[Callable[[], ManagedProcess]] = [EmbeddedBroker, EmbeddedRedis]


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in {"Z", "X"}


def _listen_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on ``port``, from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            next(fh)
            for row in fh:
                fields = row.split()
                address, hex_port = fields[1].rsplit(":", 1)
                if fields[3] != "0A" or int(hex_port, 16) != port:
                    continue
                if len(address) == 8:
                    found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
                else:
                    found.add(f"ipv6:{address}")
    return found


def _wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as server:
        yield server


@pytest.fixture(scope="module")
def redis_server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.mark.parametrize("factory", SERVERS, ids=["broker", "redis"])
def test_start_stop_frees_port_and_process(factory: Callable[[], ManagedProcess]) -> None:
    server = factory()
    with server:
        pid = server.pid
        port = server.port
        assert pid is not None and _alive(pid)
        assert port_is_listening(port)
        server.start()  # idempotent: same process
        assert server.pid == pid
    assert server.pid is None and not server.running
    assert _wait_dead(pid, 1.0)
    assert not port_is_listening(port)
    # The port is really free again: we can bind it ourselves.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    server.stop()  # idempotent


@pytest.mark.parametrize(
    ("factory", "scheme"),
    [(EmbeddedBroker, "kafka"), (EmbeddedRedis, "redis")],
    ids=["broker", "redis"],
)
def test_urls_are_loopback(factory: Callable[[], ManagedProcess], scheme: str) -> None:
    with factory() as server:
        url: str = server.url  # type: ignore[attr-defined]
        assert url.startswith(f"{scheme}://127.0.0.1:{server.port}")
        # Every listening socket on that port is bound to 127.0.0.1 and nothing else.
        assert _listen_addresses(server.port) == {"127.0.0.1"}


def test_broker_advertises_itself(broker: EmbeddedBroker) -> None:
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    assert broker.url == f"kafka://{broker.bootstrap}"
    hosts = {(host, port) for _, host, port in metadata_brokers("127.0.0.1", broker.port)}
    assert ("127.0.0.1", broker.port) in hosts


async def test_broker_produce_consume(broker: EmbeddedBroker) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"t-{uuid.uuid4().hex[:8]}"
    payloads = {f"k{i}".encode(): f'{{"n": {i}}}'.encode() for i in range(5)}
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for key, value in payloads.items():
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    # No group: skips the broker's group-join delay, the test stays fast.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    received: dict[bytes, bytes] = {}
    try:
        deadline = time.monotonic() + 15
        while len(received) < len(payloads) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    assert record.key is not None and record.value is not None
                    received[record.key] = record.value
    finally:
        await consumer.stop()
    assert received == payloads


def test_redis_set_get_and_no_persistence(redis_server: EmbeddedRedis) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        key = f"k-{uuid.uuid4().hex}"
        assert client.set(key, b"v1", ex=30)
        assert client.get(key) == b"v1"
        assert client.incr(f"{key}:n") == 1
        assert client.config_get("save")["save"] == ""
        assert client.config_get("appendonly")["appendonly"] == "no"
        assert client.config_get("bind")["bind"] == "127.0.0.1"
    finally:
        client.close()


def test_children_die_with_parent(tmp_path: object) -> None:
    """SIGKILL the parent: Linux PR_SET_PDEATHSIG must take the servers with it."""
    script = textwrap.dedent(
        """
        import sys, time
        from guardstream.embedded import EmbeddedBroker, EmbeddedRedis
        b = EmbeddedBroker(); b.start()
        r = EmbeddedRedis(); r.start()
        print(b.pid, r.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        pids = [int(x) for x in line.split()]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    finally:
        parent.kill()
        parent.wait()
    for pid in pids:
        assert _wait_dead(pid), "embedded server outlived its parent"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda: EmbeddedBroker(storage="postgres://nobody@127.0.0.1:1/x"),
            id="unsupported-storage",
        ),
        pytest.param(lambda: EmbeddedBroker(binary="/bin/false"), id="broker-exits"),
        pytest.param(
            lambda: EmbeddedRedis(binary="/nonexistent/redis-server"), id="redis-missing-binary"
        ),
    ],
)
def test_start_failures_raise_and_leave_nothing(make: Callable[[], ManagedProcess]) -> None:
    server = make()
    started = time.monotonic()
    with pytest.raises(EmbeddedStartError):
        server.start(timeout=10)
    assert time.monotonic() - started < 10
    assert not server.running


def test_fixed_port_in_use_fails() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = EmbeddedRedis(port=port)
        with pytest.raises(EmbeddedStartError):
            server.start(timeout=3)
        assert not server.running


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_log_file_receives_output(tmp_path: os.PathLike[str]) -> None:
    log = os.path.join(os.fspath(tmp_path), "tansu.log")
    with EmbeddedBroker(log_path=log):
        pass
    with open(log, "rb") as fh:
        assert b"tansu" in fh.read().lower()
