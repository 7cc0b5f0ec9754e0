#!/usr/bin/env python3
"""A consumer of the todo events in Python: each event applied exactly once to a SQLite projection.

The contract it reads is contracts/asyncapi.yaml: topic todos.task.events, key = todo id, CloudEvents
headers (binary mode), Avro values in the Confluent wire format with writer schemas in a Confluent
compatible registry (Apicurio's /apis/ccompat/v7 here), subjects <topic>-<record full name>.

How it keeps "exactly once" on top of at-least-once delivery:
- isolation.level=read_committed: records of aborted relay transactions are never seen;
- enable.auto.commit=false: a record's offset is committed only after its effect is durable;
- the effect and the event id (ce_id) are written in one SQLite transaction, and an id already in
  processed_events is skipped: a record delivered again (after a crash before the commit, a
  rewind of the group's offsets, a DLQ replay) changes nothing.

Failures: the registry unreachable (or 5xx) and SQLite errors are transient: the record is retried
in place with backoff for as long as it takes, its offset not committed. A record that can never be
applied (not the wire format, a schema id the registry does not know, a writer record that is not
the ce_type's, a body that does not decode with the reader schema, no ce_id) is recorded in
dead_letters (its error cut at 2,000 characters), in the same transaction as its
processed mark, and skipped. A ce_type with no handler is logged and skipped.

Usage:
    consumer.py run     consume until SIGINT or SIGTERM (exit 0), logging one JSON line per record
    consumer.py dump    print the projection, processed events and dead letters as JSON

Environment (defaults are the local stack's):
    KAFKA_BOOTSTRAP_SERVERS  127.0.0.1:9092
    SCHEMA_REGISTRY_URL      http://127.0.0.1:8081/apis/ccompat/v7
    GROUP_ID                 python-example (use your own: never another service's group)
    DB_PATH                  todos.sqlite
    SCHEMAS_DIR              the repository's schemas/ (the reader schemas, *.avsc)
    TOPIC                    todos.task.events
    KAFKA_SASL_USERNAME      the Kafka principal (the local stack's: python-example, group python-example)
    KAFKA_SASL_PASSWORD      its password (.state/env: KAFKA_PYTHON_EXAMPLE_PASSWORD)
    KAFKA_SASL_MECHANISM     SCRAM-SHA-512
    KAFKA_SECURITY_PROTOCOL  SASL_PLAINTEXT when KAFKA_SASL_USERNAME is set, else PLAINTEXT
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import struct
import sys
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

log = logging.getLogger("python-consumer")

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_BACKOFF_S = 10.0
MAX_ERROR = 2000  # characters of an error kept in dead_letters (as the Go runtime's error_message)


def millis(t: datetime) -> int:
    """Milliseconds since the Unix epoch, exactly (Avro timestamp-millis)."""
    return (t - EPOCH) // timedelta(milliseconds=1)


# The typed events: one dataclass per Avro record of schemas/, fields as the reader schema names them.
@dataclass(frozen=True)
class TodoCreated:
    todo_id: str
    user_id: str
    title: str
    status: str
    created_at: datetime
    priority: str


@dataclass(frozen=True)
class TodoCompleted:
    todo_id: str
    user_id: str
    completed_at: datetime


@dataclass(frozen=True)
class TodoDeleted:
    todo_id: str
    user_id: str
    deleted_at: datetime


def apply_created(db: sqlite3.Connection, e: TodoCreated) -> None:
    db.execute(
        "INSERT INTO todos (todo_id, user_id, title, status, priority, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (todo_id) DO UPDATE SET user_id = excluded.user_id, title = excluded.title,"
        " status = excluded.status, priority = excluded.priority, created_at_ms = excluded.created_at_ms",
        (e.todo_id, e.user_id, e.title, e.status, e.priority, millis(e.created_at)),
    )


def apply_completed(db: sqlite3.Connection, e: TodoCompleted) -> None:
    db.execute(
        "UPDATE todos SET status = 'COMPLETED', completed_at_ms = ? WHERE todo_id = ?",
        (millis(e.completed_at), e.todo_id),
    )


def apply_deleted(db: sqlite3.Connection, e: TodoDeleted) -> None:
    db.execute("UPDATE todos SET deleted_at_ms = ? WHERE todo_id = ?", (millis(e.deleted_at), e.todo_id))


@dataclass(frozen=True)
class Route:
    """What a ce_type maps to: the reader schema's file, the typed event and its effect."""

    schema_file: str
    event: type
    apply: Callable[[sqlite3.Connection, object], None]


