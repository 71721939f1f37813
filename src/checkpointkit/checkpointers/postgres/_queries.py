"""Every SQL statement of the PostgreSQL checkpointer, rendered once per saver.

Templates name tables as ``{checkpoints}``, ``{blobs}``... and are composed
with `psycopg.sql.Identifier`s by `_schema.Names`; values always travel as
query parameters (``%(name)s``). No statement depends on the connection, so
both the async saver and its generated sync twin execute these bytes as-is.

Reads that rebuild checkpoints (``get_tuple``, a ``list`` page, the ancestor
walk of ``get_delta_channel_history``, a copy between threads) are one
statement each returning one *row stream* (`_ROW_STREAM`): checkpoint rows,
the blob rows they need (their channel versions and, for list deltas, the
rows of each delta chain up to that version) and their pending writes, all
in one column layout, told apart by the first column (0, 1, 2) and decoded
by `_codec.decode_rows`. ``put`` calls the function of schema version 4,
``get_tuple`` that of version 3 (`_functions`), whose plans each session caches.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from psycopg import sql

from checkpointkit.checkpointers.postgres._functions import GET_TUPLE_CALL, PUT_CALL
from checkpointkit.checkpointers.postgres._schema import BOOTSTRAP, MIGRATIONS, Names

__all__ = ["ListShape", "Queries"]

# The tail of every row-stream statement. Expects CTEs `page` (checkpoint
# rows, with an `ord` column) and `keys` (thread_id, checkpoint_ns, channel,
# version: the blob keys to read), and a `{write_filter}` on `w`. Every blob
# and write is looked up through an index from a LATERAL subquery that the
# planner cannot flatten (LIMIT / OFFSET), so the plan never depends on row
# estimates: with stale statistics a join may otherwise hash a whole
# thread's values to find the ten a checkpoint needs.
_ROW_STREAM = """
own AS (
    SELECT b.*
    FROM (SELECT DISTINCT thread_id, checkpoint_ns, channel, version FROM keys) k
    CROSS JOIN LATERAL (
        SELECT * FROM {blobs} b
        WHERE b.thread_id = k.thread_id AND b.checkpoint_ns = k.checkpoint_ns
          AND b.channel = k.channel AND b.version = k.version
        LIMIT 1
    ) b
),
chains AS (
    SELECT c.* FROM (
        SELECT thread_id, checkpoint_ns, channel, chain, max(seq) AS seq
        FROM own WHERE kind = 3 AND {chain_rows}
        GROUP BY thread_id, checkpoint_ns, channel, chain
    ) c
    {unheld}
)
SELECT 0 AS r, p.thread_id, p.checkpoint_ns, p.checkpoint_id, p.parent_id, p.run_id, p.ts,
       NULL::text, p.ord::int4, NULL::int4, NULL::int4, NULL::bool, p.skeleton, p.metadata
FROM page p
UNION ALL
SELECT 1, b.thread_id, b.checkpoint_ns, b.channel, b.version, b.type, b.chain, b.base,
       b.kind::int4, b.seq, b.length, b.wrapped, b.payload, b.ops
FROM own b
UNION ALL
SELECT 1, b.thread_id, b.checkpoint_ns, b.channel, b.version, b.type, b.chain, b.base,
       b.kind::int4, b.seq, b.length, b.wrapped, b.payload, b.ops
FROM chains c CROSS JOIN LATERAL (
    SELECT * FROM {blobs} b
    WHERE b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns
      AND b.channel = c.channel AND b.chain = c.chain AND b.seq < c.seq
    OFFSET 0
) b
WHERE NOT EXISTS (
    SELECT 1 FROM own o
    WHERE o.thread_id = b.thread_id AND o.checkpoint_ns = b.checkpoint_ns
      AND o.channel = b.channel AND o.version = b.version
)
UNION ALL
SELECT 2, w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path, w.channel,
       w.type, w.idx, NULL, NULL, NULL, w.payload, NULL
