"""The PostgreSQL schema of checkpointkit: table names, DDL and forward migrations.

Every identifier is composed with `psycopg.sql.Identifier` from the saver's
``schema`` and ``table_prefix`` options, never formatted into SQL text.
Tables (``<prefix>`` defaults to ``ck_``)::

    <prefix>schema_version  one row per applied migration (version, applied_at)
    <prefix>checkpoints     one row per checkpoint: skeleton and exact metadata
                            as BYTEA, a filterable JSONB copy of the metadata
                            (GIN jsonb_path_ops), the channel versions as JSONB
    <prefix>blobs           one row per (thread, namespace, channel, version);
                            list deltas name their base (checked by ``put``)
    <prefix>writes          pending writes, keyed by (checkpoint, task, idx)
    <prefix>threads         one summary row per thread, kept current by every
                            write, so ``list_threads`` and ``sweep`` never read
                            checkpoints
    <prefix>put, <prefix>get_tuple
                            PL/pgSQL functions running the hot operations with
                            cached plans (versions 2 to 4, see `_functions`)

Text keys use ``COLLATE "C"`` so that ordering and ``min``/``max`` match
Python's string order whatever the database's default collation.

`MIGRATIONS[n - 1]` brings a database from version ``n - 1`` to ``n``;
`SCHEMA_VERSION` is the newest. A database stamped with a higher version was
written by a newer checkpointkit and is refused (`SchemaVersionError`).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

from psycopg import sql

from checkpointkit.checkpointers.postgres._functions import (
    FUNCTIONS,
    GET_TUPLE_V3,
    PUT_V3,
    PUT_V4,
)
from checkpointkit.errors import ConfigurationError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Names", "thread_lock", "writer_lock"]

_TABLES = ("schema_version", "checkpoints", "blobs", "writes", "threads")
_INDEXES = (
    "checkpoints_metadata_gin",
    "checkpoints_order_idx",
    "checkpoints_run_id_idx",
    "blobs_chain_idx",
    "blobs_base_idx",
    "blobs_base_fkey",
    "threads_updated_idx",
    "threads_metadata_gin",
    "threads_touched_idx",
)
_FUNCTIONS = ("put", "get_tuple")
_MAX_IDENTIFIER = 63  # NAMEDATALEN - 1: PostgreSQL truncates longer names


@dataclass(frozen=True)
class Names:
    """The identifiers of one saver's tables, from its schema and table prefix.

    Args:
        schema: Schema holding the tables (created by ``setup`` if missing).
        prefix: Prefix of every table and index name.

    Raises:
        ConfigurationError: a name is empty, holds a NUL, or would be longer
            than PostgreSQL's 63-byte identifier limit.
    """

    schema: str
    prefix: str

    def __post_init__(self) -> None:
        if not isinstance(self.schema, str) or not self.schema:
            raise ConfigurationError(f"schema must be a non-empty string, got {self.schema!r}")
        if not isinstance(self.prefix, str):
            raise ConfigurationError(f"table_prefix must be a string, got {self.prefix!r}")
        for what, name in [("schema", self.schema)] + [
            ("table_prefix", self.prefix + suffix) for suffix in _TABLES + _INDEXES + _FUNCTIONS
        ]:
            if "\x00" in name:
                raise ConfigurationError(f"{what} {name!r} contains a NUL character")
            if len(name.encode()) > _MAX_IDENTIFIER:
                raise ConfigurationError(
                    f"{what} makes the identifier {name!r} longer than PostgreSQL's "
                    f"{_MAX_IDENTIFIER}-byte limit; choose a shorter one"
                )

    def table(self, name: str) -> sql.Identifier:
        """Return the schema-qualified identifier of one of our tables or functions."""
        return sql.Identifier(self.schema, self.prefix + name)

    def index(self, name: str) -> sql.Identifier:
        """Return the (unqualified) identifier of one of our indexes or constraints."""
        return sql.Identifier(self.prefix + name)

    def identifiers(self) -> dict[str, sql.Composable]:
        """Return the placeholders every statement template may use."""
        return {
            "schema": sql.Identifier(self.schema),
            # As text, for the rare DDL that must build a statement on the server.
            "schema_name": sql.Literal(self.schema),
            "prefix_name": sql.Literal(self.prefix),
            "version_table": self.table("schema_version"),
            "checkpoints": self.table("checkpoints"),
            "blobs": self.table("blobs"),
            "writes": self.table("writes"),
            "threads": self.table("threads"),
            **{name: self.index(name) for name in _INDEXES},
            **{f"fn_{name}": self.table(name) for name in _FUNCTIONS},
        }

    def compose(self, template: str, **parts: sql.Composable) -> sql.Composed:
        """Compose a statement template with our identifiers and the given fragments."""
        return sql.SQL(template).format(**self.identifiers(), **parts)  # type: ignore[arg-type]

    def render(self, template: str, **parts: sql.Composable) -> bytes:
        """Return a statement template composed (see `compose`), ready to execute."""
        return self.compose(template, **parts).as_bytes(None)

    @property
    def table_names(self) -> list[str]:
        """The unqualified names of our tables (for ``disk_bytes``)."""
        return [self.prefix + name for name in _TABLES]

    @property
    def setup_lock(self) -> int:
        """The ``pg_advisory_xact_lock`` key serialising ``setup`` of these tables."""
        digest = hashlib.blake2b(
            f"checkpointkit-setup\x00{self.schema}\x00{self.prefix}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big", signed=True)

    @property
    def lock_class(self) -> int:
        """The first key of the per-thread advisory locks of these tables."""
        return _int4(zlib.crc32(f"checkpointkit\x00{self.schema}\x00{self.prefix}".encode()))


def thread_lock(thread_id: str) -> int:
    """Return the second key of a thread's advisory lock (collisions only cost waiting)."""
    return _int4(zlib.crc32(thread_id.encode("utf-8", "surrogatepass")))