# Routing by the ce_type header (contracts/asyncapi.yaml, components/messages).
ROUTES = {
    "todos.task.created": Route("TodoCreated.avsc", TodoCreated, apply_created),
    "todos.task.completed": Route("TodoCompleted.avsc", TodoCompleted, apply_completed),
    "todos.task.deleted": Route("TodoDeleted.avsc", TodoDeleted, apply_deleted),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed_events (
    event_id    TEXT PRIMARY KEY,   -- ce_id
    event_type  TEXT NOT NULL,
    todo_id     TEXT NOT NULL,      -- the record key
    topic       TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    "offset"    INTEGER NOT NULL,
    applied_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS todos (
    todo_id         TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    title           TEXT NOT NULL,
    status          TEXT NOT NULL,
    priority        TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    completed_at_ms INTEGER,
    deleted_at_ms   INTEGER
);
CREATE TABLE IF NOT EXISTS dead_letters (
    topic       TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    "offset"    INTEGER NOT NULL,
    event_id    TEXT,
    event_type  TEXT,
    error       TEXT NOT NULL,
    failed_at   TEXT NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
"""


class Transient(Exception):
    """A failure that goes away by itself (registry or database unavailable): retry the record."""


class Permanent(Exception):
    """A record that can never be applied: record it as a dead letter and go on."""


def open_db(path: str) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below.
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a COMMIT is on disk before the offset is committed
    db.executescript(SCHEMA)
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT; ROLLBACK when the block raises. SQLite errors (locked, disk
    full, I/O) become Transient: the record is retried, its offset not committed."""
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    except sqlite3.Error as e:
        raise Transient(f"sqlite: {e}") from e


def headers_of(msg: Message) -> dict[str, str]:
    """The record's headers, first value of each name, as text. Unknown headers are kept and ignored."""
    out: dict[str, str] = {}
    for k, v in msg.headers() or []:
        if k not in out and v is not None:
            out[k] = v.decode("utf-8", errors="replace")
    return out


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class App:
    def __init__(self, registry: SchemaRegistryClient, db: sqlite3.Connection, schemas_dir: Path):
        self.registry = registry
        self.db = db
        self.deserializers = {}
        self.records = {}  # ce_type -> the reader record's full name and aliases
        for ce_type, route in ROUTES.items():
            reader = (schemas_dir / route.schema_file).read_text(encoding="utf-8")
            rec = json.loads(reader)
            ns = rec.get("namespace", "")
            # the record's full name first, then its aliases: writer records it also reads (Avro spec, Aliases)
            self.records[ce_type] = [f"{ns}.{n}" if "." not in n else n for n in [rec["name"], *rec.get("aliases", [])]]
            # The reader schema is the one this code was built with: writer schemas (fetched by id)
            # are resolved against it, so a later version's new fields are skipped.
            self.deserializers[ce_type] = AvroDeserializer(
                registry,
                reader,
                from_dict=lambda d, _ctx, cls=route.event: cls(**d),
                conf={"subject.name.strategy": topic_record_subject_name_strategy},
            )

    def writer_record(self, value: Optional[bytes]) -> str:
        """Checks the Confluent wire format, fetches the writer schema (cached by the client) and
        returns its record's full name."""
        if value is None or len(value) < 6 or value[0] != 0:
            raise Permanent("not the Confluent wire format (magic byte 0, 4-byte schema id, Avro body)")
        (schema_id,) = struct.unpack(">I", value[1:5])
        try:
            writer = json.loads(self.registry.get_schema(schema_id).schema_str)
        except SchemaRegistryError as e:
            if 400 <= e.http_status_code < 500 and e.http_status_code not in (408, 429):
                raise Permanent(f"writer schema {schema_id}: {e}") from e
            raise Transient(f"registry: {e}") from e
        except ValueError as e:  # the registry answered with a schema that is not JSON
            raise Permanent(f"writer schema {schema_id}: {e}") from e
        except Exception as e:  # unreachable, timeout: the client raises its HTTP library's errors
            raise Transient(f"registry unreachable: {e!r}") from e
        if not isinstance(writer, dict) or writer.get("type") != "record":
            raise Permanent(f"writer schema {schema_id} is not a record")
        name = writer.get("name", "")
        return name if "." in name else f"{writer.get('namespace', '')}.{name}"

    def process(self, msg: Message) -> dict:
        """Applies one record, once. Returns what to log; raises Transient to be retried."""
        hs = headers_of(msg)
        key = (msg.key() or b"").decode("utf-8", errors="replace")
        where = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(), "key": key}
        ce_id, ce_type = hs.get("ce_id"), hs.get("ce_type")
        route = ROUTES.get(ce_type or "")
        if ce_id and route is None:
            return {"msg": "skipped: no handler for this type", "ce_type": ce_type, "ce_id": ce_id, **where}
        event = None
        try:
            if not ce_id:
                raise Permanent("no ce_id header")
            writer = self.writer_record(msg.value())
            if writer not in self.records[ce_type]:
                raise Permanent(f"ce_type {ce_type} is the record {self.records[ce_type][0]}; the writer schema is {writer}")
            ctx = SerializationContext(msg.topic(), MessageField.VALUE, msg.headers())
            try:
                event = self.deserializers[ce_type](msg.value(), ctx)
            except Exception as e:  # the writer schema is cached: what fails here is the body itself
                raise Permanent(f"decode {ce_type}: {e!r}") from e
        except Permanent as e:
            return self.dead_letter(where, ce_id, ce_type, str(e))
        with transaction(self.db):
            cur = self.db.execute(
                "INSERT INTO processed_events (event_id, event_type, todo_id, topic, partition, \"offset\", applied_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                (ce_id, ce_type, key, msg.topic(), msg.partition(), msg.offset(), now_rfc3339()),
            )
            if cur.rowcount == 0:  # nothing written: the (empty) transaction commits
                return {"msg": "duplicate: already applied", "ce_type": ce_type, "ce_id": ce_id, **where}
            route.apply(self.db, event)
        return {"msg": "applied", "ce_type": ce_type, "ce_id": ce_id, **where, "event": jsonable(event)}

    def dead_letter(self, where: dict, ce_id: Optional[str], ce_type: Optional[str], err: str) -> dict:
        err = err[:MAX_ERROR]
        with transaction(self.db):
            self.db.execute(
                "INSERT INTO dead_letters (topic, partition, \"offset\", event_id, event_type, error, failed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (where["topic"], where["partition"], where["offset"], ce_id, ce_type, err, now_rfc3339()),
            )
        return {"msg": "dead-lettered", "level": "ERROR", "ce_type": ce_type, "ce_id": ce_id, **where, "error": err}


def jsonable(event) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(event).items()}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, msg and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "msg": record.getMessage()}
        out.update(getattr(record, "fields", {}))
        return json.dumps(out, ensure_ascii=False)


