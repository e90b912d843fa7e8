"""A gevent workload on top of whichever greenlet is installed.

    python tests/gevent/gevent_workload.py

Each check exercises one thing gevent does with greenlets and asserts its
results; the first failing check ends the run with a traceback and exit
status 1. run_gevent_check.sh runs it in a throw-away venv with our
greenlet (or, to validate the check itself, upstream's).
"""

import contextlib
import hashlib
import io
import sys
import time

import greenlet

import gevent
import gevent.pool
import gevent.queue
from gevent import socket
from gevent import Timeout

SPAWN_COUNT = 10_000


@contextlib.contextmanager
def expected_errors(*names):
    """The hub prints the traceback of every greenlet that dies of an
    exception; for greenlets failing on purpose, capture that report and
    check that it names each expected exception."""
    hub = gevent.get_hub()
    report = io.StringIO()
    hub.exception_stream = report
    try:
        yield
    finally:
        hub.exception_stream = sys.stderr
    for name in names:
        assert name in report.getvalue(), (name, report.getvalue())


def check_spawn_many():
    """10,000 greenlets that each yield once, then return a value."""
    squares = [None] * SPAWN_COUNT

    def work(i):
        gevent.sleep(0)
        squares[i] = i * i
        return i

    jobs = [gevent.spawn(work, i) for i in range(SPAWN_COUNT)]
    done = gevent.joinall(jobs, timeout=120, raise_error=True)
    assert len(done) == SPAWN_COUNT, len(done)
    assert all(job.successful() for job in jobs)
    assert [job.value for job in jobs] == list(range(SPAWN_COUNT))
    assert squares == [i * i for i in range(SPAWN_COUNT)]
    return "%d greenlets" % SPAWN_COUNT


def check_sleep_order():
    """Timers wake sleepers in deadline order, whatever the spawn order."""
    woke = []
    delays = [0.08, 0.02, 0.06, 0.0, 0.04]

    def sleeper(delay):
        gevent.sleep(delay)
        woke.append(delay)

    started = time.monotonic()
    gevent.joinall([gevent.spawn(sleeper, d) for d in delays],
                   raise_error=True)
    elapsed = time.monotonic() - started
    assert woke == sorted(delays), woke
    return "%d sleepers in %.3fs" % (len(delays), elapsed)