FROM page p CROSS JOIN LATERAL (
    SELECT * FROM {writes} w
    WHERE w.thread_id = p.thread_id AND w.checkpoint_ns = p.checkpoint_ns
      AND w.checkpoint_id = p.checkpoint_id {write_filter}
    OFFSET 0
) w
"""

# A `list` page leaves out the chain rows of the list versions the reader
# holds: those of its cache, and those it rebuilt on the pages before. A
# held version of the same chain at the same position or later lets the
# reader slice the page's versions out of it (`ListMemo.seed_prefixes`);
# when it cannot (a fork, an edit), it reads the page again naming none.
_UNHELD = """WHERE NOT EXISTS (
    SELECT 1 FROM unnest(%(held_threads)s::text[], %(held_namespaces)s::text[],
                         %(held_channels)s::text[], %(held_chains)s::text[],
                         %(held_seqs)s::int4[]) AS h(thread_id, checkpoint_ns, channel, chain, seq)
    WHERE h.thread_id = c.thread_id AND h.checkpoint_ns = c.checkpoint_ns
      AND h.channel = c.channel AND h.chain = c.chain AND h.seq >= c.seq
)"""

_CHECKPOINT_COLUMNS = (
    "thread_id, checkpoint_ns, checkpoint_id, parent_id, run_id, ts, skeleton, metadata, versions"
)
# What a stored row becomes when the same key is written again: the new row.
_REPLACE = {
    "replace_blob": """ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO UPDATE SET
    kind = EXCLUDED.kind, type = EXCLUDED.type, payload = EXCLUDED.payload,
    chain = EXCLUDED.chain, seq = EXCLUDED.seq, base = EXCLUDED.base, ops = EXCLUDED.ops,
    length = EXCLUDED.length, wrapped = EXCLUDED.wrapped""",
    "replace_checkpoint": """ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
    parent_id = EXCLUDED.parent_id, run_id = EXCLUDED.run_id, ts = EXCLUDED.ts,
    skeleton = EXCLUDED.skeleton, metadata = EXCLUDED.metadata,
    metadata_idx = EXCLUDED.metadata_idx, versions = EXCLUDED.versions""",
    "replace_write": """
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET
    task_path = EXCLUDED.task_path, channel = EXCLUDED.channel, type = EXCLUDED.type,
    payload = EXCLUDED.payload""",
}
_NO_WRITE_FILTER = ""
_DELTA_WRITE_FILTER = "AND w.channel = ANY(%(channels)s::text[])"

# Blob keys of a page: every channel version its checkpoints reference.
_PAGE_KEYS = """
keys AS (
    SELECT p.thread_id, p.checkpoint_ns, v.channel, v.version
    FROM page p CROSS JOIN LATERAL jsonb_each_text(p.versions) AS v(channel, version)
),
"""

# A task's writes: ordinary ones (idx >= 0) first-wins, special ones replaced.
# Rows are bound one by one (not unnested from arrays), which plans in tens
# of microseconds and spares the client the cost of dumping arrays.
_WRITE_COLUMNS = (
    "thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, payload"
)
_WRITE_ROW = (
    "(%(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(task_id)s, %(task_path)s, "
    "%(idx{i})s::int4, %(channel{i})s, %(type{i})s, %(payload{i})s::bytea)"
)
_WRITES_KEEP = """INSERT INTO {writes} ({columns}) VALUES {rows}
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING"""
_WRITES_REPLACE = """INSERT INTO {writes} ({columns}) VALUES {rows}
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET
    task_path = EXCLUDED.task_path, channel = EXCLUDED.channel, type = EXCLUDED.type,
    payload = EXCLUDED.payload"""

_EXISTING_BASES = """
SELECT channel, version FROM {blobs}
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
  AND (channel, version) IN (SELECT * FROM unnest(%(channels)s::text[], %(versions)s::text[]))
