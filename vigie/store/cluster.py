"""Cluster bookkeeping: the nodes (`cluster_nodes`: daemons and workers, their role and
heartbeat), the job queue's tables as the leader reads them (procrastinate's own, installed
beside the store's), and the session-level advisory locks that elect the leader.

Only PostgreSQL runs a cluster; the node rows read the same on SQLite (a store copied from a
cluster keeps them)."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from vigie.errors import StoreError
from vigie.store.core import utcnow
from vigie.store.schema import cluster_nodes

if TYPE_CHECKING:
    import psycopg

    from vigie.store.core import Store

ROLES = ("leader", "standby", "worker")
QUEUE_TABLE = "procrastinate_jobs"
CLASSIFY_TASK = "vigie.classify"
ACTIVE_STATUSES = ("todo", "doing")  # a job still to run or running


def advisory_key(name: str) -> int:
    """The 64-bit key of PostgreSQL's advisory lock named `name` (the same on every machine)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LockWaitTimeout(StoreError):
    """Another transaction held an advisory lock for longer than the wait allows (a stuck
    or very slow process): this transaction is rolled back, and its job fails and is retried."""


LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout expires


def hold_xact_lock(store: Store, name: str, timeout_seconds: float) -> None:
    """Inside a transaction, on PostgreSQL: take the transaction-level advisory lock `name`,
    waiting at most `timeout_seconds` (else LockWaitTimeout), and hold it until the
    transaction ends. The wait bound applies to this lock only."""
    wait = f"{max(1, round(timeout_seconds * 1000))}ms"
    with store.transaction() as c:
        previous = c.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
        c.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": wait})
        try:
            c.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)})
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            raise LockWaitTimeout(
                f"lock {name!r} still held by another transaction after {timeout_seconds:g} s; "
                "giving up (tried again later)"
            ) from exc
        c.execute(text("SELECT set_config('lock_timeout', :previous, true)"), {"previous": previous})


@contextlib.contextmanager
def hold_session_lock(store: Store, name: str, timeout_seconds: float) -> Iterator[Callable[[], None]]:
    """On PostgreSQL, for a long job: the advisory lock `name` at session level, on a
    connection of its own that keeps no transaction open (vacuum is not held back), waiting
    at most `timeout_seconds` (else LockWaitTimeout). It conflicts with the transaction-level
    lock of the same name. Yields a check that raises StoreError if the session, and so the
    lock, was lost."""
    key = advisory_key(name)
    wait = f"{max(1, round(timeout_seconds * 1000))}ms"
    with store.engine.connect() as raw:
        c = raw.execution_options(isolation_level="AUTOCOMMIT")
        previous = c.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
        c.execute(text("SELECT set_config('lock_timeout', :wait, false)"), {"wait": wait})
        try:
            c.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            raise LockWaitTimeout(
                f"lock {name!r} still held by another process after {timeout_seconds:g} s; giving up"
            ) from exc
        finally:
            with contextlib.suppress(DBAPIError):
                c.execute(text("SELECT set_config('lock_timeout', :previous, false)"), {"previous": previous})

        def still_held() -> None:
            try:
                c.execute(text("SELECT 1"))
            except DBAPIError as exc:
                raise StoreError(
                    f"lost the lock {name!r}: the store's session ended ({' '.join(str(exc.orig).split())})"
                ) from None

        try:
            yield still_held
        finally:
            with contextlib.suppress(DBAPIError):
                c.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


# -- nodes -----------------------------------------------------------------------------