def check_queue():
    """Producers and consumers through a small bounded queue, so that both
    sides block and switch many times."""
    q = gevent.queue.Queue(maxsize=8)
    producers, consumers, per_producer = 4, 3, 2000
    received = []

    def produce(base):
        for i in range(per_producer):
            q.put(base + i)

    def consume():
        got = []
        while True:
            item = q.get()
            if item is None:
                return got
            got.append(item)

    consumer_jobs = [gevent.spawn(consume) for _ in range(consumers)]
    gevent.joinall([gevent.spawn(produce, p * per_producer)
                    for p in range(producers)], raise_error=True)
    for _ in range(consumers):
        q.put(None)
    gevent.joinall(consumer_jobs, raise_error=True)
    for job in consumer_jobs:
        assert job.value, "a consumer got nothing: no switching happened"
        # FIFO: what one producer put, each consumer got in that order.
        for p in range(producers):
            mine = [v for v in job.value if v // per_producer == p]
            assert mine == sorted(mine), "queue order broken"
        received.extend(job.value)
    assert sorted(received) == list(range(producers * per_producer))
    return "%d items, %d producers, %d consumers" % (
        len(received), producers, consumers)


def check_socket_pair():
    """A TCP connection over loopback carrying 4 MiB each way at once,
    each direction written and read by its own greenlet."""
    size = 4 << 20
    to_server = bytes(range(256)) * (size // 256)
    to_client = bytes(reversed(range(256))) * (size // 256)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepting = gevent.spawn(listener.accept)
    client = socket.create_connection(listener.getsockname())
    server, _ = accepting.get(timeout=10)
    listener.close()

    def send(sock, data):
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)

    def receive(sock):
        digest = hashlib.sha256()
        total = 0
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return total, digest.hexdigest()
            total += len(chunk)
            digest.update(chunk)

    jobs = [gevent.spawn(send, client, to_server),
            gevent.spawn(send, server, to_client),
            gevent.spawn(receive, server),
            gevent.spawn(receive, client)]
    gevent.joinall(jobs, timeout=60, raise_error=True)
    assert all(job.ready() for job in jobs), "socket transfer timed out"
    assert jobs[2].value == (size, hashlib.sha256(to_server).hexdigest())
    assert jobs[3].value == (size, hashlib.sha256(to_client).hexdigest())
    client.close()
    server.close()
    return "%d MiB each way" % (size >> 20)


def check_timeout():
    """gevent.Timeout raised into a sleeping greenlet, silent and loud."""
    interrupted = True
    with Timeout(0.05, False):
        gevent.sleep(10)
        interrupted = False
    assert interrupted

    try:
        with Timeout(0.05):
            gevent.sleep(10)
    except Timeout as exc:
        caught = exc
    else:
        raise AssertionError("Timeout did not fire")
    assert isinstance(caught, Timeout)

    class Late(Exception):
        pass

    try:
        gevent.with_timeout(0.05, gevent.sleep, 10, timeout_value=Late)
    except Late:
        raise AssertionError("timeout_value must be returned, not raised")
    assert gevent.with_timeout(
        0.05, gevent.sleep, 10, timeout_value="late") == "late"

    # A timeout that never fires leaves the result alone.
    with Timeout(5):
        assert gevent.spawn(lambda: 7).get() == 7
    return "ok"


def check_joinall_and_errors():
    """joinall() over results and failures; an exception stays with the
    greenlet that raised it."""
    def ok(i):
        gevent.sleep(0.001 * (i % 3))
        return i

    def boom():
        gevent.sleep(0)
        raise ValueError("boom")

    with expected_errors("ValueError: boom"):
        good = [gevent.spawn(ok, i) for i in range(50)]
        bad = gevent.spawn(boom)
        done = gevent.joinall(good + [bad], timeout=30)
        assert len(done) == 51
        assert [g.value for g in good] == list(range(50))
        assert not bad.successful()
        assert isinstance(bad.exception, ValueError)

        bad2 = gevent.spawn(boom)
        try:
            gevent.joinall([bad2], raise_error=True)
        except ValueError:
            pass
        else:
            raise AssertionError("joinall(raise_error=True) did not raise")
    return "51 joined"


def check_kill():
    """Greenlet.kill(): GreenletExit by default, finally blocks run, a
    custom exception, a greenlet that never started, a whole group."""
    events = []

    def loop_forever():
        try:
            while True:
                gevent.sleep(0.01)
        finally:
            events.append("finally")

    g = gevent.spawn(loop_forever)
    gevent.sleep(0.03)
    g.kill()
    assert g.dead
    assert events == ["finally"]
    assert g.successful()
    assert isinstance(g.value, gevent.GreenletExit)

    class Stop(Exception):
        pass

    with expected_errors("Stop"):
        g = gevent.spawn(loop_forever)
        gevent.sleep(0)
        g.kill(Stop, block=True)
        assert isinstance(g.exception, Stop)
    assert events == ["finally", "finally"]

    never = gevent.spawn(events.append, "never ran")
    never.kill()
    assert never.dead
    assert "never ran" not in events

    group = gevent.pool.Group()
    for _ in range(100):
        group.spawn(loop_forever)
    gevent.sleep(0.02)
    group.kill()
    assert len(group) == 0
    assert events.count("finally") == 102
    return "ok"


def check_deep_stacks():
    """Each of 200 greenlets recurses 300 Python frames deep and parks
    there across several switches: every greenlet has its own stack."""
    def dive(depth, tag):
        if depth:
            return dive(depth - 1, tag)
        for _ in range(3):
            gevent.sleep(0)
        return tag

    jobs = [gevent.spawn(dive, 300, i) for i in range(200)]
    gevent.joinall(jobs, raise_error=True)
    assert [job.value for job in jobs] == list(range(200))
    return "200 x 300 frames"


def check_threadpool():
    """Work handed to gevent's thread pool; each worker thread has a hub
    and greenlets of its own."""
    pool = gevent.get_hub().threadpool
    results = [pool.spawn(lambda i=i: i * 3) for i in range(20)]
    assert [r.get(timeout=30) for r in results] == [i * 3 for i in range(20)]
    return "20 tasks"


def check_types():
    """gevent builds on the installed greenlet's type."""
    assert issubclass(gevent.Greenlet, greenlet.greenlet)
    hub = gevent.get_hub()
    assert isinstance(hub, greenlet.greenlet)
    assert isinstance(gevent.getcurrent(), greenlet.greenlet)
    return "greenlet %s" % greenlet.__version__


CHECKS = [
    check_types,
    check_spawn_many,
    check_sleep_order,
    check_queue,
    check_socket_pair,
    check_timeout,
    check_joinall_and_errors,
    check_kill,
    check_deep_stacks,
    check_threadpool,
]


def main():
    print("gevent %s, greenlet %s from %s"
          % (gevent.__version__, greenlet.__version__, greenlet.__file__))
    started = time.monotonic()
    for check in CHECKS:
        t0 = time.monotonic()
        detail = check()
        print("  %-26s ok  %6.2fs  %s"
              % (check.__name__, time.monotonic() - t0, detail), flush=True)
    print("workload: %d checks passed in %.1fs"
          % (len(CHECKS), time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