"""

# The ancestors of a checkpoint, walked once for all channels: each step keeps
# the channels not yet seeded (no stored, non-empty value at that ancestor),
# and the walk stops when none is left.
_DELTA_HISTORY = """
WITH RECURSIVE target AS (
    SELECT parent_id FROM {checkpoints}
    WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
      AND (%(checkpoint_id)s::text IS NULL OR checkpoint_id = %(checkpoint_id)s)
    ORDER BY checkpoint_id DESC LIMIT 1
),
walk AS (
    SELECT c.checkpoint_id, c.parent_id, c.versions, %(channels)s::text[] AS remaining,
           1 AS depth
    FROM target t JOIN {checkpoints} c
      ON c.thread_id = %(thread_id)s AND c.checkpoint_ns = %(checkpoint_ns)s
     AND c.checkpoint_id = t.parent_id
  UNION ALL
    SELECT c.checkpoint_id, c.parent_id, c.versions, n.remaining, w.depth + 1
    FROM walk w
    CROSS JOIN LATERAL (
        SELECT ARRAY(
            SELECT ch FROM unnest(w.remaining) AS ch
            WHERE NOT EXISTS (
                SELECT 1 FROM {blobs} b
                WHERE b.thread_id = %(thread_id)s AND b.checkpoint_ns = %(checkpoint_ns)s
                  AND b.channel = ch AND b.version = w.versions ->> ch AND b.kind <> 1
            )
        ) AS remaining
    ) n
    JOIN {checkpoints} c
      ON c.thread_id = %(thread_id)s AND c.checkpoint_ns = %(checkpoint_ns)s
     AND c.checkpoint_id = w.parent_id
    WHERE cardinality(n.remaining) > 0 AND w.depth < %(max_depth)s
),
page AS (
    SELECT c.*, w.depth AS ord, w.remaining
    FROM walk w JOIN {checkpoints} c
      ON c.thread_id = %(thread_id)s AND c.checkpoint_ns = %(checkpoint_ns)s
     AND c.checkpoint_id = w.checkpoint_id
),
keys AS (
    SELECT p.thread_id, p.checkpoint_ns, ch AS channel, p.versions ->> ch AS version
    FROM page p CROSS JOIN LATERAL unnest(p.remaining) AS ch
),
{row_stream}
"""

# Rows to copy to another thread: the selected checkpoints (all of the
# thread when `everything`), their writes, and the blobs they reference with
# the bases of list deltas, recursively (the rows `StorageCore.live_blobs` keeps).
_LIVE_KEYS = """
keys AS (
    WITH RECURSIVE live(thread_id, checkpoint_ns, channel, version) AS (
        SELECT p.thread_id, p.checkpoint_ns, v.channel COLLATE "C", v.version COLLATE "C"
        FROM page p CROSS JOIN LATERAL jsonb_each_text(p.versions) AS v(channel, version)
      UNION
        SELECT b.thread_id, b.checkpoint_ns, b.channel, b.base
        FROM live l JOIN {blobs} b
          ON b.thread_id = l.thread_id AND b.checkpoint_ns = l.checkpoint_ns
         AND b.channel = l.channel AND b.version = l.version
        WHERE b.base IS NOT NULL
    )
    SELECT * FROM live
),
"""

_SELECTED = """
page AS (
    SELECT {columns}, 0 AS ord FROM {checkpoints}
    WHERE thread_id = %(source)s AND (%(everything)s OR (checkpoint_ns, checkpoint_id) IN (
        SELECT * FROM unnest(%(namespaces)s::text[], %(checkpoint_ids)s::text[])))
),
"""

# With no chain rows added (`chain_rows` false), the row stream of the live
# keys returns exactly the blobs `StorageCore.live_blobs` keeps.
_COPY_ROWS = "WITH {selected} {live_keys} {row_stream}"

_COPY_IN_SQL = """
WITH {selected} {live_keys}
new_checkpoints AS (
    INSERT INTO {checkpoints} AS c (thread_id, checkpoint_ns, checkpoint_id, parent_id, run_id,
                                    ts, skeleton, metadata, metadata_idx, versions)
    SELECT %(target)s, s.checkpoint_ns, s.checkpoint_id, s.parent_id, s.run_id, s.ts,
           s.skeleton, s.metadata, s.metadata_idx, s.versions
    FROM page p JOIN {checkpoints} s
      ON s.thread_id = p.thread_id AND s.checkpoint_ns = p.checkpoint_ns
     AND s.checkpoint_id = p.checkpoint_id
    {replace_checkpoint}
),
new_writes AS (
    INSERT INTO {writes} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx,
                          channel, type, payload)
    SELECT %(target)s, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path, w.idx,
           w.channel, w.type, w.payload
    FROM page p JOIN {writes} w
      ON w.thread_id = p.thread_id AND w.checkpoint_ns = p.checkpoint_ns
     AND w.checkpoint_id = p.checkpoint_id
    {replace_write}
)
INSERT INTO {blobs} AS b (thread_id, checkpoint_ns, channel, version, kind, type, payload,
                          chain, seq, base, ops, length, wrapped)