def register_node(
    store: Store,
    node_id: str,
    role: str,
    host: str,
    pid: int,
    egress: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """The node's row, started now (a node id reused by a restart gets a fresh row)."""
    _check_role(role)
    now = utcnow()
    row = {
        "node_id": node_id,
        "role": role,
        "host": host,
        "pid": pid,
        "egress": egress,
        "started_at": now,
        "heartbeat_at": now,
        "stopped_at": None,
        "detail": json.dumps(detail or {}, sort_keys=True),
    }
    with store.transaction() as c:
        c.execute(delete(cluster_nodes).where(cluster_nodes.c.node_id == node_id))
        c.execute(insert(cluster_nodes).values(row))


def heartbeat_node(
    store: Store, node_id: str, role: str | None = None, detail: dict[str, Any] | None = None
) -> bool:
    """The node says it is alive (and its role, when it changed); False when it has no row."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if role is not None:
        _check_role(role)
        values["role"] = role
    if detail is not None:
        values["detail"] = json.dumps(detail, sort_keys=True)
    with store.transaction() as c:
        result = c.execute(update(cluster_nodes).where(cluster_nodes.c.node_id == node_id).values(values))
        return bool(result.rowcount)


def set_node_role(store: Store, node_id: str, role: str) -> bool:
    return heartbeat_node(store, node_id, role=role)


def become_leader(store: Store, node_id: str) -> str:
    """The node holds the leader lock: its row says leader since now (`detail["leader_since"]`),
    and any other row still saying so (a leader killed before it could step down) says
    standby. Returns the time it became leader."""
    n = cluster_nodes.c
    now = utcnow()
    with store.transaction() as c:
        c.execute(
            update(cluster_nodes).where(n.role == "leader", n.node_id != node_id).values(role="standby")
        )
        stored = c.execute(select(n.detail).where(n.node_id == node_id)).scalar_one_or_none()
        try:
            detail = json.loads(stored or "{}")
        except ValueError:
            detail = {}
        detail = {**(detail if isinstance(detail, dict) else {}), "leader_since": now}
        c.execute(
            update(cluster_nodes)
            .where(n.node_id == node_id)
            .values(role="leader", heartbeat_at=now, detail=json.dumps(detail, sort_keys=True))
        )
    return now


def stop_node(store: Store, node_id: str) -> None:
    """The node has stopped cleanly; a leader stepping down is a standby again."""
    now = utcnow()
    n = cluster_nodes.c
    with store.transaction() as c:
        c.execute(
            update(cluster_nodes).where(n.node_id == node_id, n.role == "leader").values(role="standby")
        )
        c.execute(update(cluster_nodes).where(n.node_id == node_id).values(stopped_at=now, heartbeat_at=now))


def list_nodes(store: Store) -> list[dict[str, Any]]:
    """Every node row, leaders first, then standbys, then workers; detail decoded."""
    order = {role: i for i, role in enumerate(ROLES)}
    with store.reading() as c:
        rows = [dict(r._mapping) for r in c.execute(select(cluster_nodes))]
    for row in rows:
        try:
            row["detail"] = json.loads(row["detail"] or "{}")
        except ValueError:
            row["detail"] = {}
    return sorted(rows, key=lambda r: (order.get(r["role"], len(ROLES)), r["node_id"]))


def live_worker_models(store: Store, lease_seconds: float) -> Counter[str]:
    """How many live workers (running, heartbeat within `lease_seconds`) classify with each
    model id (`detail["model_id"]`); workers reporting none are not counted."""
    n = cluster_nodes.c
    since = (datetime.now(UTC) - timedelta(seconds=lease_seconds)).isoformat(timespec="seconds")
    query = select(n.detail).where(n.role == "worker", n.stopped_at.is_(None), n.heartbeat_at >= since)
    models: Counter[str] = Counter()
    with store.reading() as c:
        for (stored,) in c.execute(query):
            try:
                detail = json.loads(stored or "{}")
            except ValueError:
                continue
            model = detail.get("model_id") if isinstance(detail, dict) else None
            if isinstance(model, str) and model:
                models[model] += 1
    return models


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"node role {role!r}: expected one of {', '.join(ROLES)}")


# -- the job queue's tables --------------------------------------------------------------


def _queue_installed(c: Any) -> bool:
    return c.execute(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": QUEUE_TABLE}).scalar_one()


def install_queue_schema(store: Store, schema_sql: str) -> bool:
    """Run `schema_sql` (the queue's DDL) when its tables are missing, under a transaction
    advisory lock so that nodes starting together install it once; True when it ran."""
    _require_postgresql(store)
    with store.transaction() as c:
        c.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key("vigie:queue-schema")})
        if _queue_installed(c):
            return False
        # Several statements, no parameters: straight to the driver (no placeholder parsing).
        c.connection.driver_connection.execute(schema_sql)  # type: ignore[union-attr]
        return True


def active_classify_batches(store: Store) -> set[str]:
    """The batch ids of classification jobs still to run or running (a job waiting for a
    retry is still to run)."""
    if store.backend != "postgresql":
        return set()
    query = text(
        f"SELECT DISTINCT args->>'batch_id' FROM {QUEUE_TABLE} "
        "WHERE task_name = :task AND status::text IN ('todo', 'doing')"
    )
    with store.reading() as c:
        if not _queue_installed(c):
            return set()
        return {row[0] for row in c.execute(query, {"task": CLASSIFY_TASK}) if row[0]}


@contextlib.contextmanager
def deferring(store: Store, lock: str, timeout_seconds: float) -> Iterator[int | None]:
    """Around the deferring of a job of `lock`: yields the id of one that waits already (to
    run, or to be retried), else None, under a transaction advisory lock held until the block
    ends, so that two nodes deferring together defer once. The block's job is committed on
    the queue's own connection before the lock is let go."""
    _require_postgresql(store)
    query = text(
        f"SELECT id FROM {QUEUE_TABLE} WHERE lock = :lock AND status::text = 'todo' ORDER BY id LIMIT 1"
    )
    with store.transaction() as c:
        hold_xact_lock(store, f"vigie:defer:{lock}", timeout_seconds)
        yield c.execute(query, {"lock": lock}).scalar_one_or_none()


def lock_holder_pids(store: Store, name: str) -> list[int]:
    """The server process ids of the sessions holding the advisory lock `name` (pg_locks)."""
    if store.backend != "postgresql":
        return []
    key = advisory_key(name)
    query = text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = :hi AND objid = :lo AND objsubid = 1 ORDER BY pid"
    )
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    with store.reading() as c:
        return [int(r[0]) for r in c.execute(query, {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF})]


def _require_postgresql(store: Store) -> None:
    if store.backend != "postgresql":
        from vigie.errors import ConfigurationError

        raise ConfigurationError("cluster mode needs a PostgreSQL store; this store is SQLite")


# -- the leader's lock ---------------------------------------------------------------------


class SessionLock:
    """A session-level advisory lock on a connection of its own: held while that session
    lives, released by the server as soon as it ends (process killed, host gone: TCP
    keepalives notice a silent peer within `keepalive_seconds` or so)."""

    def __init__(
        self, conninfo: str, name: str, keepalive_seconds: float = 10.0, holder: str | None = None
    ) -> None:
        self.conninfo = conninfo
        self.holder = holder or name  # the session's application_name (pg_stat_activity)
        self.name = name
        self.key = advisory_key(name)
        self.keepalive = max(1, int(keepalive_seconds))
        self._conn: psycopg.Connection[Any] | None = None
        self.held = False

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed:
            self.held = False
            idle, interval, count = self.keepalive, max(1, self.keepalive // 3), 3
            # Keepalives both ways: this side notices a vanished server, and the server
            # (its session settings) notices a vanished holder and frees the lock.
            server = (
                f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval} "
                f"-c tcp_keepalives_count={count} -c tcp_user_timeout={idle * count * 1000}"
            )
            from psycopg.conninfo import conninfo_to_dict

            given = conninfo_to_dict(self.conninfo).get("options")
            self._conn = psycopg.connect(
                self.conninfo,
                autocommit=True,
                connect_timeout=max(2, self.keepalive),
                application_name=f"vigie {self.holder}"[:63],
                keepalives=1,
                keepalives_idle=idle,
                keepalives_interval=interval,
                keepalives_count=count,
                tcp_user_timeout=idle * count * 1000,
                options=f"{given} {server}" if given else server,
            )
        return self._conn

    def try_acquire(self) -> bool:
        """Take the lock if no other session holds it; True when this one holds it."""
        if self.held and self.alive():
            return True
        conn = self._connect()
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        self.held = bool(row and row[0])
        return self.held

    def alive(self) -> bool:
        """Whether this session still holds the lock (its connection answers)."""
        if self._conn is None or self._conn.closed or not self.held:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND objsubid = 1 "
                "AND ((classid::bigint << 32) | objid::bigint) = (%s::bigint & x'FFFFFFFFFFFFFFFF'::bigint)",
                (self.key,),
            ).fetchone()
        except Exception:
            self.close()
            return False
        self.held = bool(row and row[0])
        return self.held

    def backend_pid(self) -> int | None:
        return self._conn.info.backend_pid if self._conn is not None and not self._conn.closed else None

    def release(self) -> None:
        if self._conn is not None and not self._conn.closed and self.held:
            with contextlib.suppress(Exception):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self.held = False

    def close(self) -> None:
        self.held = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