def emit(level: int, msg: str, **fields) -> None:
    log.log(level, msg, extra={"fields": fields})


def run(cfg: dict) -> int:
    stop_requested = threading.Event()

    def stop(signum, _frame):
        stop_requested.set()  # also ends a backoff wait at once
        emit(logging.INFO, "stopping", signal=signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    db = open_db(cfg["db_path"])
    # No retries inside the client: a failed request is a Transient failure, retried by run() with
    # its own backoff for as long as it takes.
    registry = SchemaRegistryClient({"url": cfg["registry_url"], "timeout": 10, "max.retries": 0})
    app = App(registry, db, Path(cfg["schemas_dir"]))

    def on_assign(_c, parts):
        emit(logging.INFO, "assigned", partitions=[f"{p.topic}[{p.partition}]" for p in parts])

    def on_revoke(_c, parts):
        # Nothing to flush: each offset is committed right after its record's effect.
        emit(logging.INFO, "revoked", partitions=[f"{p.topic}[{p.partition}]" for p in parts])

    consumer = Consumer({
        **cfg["security"],
        "bootstrap.servers": cfg["bootstrap"],
        "group.id": cfg["group_id"],
        "client.id": "python-consumer",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
    })
    consumer.subscribe([cfg["topic"]], on_assign=on_assign, on_revoke=on_revoke)
    emit(logging.INFO, "started", group=cfg["group_id"], topic=cfg["topic"], bootstrap=cfg["bootstrap"],
         registry=cfg["registry_url"], db=cfg["db_path"])
    code = 0
    try:
        while not stop_requested.is_set():
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                err = msg.error()
                emit(logging.ERROR, "kafka error", error=str(err), fatal=err.fatal())
                if err.fatal():
                    code = 1
                    break
                continue
            backoff = 0.1
            while True:
                try:
                    out = app.process(msg)
                    break
                except Transient as e:
                    emit(logging.WARNING, "transient failure, retrying", error=str(e), backoff_s=round(backoff, 2),
                         topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
                    if stop_requested.wait(backoff):
                        out = None  # not applied, not committed: read again after a restart
                        break
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
            if out is None:
                break
            emit(logging.ERROR if out.pop("level", "") == "ERROR" else logging.INFO, out.pop("msg"), **out)
            try:
                consumer.commit(message=msg, asynchronous=False)
            except KafkaException as e:
                # The effect is durable; the record will be delivered again and skipped as a duplicate.
                emit(logging.WARNING, "offset commit failed", error=str(e), partition=msg.partition(),
                     offset=msg.offset())
    finally:
        consumer.close()
        db.close()
    emit(logging.INFO, "stopped", exit_code=code)
    return code


def dump(cfg: dict) -> int:
    if not Path(cfg["db_path"]).is_file():
        emit(logging.ERROR, "no database to dump", db=cfg["db_path"])
        return 1
    db = sqlite3.connect(Path(cfg["db_path"]).resolve().as_uri() + "?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    out = {}
    for table, order in (("todos", "todo_id"), ("processed_events", "event_id"), ("dead_letters", "topic, partition, \"offset\"")):
        out[table] = [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY {order}")]
    db.close()
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def config() -> dict:
    here = Path(__file__).resolve().parent
    return {
        "bootstrap": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        "registry_url": os.environ.get("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7"),
        "group_id": os.environ.get("GROUP_ID", "python-example"),
        "db_path": os.environ.get("DB_PATH", "todos.sqlite"),
        "schemas_dir": os.environ.get("SCHEMAS_DIR", str(here.parent.parent / "schemas")),
        "topic": os.environ.get("TOPIC", "todos.task.events"),
        "security": security(),
    }


def security() -> dict:
    """librdkafka's security settings from the variables the Go programs read (kafkaconf): SASL when
    KAFKA_SASL_USERNAME is set (SCRAM-SHA-512 over SASL_PLAINTEXT on the local stack), none otherwise."""
    user = os.environ.get("KAFKA_SASL_USERNAME", "")
    protocol = os.environ.get("KAFKA_SECURITY_PROTOCOL") or ("SASL_PLAINTEXT" if user else "PLAINTEXT")
    out = {"security.protocol": protocol}
    if protocol.startswith("SASL"):
        out.update({"sasl.mechanism": os.environ.get("KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512",
                    "sasl.username": user, "sasl.password": os.environ.get("KAFKA_SASL_PASSWORD", "")})
    return out


def main(argv: list[str]) -> int:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])  # libraries: warnings and errors
    log.setLevel(logging.INFO)
    commands = {"run": run, "dump": dump}
    if len(argv) != 2 or argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return commands[argv[1]](config())
    except (OSError, sqlite3.Error, KafkaException, ValueError) as e:
        emit(logging.ERROR, "cannot run", error=repr(e))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