SELECT %(target)s, s.checkpoint_ns, s.channel, s.version, s.kind, s.type, s.payload, s.chain,
       s.seq, s.base, s.ops, s.length, s.wrapped
FROM keys k JOIN {blobs} s
  ON s.thread_id = k.thread_id AND s.checkpoint_ns = k.checkpoint_ns
 AND s.channel = k.channel AND s.version = k.version
{replace_blob}
"""

_INSERT_CHECKPOINTS = """
INSERT INTO {checkpoints} AS c (thread_id, checkpoint_ns, checkpoint_id, parent_id, run_id, ts,
                                skeleton, metadata, metadata_idx, versions)
SELECT %(target)s, s.checkpoint_ns, s.checkpoint_id, s.parent_id, s.run_id, s.ts, s.skeleton,
       s.metadata, s.metadata_idx, s.versions
FROM {checkpoints} s
WHERE s.thread_id = %(source)s AND (s.checkpoint_ns, s.checkpoint_id) IN (
    SELECT * FROM unnest(%(namespaces)s::text[], %(checkpoint_ids)s::text[]))
{replace_checkpoint}
"""

_INSERT_BLOBS = """
INSERT INTO {blobs} AS b (thread_id, checkpoint_ns, channel, version, kind, type, payload,
                          chain, seq, base, ops, length, wrapped)
SELECT %(target)s, r.* FROM unnest(
    %(namespaces)s::text[], %(channels)s::text[], %(versions)s::text[], %(kinds)s::int2[],
    %(types)s::text[], %(payloads)s::bytea[], %(chains)s::text[], %(seqs)s::int4[],
    %(bases)s::text[], %(ops)s::bytea[], %(lengths)s::int4[], %(wrapped)s::bool[]) AS r
{replace_blob}
"""

_INSERT_WRITES = """
INSERT INTO {writes} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel,
                      type, payload)
SELECT %(target)s, r.* FROM unnest(
    %(namespaces)s::text[], %(checkpoint_ids)s::text[], %(task_ids)s::text[],
    %(task_paths)s::text[], %(idx)s::int4[], %(channels)s::text[], %(types)s::text[],
    %(payloads)s::bytea[]) AS r
{replace_write}
"""

_THREAD_EXISTS = """
SELECT EXISTS (SELECT 1 FROM {checkpoints} WHERE thread_id = %(thread_id)s)
    OR EXISTS (SELECT 1 FROM {writes} WHERE thread_id = %(thread_id)s)