def writer_lock(names: Names, thread_id: str, ns: str) -> int:
    """Return the ``pg_advisory_xact_lock`` key of the single-writer guard of a namespace.

    A one-key (int8) lock: PostgreSQL keeps those apart from the two-key
    thread locks, so the guard never waits on maintenance or the reverse.
    """
    text = f"checkpointkit-writer\x00{names.schema}\x00{names.prefix}\x00{thread_id}\x00{ns}"
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _int4(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


SCHEMA_VERSION = 4

BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {version_table} (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

_V1 = """
CREATE TABLE {checkpoints} (
    thread_id text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL,
    checkpoint_id text COLLATE "C" NOT NULL,
    parent_id text COLLATE "C",
    run_id text COLLATE "C",
    ts text COLLATE "C" NOT NULL,
    skeleton bytea NOT NULL,
    metadata bytea NOT NULL,
    metadata_idx jsonb NOT NULL,
    versions jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
CREATE INDEX {checkpoints_metadata_gin} ON {checkpoints} USING gin (metadata_idx jsonb_path_ops);
CREATE INDEX {checkpoints_run_id_idx} ON {checkpoints} (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE {blobs} (
    thread_id text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL,
    channel text COLLATE "C" NOT NULL,
    version text COLLATE "C" NOT NULL,
    kind smallint NOT NULL,
    type text,
    payload bytea,
    chain text COLLATE "C",
    seq integer NOT NULL DEFAULT 0,
    base text COLLATE "C",
    ops bytea,
    length integer NOT NULL DEFAULT 0,
    wrapped boolean NOT NULL DEFAULT false,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version),
    CONSTRAINT {blobs_base_fkey} FOREIGN KEY (thread_id, checkpoint_ns, channel, base)
        REFERENCES {blobs} (thread_id, checkpoint_ns, channel, version)
);
CREATE INDEX {blobs_chain_idx} ON {blobs} (thread_id, checkpoint_ns, channel, chain, seq)
    WHERE chain IS NOT NULL;
CREATE INDEX {blobs_base_idx} ON {blobs} (thread_id, checkpoint_ns, channel, base)
    WHERE base IS NOT NULL;

CREATE TABLE {writes} (
    thread_id text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL,
    checkpoint_id text COLLATE "C" NOT NULL,
    task_id text COLLATE "C" NOT NULL,
    idx integer NOT NULL,
    task_path text COLLATE "C" NOT NULL,
    channel text NOT NULL,
    type text NOT NULL,
    payload bytea NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);

CREATE TABLE {threads} (
    thread_id text COLLATE "C" PRIMARY KEY,
    checkpoint_count integer NOT NULL,
    total_count integer NOT NULL,
    first_id text COLLATE "C",
    created_at text COLLATE "C",
    latest_id text COLLATE "C",
    updated_at text COLLATE "C",
    metadata bytea,
    metadata_idx jsonb,
    touched_at timestamptz NOT NULL DEFAULT now(),
    swept_count integer
);
CREATE INDEX {threads_updated_idx} ON {threads} (updated_at, thread_id) WHERE checkpoint_count > 0;
CREATE INDEX {threads_metadata_gin} ON {threads} USING gin (metadata_idx jsonb_path_ops);
CREATE INDEX {threads_touched_idx} ON {threads} (touched_at)
"""

# Version 2: the hot operations as functions with cached plans (`_functions`),
# and the index of ``list`` across the namespaces of a thread, newest first
# (without it each page sorts every checkpoint of the thread).
_V2 = ";\n".join(
    (
        *FUNCTIONS,
        "CREATE INDEX {checkpoints_order_idx} "
        "ON {checkpoints} (thread_id, checkpoint_id, checkpoint_ns)",
    )
)

# Version 3: ``put`` checks delta bases itself and enforces the single-writer
# guard, and both hot functions take their rows as JSON instead of arrays
# (`_functions.PUT_V3`, `GET_TUPLE_V3`); the foreign key on delta bases goes, and with
# it the index it needed (one entry per delta) and a check per deleted value;
# the checkpoints' ``created_at``, never read, goes too.
_V3 = ";\n".join(
    (
        PUT_V3,
        GET_TUPLE_V3,
        "ALTER TABLE {blobs} DROP CONSTRAINT IF EXISTS {blobs_base_fkey}",
        "DROP INDEX IF EXISTS {schema}.{blobs_base_idx}",
        "ALTER TABLE {checkpoints} DROP COLUMN IF EXISTS created_at",
    )
)

# Version 4: ``put`` checks delta bases inside the INSERT of the values
# (`_functions.PUT_V4`), and the byte columns (values, skeletons, metadata,
# writes) compress with lz4 where the server has it (PostgreSQL 14+ built with
# it). Measured on 40 kB values of source text: inserts 3-6x and reads of
# the whole value 4-8x faster than the default pglz, stored in 0.42 of the
# raw size instead of 0.35. Only rows over TOAST's threshold (~2 kB) are ever
# compressed, whatever the method or ``toast_tuple_target``. Values stored
# before keep their compression; older workers see no difference.
_LZ4_COMPRESSION = """
DO $do$
DECLARE
    v_column record;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN
        -- Dynamic SQL: before version 14 the server cannot parse SET COMPRESSION.
        FOR v_column IN SELECT * FROM (VALUES
            ('checkpoints', 'skeleton'), ('checkpoints', 'metadata'), ('blobs', 'payload'),
            ('blobs', 'ops'), ('writes', 'payload'), ('threads', 'metadata')) AS c(tbl, col)
        LOOP
            EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN %I SET COMPRESSION lz4',
                           {schema_name}, {prefix_name} || v_column.tbl, v_column.col);
        END LOOP;
    END IF;
END
$do$"""
_V4 = ";\n".join((PUT_V4, _LZ4_COMPRESSION))

# One entry per schema version, applied in order inside `setup`'s transaction.
# Never edit a released entry: append a new one (and bump SCHEMA_VERSION).
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4)

if len(MIGRATIONS) != SCHEMA_VERSION:  # pragma: no cover - a packaging mistake
    raise RuntimeError("SCHEMA_VERSION must equal the number of MIGRATIONS")
