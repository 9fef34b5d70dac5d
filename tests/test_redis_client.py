"""The pool's connection check under gevent (core.storage.redis_client.Connection).

Runs in a child process because the check only differs once gevent has patched `select`, which
must not happen in the test process itself.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import sys, time
    import redis
    from core.storage.redis_client import Connection, _native_poll
    from core.ground.settings import Settings
    from core.storage.redis_client import make_redis

    url = sys.argv[1]
    assert _native_poll() is not None, "gevent patched select, so the native poll is used"
    r = make_redis(Settings(redis_url=url, redis_max_connections=2))
    pool = r.connection_pool
    assert pool.connection_class is Connection
    r.set("rc:key", "value")

    conn = pool.get_connection()
    assert conn.can_read() is False, "a clean connection has nothing to read"
    conn.send_command("PING")  # a reply nobody reads: the connection is now dirty
    time.sleep(0.1)
    assert conn.can_read() is True, "a pending reply is seen"
    pool.release(conn)
    # The pool hands the last released (dirty) connection out first (LIFO): it must reconnect
    # it, never hand its stray PONG to the next command.
    assert r.get("rc:key") == "value"

    conn = pool.get_connection()
    other = redis.Redis.from_url(url)
    conn.send_command("CLIENT", "ID")
    other.client_kill_filter(_id=conn.read_response())
    time.sleep(0.1)
    try:
        closed = conn.can_read()
    except redis.ConnectionError:
        closed = True
    assert closed, "a socket the server closed is not taken for a clean one"
    pool.release(conn)
    assert r.get("rc:key") == "value"
    print("ok")
""")


def test_pool_check_under_gevent_refuses_dirty_and_closed_connections(redis_url: str) -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD, redis_url], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_rediss_and_unix_urls_keep_redis_py_connection_classes() -> None:
    import redis

    from core.ground.settings import Settings
    from core.storage.redis_client import Connection, make_redis

    tls = make_redis(Settings(redis_url="rediss://127.0.0.1:1/0")).connection_pool
    assert tls.connection_class is redis.SSLConnection
    unix = make_redis(Settings(redis_url="unix:///tmp/none.sock")).connection_pool
    assert unix.connection_class is redis.UnixDomainSocketConnection
    plain = make_redis(Settings(redis_url="redis://127.0.0.1:1/0")).connection_pool
    assert plain.connection_class is Connection


def test_connections_still_report_redis_py_version_once_it_is_cached(settings) -> None:
    import redis
    import redis.utils

    from core.storage.redis_client import make_redis

    client = make_redis(settings)
    client.ping()
    assert hasattr(redis.utils.get_lib_version, "cache_info")  # looked up once per process
    # What a connection sends with CLIENT SETINFO (servers from 7.2 on record it).
    conn = client.connection_pool.make_connection()
    assert conn.driver_info.lib_version == redis.__version__
    assert redis.Connection(host="127.0.0.1").driver_info.lib_version == redis.__version__