"""

# Checkpoint rows of threads, without values: what pruning and forking decide on.
_THREAD_ROWS = """
SELECT thread_id, checkpoint_ns, checkpoint_id, parent_id, run_id, ts, skeleton, metadata
FROM {checkpoints} WHERE thread_id = ANY(%(thread_ids)s::text[])
"""

_THREAD_BLOB_KINDS = """
SELECT thread_id, checkpoint_ns, channel, version, kind
FROM {blobs} WHERE thread_id = ANY(%(thread_ids)s::text[])
"""

# Keys come sorted (by the caller), so two lockers never wait on each other in a cycle.
_LOCK_THREADS = """
SELECT count(pg_advisory_xact_lock(%(lock_a)s::int4, k)) FROM unnest(%(lock_b)s::int4[]) AS k
"""

_TRY_LOCK_THREADS = """
SELECT t FROM unnest(%(thread_ids)s::text[], %(lock_b)s::int4[]) AS u(t, k)
WHERE pg_try_advisory_xact_lock(%(lock_a)s::int4, k)
"""

_RUN_THREADS = """
SELECT DISTINCT thread_id FROM {checkpoints} WHERE run_id = ANY(%(run_ids)s::text[])
"""

# Deleting checkpoints takes their writes along; the (thread, namespace) pairs
# touched are returned for `_COLLECT`.
_DELETE_CHECKPOINTS = """
WITH doomed AS (
    DELETE FROM {checkpoints} c
    USING unnest(%(thread_ids)s::text[], %(namespaces)s::text[], %(checkpoint_ids)s::text[])
        AS d(thread_id, checkpoint_ns, checkpoint_id)
    WHERE c.thread_id = d.thread_id AND c.checkpoint_ns = d.checkpoint_ns
      AND c.checkpoint_id = d.checkpoint_id
    RETURNING c.thread_id, c.checkpoint_ns, c.checkpoint_id
),
gone_writes AS (
    DELETE FROM {writes} w USING doomed d
    WHERE w.thread_id = d.thread_id AND w.checkpoint_ns = d.checkpoint_ns
      AND w.checkpoint_id = d.checkpoint_id
)
SELECT DISTINCT thread_id, checkpoint_ns FROM doomed
"""

_DELETE_RUNS = """
WITH doomed AS (
    DELETE FROM {checkpoints} c
    WHERE c.run_id = ANY(%(run_ids)s::text[]) AND c.thread_id = ANY(%(thread_ids)s::text[])
    RETURNING c.thread_id, c.checkpoint_ns, c.checkpoint_id
),
gone_writes AS (
    DELETE FROM {writes} w USING doomed d
    WHERE w.thread_id = d.thread_id AND w.checkpoint_ns = d.checkpoint_ns
      AND w.checkpoint_id = d.checkpoint_id
)
SELECT DISTINCT thread_id, checkpoint_ns FROM doomed
"""

# Reference-aware garbage collection of the namespaces that lost checkpoints:
# a blob survives when a remaining checkpoint references it, directly or as
# the base (recursively) of a list delta it references.
_COLLECT = """
WITH RECURSIVE spaces AS (
    SELECT * FROM unnest(%(thread_ids)s::text[], %(namespaces)s::text[])
        AS s(thread_id, checkpoint_ns)
),
live(thread_id, checkpoint_ns, channel, version) AS (
    SELECT c.thread_id, c.checkpoint_ns, v.channel COLLATE "C", v.version COLLATE "C"
    FROM spaces s JOIN {checkpoints} c
      ON c.thread_id = s.thread_id AND c.checkpoint_ns = s.checkpoint_ns
    CROSS JOIN LATERAL jsonb_each_text(c.versions) AS v(channel, version)
  UNION
    SELECT b.thread_id, b.checkpoint_ns, b.channel, b.base
    FROM live l JOIN {blobs} b
      ON b.thread_id = l.thread_id AND b.checkpoint_ns = l.checkpoint_ns
     AND b.channel = l.channel AND b.version = l.version
    WHERE b.base IS NOT NULL
)
DELETE FROM {blobs} b USING spaces s
WHERE b.thread_id = s.thread_id AND b.checkpoint_ns = s.checkpoint_ns
  AND NOT EXISTS (
    SELECT 1 FROM live l
    WHERE l.thread_id = b.thread_id AND l.checkpoint_ns = b.checkpoint_ns
      AND l.channel = b.channel AND l.version = b.version
  )
"""

_DELETE_THREADS = """
WITH gone_checkpoints AS (
    DELETE FROM {checkpoints} WHERE thread_id = ANY(%(thread_ids)s::text[])
),
gone_writes AS (
    DELETE FROM {writes} WHERE thread_id = ANY(%(thread_ids)s::text[])
),
gone_blobs AS (
    DELETE FROM {blobs} WHERE thread_id = ANY(%(thread_ids)s::text[])
)
DELETE FROM {threads} WHERE thread_id = ANY(%(thread_ids)s::text[])
"""

# Recompute the summary rows of threads from their checkpoints (after a
# deletion or a copy); a thread with no checkpoint left loses its row.
_REFRESH_THREADS = """
WITH agg AS (
    SELECT i.thread_id,
           count(c.checkpoint_id) FILTER (WHERE c.checkpoint_ns = '') AS root_count,
           count(c.checkpoint_id) AS total_count,
           min(c.checkpoint_id) FILTER (WHERE c.checkpoint_ns = '') AS first_id,
           max(c.checkpoint_id) FILTER (WHERE c.checkpoint_ns = '') AS latest_id
    FROM unnest(%(thread_ids)s::text[]) AS i(thread_id)
    LEFT JOIN {checkpoints} c ON c.thread_id = i.thread_id
    GROUP BY i.thread_id
),
gone AS (
    DELETE FROM {threads} t USING agg a WHERE t.thread_id = a.thread_id AND a.total_count = 0
)
INSERT INTO {threads} AS t (thread_id, checkpoint_count, total_count, first_id, created_at,
                            latest_id, updated_at, metadata, metadata_idx)
SELECT a.thread_id, a.root_count, a.total_count, a.first_id, f.ts, a.latest_id, l.ts,
       l.metadata, l.metadata_idx
FROM agg a
LEFT JOIN {checkpoints} f
  ON f.thread_id = a.thread_id AND f.checkpoint_ns = '' AND f.checkpoint_id = a.first_id
LEFT JOIN {checkpoints} l
  ON l.thread_id = a.thread_id AND l.checkpoint_ns = '' AND l.checkpoint_id = a.latest_id
WHERE a.total_count > 0
ON CONFLICT (thread_id) DO UPDATE SET
    checkpoint_count = EXCLUDED.checkpoint_count, total_count = EXCLUDED.total_count,
    first_id = EXCLUDED.first_id, created_at = EXCLUDED.created_at,
    latest_id = EXCLUDED.latest_id, updated_at = EXCLUDED.updated_at,
    metadata = EXCLUDED.metadata, metadata_idx = EXCLUDED.metadata_idx
"""

_LIST_THREADS = """
SELECT thread_id, checkpoint_count, created_at, updated_at, metadata FROM {threads}
WHERE checkpoint_count > 0
  AND (%(filter)s::jsonb IS NULL OR metadata_idx @> %(filter)s::jsonb)
  AND (%(after_updated)s::text IS NULL
       OR (updated_at, thread_id) < (%(after_updated)s::text, %(after_thread)s::text))
ORDER BY updated_at DESC, thread_id DESC
LIMIT %(page_size)s
"""

# Candidates of a sweep, claimed without waiting: a thread another worker
# sweeps (or a writer holds) is skipped, not waited for.
_EXPIRED_THREADS = """
SELECT thread_id FROM {threads}
WHERE touched_at < now() - make_interval(secs => %(ttl)s)
  AND thread_id <> ALL(%(skip)s::text[])
ORDER BY touched_at
LIMIT %(batch)s
FOR UPDATE SKIP LOCKED
"""

_OVERGROWN_THREADS = """
SELECT thread_id FROM {threads}
WHERE total_count > %(keep_last)s AND swept_count IS DISTINCT FROM total_count
  AND thread_id <> ALL(%(skip)s::text[])
LIMIT %(batch)s
FOR UPDATE SKIP LOCKED
"""

_MARK_SWEPT = """
UPDATE {threads} SET swept_count = total_count WHERE thread_id = ANY(%(thread_ids)s::text[])
"""

_STORAGE_BYTES = """
SELECT
  (SELECT coalesce(sum(octet_length(skeleton) + octet_length(metadata) + 108), 0)
   FROM {checkpoints} WHERE %(thread_id)s::text IS NULL OR thread_id = %(thread_id)s)
+ (SELECT coalesce(sum(coalesce(octet_length(payload), 0) + coalesce(octet_length(ops), 0)
                       + char_length(channel) + char_length(version)
                       + coalesce(char_length(base), 0) + 16), 0)
   FROM {blobs} WHERE %(thread_id)s::text IS NULL OR thread_id = %(thread_id)s)
+ (SELECT coalesce(sum(octet_length(payload) + char_length(channel) + char_length(task_id) + 16),
                   0)
   FROM {writes} WHERE %(thread_id)s::text IS NULL OR thread_id = %(thread_id)s)
"""

_DISK_BYTES = """
SELECT coalesce(sum(pg_total_relation_size(format('%%I.%%I', %(schema)s::text, t)::regclass)), 0)
FROM unnest(%(tables)s::text[]) AS t
WHERE to_regclass(format('%%I.%%I', %(schema)s::text, t)) IS NOT NULL
"""

_SETUP_LOCK = "SELECT pg_advisory_xact_lock(%(key)s::int8)"
_TABLE_EXISTS = "SELECT to_regclass(format('%%I.%%I', %(schema)s::text, %(table)s::text))"
_SCHEMA_VERSION = "SELECT max(version) FROM {version_table}"
_STAMP_VERSION = "INSERT INTO {version_table} (version) VALUES (%(version)s)"


class ListShape(NamedTuple):
    """Which conditions a ``list`` page query has; one statement is rendered per shape."""

    thread: bool
    namespace: bool
    checkpoint_id: bool
    before: bool
    filter: bool
    cursor: bool  # keyset position after the previous page
    values: bool  # False: checkpoint rows only (``list_metadata``)
    held: bool = False  # no chain rows for the list versions named in ``held_*``


class Queries:
    """All statements of one saver, composed with its table identifiers."""

    def __init__(self, names: Names) -> None:
        self.names = names
        replace = {name: sql.SQL(text) for name, text in _REPLACE.items()}  # type: ignore[arg-type]

        def render(template: str, **parts: sql.Composable) -> bytes:
            return names.render(template, **replace, **parts)

        self.bootstrap = render(BOOTSTRAP)
        self.migrations = tuple(render(m) for m in MIGRATIONS)
        self.setup_lock = render(_SETUP_LOCK)
        self.table_exists = render(_TABLE_EXISTS)
        self.schema_version = render(_SCHEMA_VERSION)
        self.stamp_version = render(_STAMP_VERSION)
        # The hot operations call ``put`` of schema version 4 and ``get_tuple`` of 3.
        self.put = render(PUT_CALL)
        self.existing_bases = render(_EXISTING_BASES)
        self.get_tuple = render(GET_TUPLE_CALL)
        self.delta_history = render(
            _DELTA_HISTORY, **_fragments(names, _DELTA_WRITE_FILTER, chain_rows=True)
        )
        copy = _fragments(names, _NO_WRITE_FILTER, chain_rows=False)
        self.copy_rows = render(_COPY_ROWS, **copy)
        self.copy_in_sql = render(_COPY_IN_SQL, **copy)
        self.insert_checkpoints = render(_INSERT_CHECKPOINTS)
        self.insert_blobs = render(_INSERT_BLOBS)
        self.insert_writes = render(_INSERT_WRITES)
        self.thread_exists = render(_THREAD_EXISTS)
        self.thread_rows = render(_THREAD_ROWS)
        self.thread_blob_kinds = render(_THREAD_BLOB_KINDS)
        self.lock_threads = render(_LOCK_THREADS)
        self.try_lock_threads = render(_TRY_LOCK_THREADS)
        self.run_threads = render(_RUN_THREADS)
        self.delete_checkpoints = render(_DELETE_CHECKPOINTS)
        self.delete_runs = render(_DELETE_RUNS)
        self.collect = render(_COLLECT)
        self.delete_threads = render(_DELETE_THREADS)
        self.refresh_threads = render(_REFRESH_THREADS)
        self.list_threads = render(_LIST_THREADS)
        self.expired_threads = render(_EXPIRED_THREADS)
        self.overgrown_threads = render(_OVERGROWN_THREADS)
        self.mark_swept = render(_MARK_SWEPT)
        self.storage_bytes = render(_STORAGE_BYTES)
        self.disk_bytes = render(_DISK_BYTES)

    def list_page(self, shape: ListShape) -> bytes:
        """Return the statement of one ``list`` page with the conditions of `shape`."""
        return _list_page(self.names, shape)

    def put_writes(self, keep: int, replace: int) -> bytes:
        """Return the ``put_writes`` statement for `keep` ordinary and `replace` special rows.

        Rows are numbered from 0, ordinary ones first (`_codec.write_params`).
        """
        return _put_writes(self.names, keep, replace)


@lru_cache(maxsize=256)
def _put_writes(names: Names, keep: int, replace: int) -> bytes:
    def insert(template: str, numbers: range) -> sql.Composed:
        rows = ", ".join(_WRITE_ROW.format(i=i) for i in numbers)
        return names.compose(template, columns=sql.SQL(_WRITE_COLUMNS), rows=sql.SQL(rows))  # type: ignore[arg-type]

    kept = insert(_WRITES_KEEP, range(keep))
    replaced = insert(_WRITES_REPLACE, range(keep, keep + replace))
    if not replace:
        return kept.as_bytes(None)
    if not keep:
        return replaced.as_bytes(None)
    # Both kinds in one call (rare): one atomic statement all the same.
    return sql.SQL("WITH kept AS ({}) {}").format(kept, replaced).as_bytes(None)


_LIST_PAGE = """
SELECT {columns}, 0 AS ord FROM {checkpoints}
WHERE {conditions}
ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC
LIMIT %(page_size)s
"""

_LIST_PAGE_VALUES = "WITH page AS ({page}), {page_keys} {row_stream}"

_CONDITIONS = {
    "thread": "thread_id = %(thread_id)s",
    "namespace": "checkpoint_ns = %(checkpoint_ns)s",
    "checkpoint_id": "checkpoint_id = %(checkpoint_id)s",
    "before": "checkpoint_id < %(before)s",
    "filter": "metadata_idx @> %(filter)s::jsonb",
    "cursor": "(checkpoint_id, thread_id, checkpoint_ns)"
    " < (%(after_id)s::text, %(after_thread)s::text, %(after_ns)s::text)",
}


@lru_cache(maxsize=256)
def _list_page(names: Names, shape: ListShape) -> bytes:
    flags = shape._asdict()
    conditions = [sql.SQL(cond) for name, cond in _CONDITIONS.items() if flags[name]]  # type: ignore[arg-type]
    page = names.compose(
        _LIST_PAGE,
        columns=sql.SQL(_CHECKPOINT_COLUMNS),
        conditions=sql.SQL(" AND ").join(conditions or [sql.SQL("true")]),
    )
    if not shape.values:
        return page.as_bytes(None)
    return names.render(
        _LIST_PAGE_VALUES,
        page=page,
        **_fragments(names, _NO_WRITE_FILTER, chain_rows=True, unheld=shape.held),
    )


def _fragments(
    names: Names, write_filter: str, *, chain_rows: bool, unheld: bool = False
) -> dict[str, sql.Composable]:
    """Return the shared statement fragments, composed for `names`."""
    columns = sql.SQL(_CHECKPOINT_COLUMNS)
    return {
        "columns": columns,
        "page_keys": names.compose(_PAGE_KEYS),
        "live_keys": names.compose(_LIVE_KEYS),
        "selected": names.compose(_SELECTED, columns=columns),
        "row_stream": names.compose(
            _ROW_STREAM,
            write_filter=sql.SQL(write_filter),  # type: ignore[arg-type]
            chain_rows=sql.SQL("true" if chain_rows else "false"),
            unheld=sql.SQL(_UNHELD if unheld else ""),  # type: ignore[arg-type]
        ),
    }
