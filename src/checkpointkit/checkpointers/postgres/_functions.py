"""Server-side functions of the two heaviest operations: ``put`` and ``get_tuple``.

Why functions: a statement sent as text is parsed, analysed and planned on
every call, and for the one-statement CTEs these operations used to be, that
took most of the server's time (about 0.4 ms of a 0.5 ms ``put``; a
``get_tuple`` planned as a CTE costs 0.35-0.65 ms of server CPU, the function
0.11-0.16 ms). ``put_writes`` stays a plain multi-row ``INSERT``: it is cheap
to plan, and cheaper on the server than a function unpacking arrays. Client-side
prepared statements would cache the plans, but PgBouncer's transaction mode
cannot use them. A PL/pgSQL function caches the plans of its statements in
the session that runs it, wherever the call comes from: the call itself is a
one-line ``SELECT`` that plans in microseconds, and it still is one round
trip and one atomic statement on an autocommit connection.

Every statement in these bodies looks rows up by primary key (or by the
delta-chain index), so their generic plans are always the right ones: the
functions run with ``plan_cache_mode = force_generic_plan``, which skips the
five custom plans PostgreSQL would otherwise make first (and, measured on
``put``, a session that keeps re-planning every call, ~70 us each, when it
judges the generic plan costlier than the custom ones), and any plan whose
choice would depend on estimates (a hash join over a whole thread's values
when statistics are stale) is ruled out by ``LATERAL ... LIMIT 1`` lookups.
``get_tuple`` is ``STABLE``: its statements share one snapshot, so it reads
the checkpoint and its values as of one instant, as the single statement did.

The bodies are part of the schema versions (`_schema.MIGRATIONS`): version 2
created both, version 3 added a ``put`` and a ``get_tuple``, version 4 the
``put`` the saver calls now (overloads with other arguments; the older ones
stay for workers still running an older release). A later change is a new
migration. They name tables through the same placeholders as every statement
(`_schema.Names`), and share their common statements as fragments
(`_UPSERT_CHECKPOINT`, `_UPSERT_THREAD`...), so a fix is made once; the text
each released version installs is unchanged by that sharing.

Version 3's ``put`` also:

* checks that the base of every list delta it stores exists, after taking the
  thread's shared advisory lock (maintenance, which deletes values, holds it
  exclusively), and fails with ``foreign_key_violation`` when one is gone: the
  saver then stores those lists whole. A foreign key used to do this, at the
  cost of an index on every delta's base and a check on every deleted value;
* enforces the single-writer guard when given a guard key: it takes that
  (thread, namespace)'s exclusive advisory lock, reads the newest checkpoint id
  stored there, and refuses a put that does not build on it with SQLSTATE
  ``CK001`` (`WRITE_CONFLICT`), the newest id in the error's detail. The lock
  is held to the commit and the lookup runs after it, in a snapshot of its own
  (READ COMMITTED), so two puts on one namespace can never both pass.

Version 4's ``put`` does the same with fewer statements: each delta's base is
probed inside the ``INSERT`` of the values (a delta without its base is not
inserted), and only when the ``INSERT`` stored fewer rows than the caller sent
(``p_count``: a missing base, or a list row already stored) does the check
loop of version 3 run to tell which. That loop parsed the JSON rows a second
time and ran one statement per delta on every put: about a sixth of the
function's server time.
"""

from __future__ import annotations

import textwrap

__all__ = [
    "BLOB_FIELDS",
    "FUNCTIONS",
    "GET_TUPLE_CALL",
    "GET_TUPLE_V3",
    "PUT_CALL",
    "PUT_V3",
    "PUT_V4",
    "WRITE_CONFLICT",
]

#: The SQLSTATE of a put refused by the single-writer guard (a class of our own).
WRITE_CONFLICT = "CK001"

# -- fragments shared by the put functions (their text is part of released versions) --

_FUNCTION_END = """\
END
$fn$
"""

_PUT_OPTIONS = """\
) RETURNS void
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_inserted bool;
"""

_LOCK_THREAD = """\
    -- Shared with other writers, exclusive with maintenance of the same thread.
    PERFORM pg_advisory_xact_lock_shared(p_lock_a, p_lock_b);
"""

_GUARD = """\
    IF p_guard IS NOT NULL THEN
        -- One guarded put per (thread, namespace) at a time; the lookup below
        -- runs after the lock, so it sees the put that held it before.
        PERFORM pg_advisory_xact_lock(p_guard);
        SELECT max(x.checkpoint_id) INTO v_newest FROM {checkpoints} x
        WHERE x.thread_id = p_thread_id AND x.checkpoint_ns = p_ns;
        -- As `check_single_writer`: the same checkpoint again, or one building
        -- on the newest (or on a parent newer than anything stored), passes.
        IF v_newest IS NOT NULL AND v_newest <> p_checkpoint_id
           AND (p_parent_id IS NULL OR v_newest > p_parent_id COLLATE "C") THEN
            RAISE EXCEPTION USING ERRCODE = 'CK001', DETAIL = v_newest,
                MESSAGE = 'checkpointkit single-writer guard: a newer checkpoint is stored';
        END IF;
    END IF;
"""

# The value rows of a put from its JSON argument (`BLOB_FIELDS`).
_INSERT_BLOB_ROWS = """\
        -- `BLOB_FIELDS`; payload and ops are slices of p_data (length -1: NULL).
        INSERT INTO {blobs} AS b (thread_id, checkpoint_ns, channel, version, kind, type,
                                  payload, chain, seq, base, ops, length, wrapped)
        SELECT p_thread_id, p_ns, r.c, r.v, r.k, r.t,
               CASE WHEN r.pl >= 0 THEN substring(p_data FROM r.po + 1 FOR r.pl) END,
               r.ch, r.s, r.b,
               CASE WHEN r.ol >= 0 THEN substring(p_data FROM r.oo + 1 FOR r.ol) END,
               r.n, r.w
        FROM json_to_recordset(p_blobs) AS r(c text, v text, k int2, t text, ch text, s int4,
                                             b text, n int4, w bool, po int4, pl int4,
                                             oo int4, ol int4)
"""

_BLOB_CONFLICT = """\
        ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO UPDATE SET
            kind = EXCLUDED.kind, type = EXCLUDED.type, payload = EXCLUDED.payload,
            chain = EXCLUDED.chain, seq = EXCLUDED.seq, base = EXCLUDED.base,
            ops = EXCLUDED.ops, length = EXCLUDED.length, wrapped = EXCLUDED.wrapped
        -- A list row may be the base of later deltas: its version is unique per
        -- write, so the stored row already holds this value; keep it as it is.
        WHERE b.kind < 2;
"""

_CHECK_BASES = """\
        -- A delta whose base a prune deleted before this put took the lock
        -- would be unreadable: refuse it, as the foreign key of version 1 did.
        -- One primary-key probe per delta (a join could hash the thread's values).
        FOR v_base IN SELECT r.c, r.b FROM json_to_recordset(p_blobs) AS r(c text, b text)
                      WHERE r.b IS NOT NULL LOOP
            IF NOT EXISTS (
                SELECT 1 FROM {blobs} k
                WHERE k.thread_id = p_thread_id AND k.checkpoint_ns = p_ns
                  AND k.channel = v_base.c AND k.version = v_base.b)
            THEN
                RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
                    MESSAGE = 'checkpointkit: the base of a list delta is gone';
            END IF;
        END LOOP;
"""

_UPSERT_CHECKPOINT = """\
    INSERT INTO {checkpoints} AS c (thread_id, checkpoint_ns, checkpoint_id, parent_id,
                                    run_id, ts, skeleton, metadata, metadata_idx, versions)
    VALUES (p_thread_id, p_ns, p_checkpoint_id, p_parent_id, p_run_id, p_ts, p_skeleton,
            p_metadata, p_metadata_idx, p_versions)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
        parent_id = EXCLUDED.parent_id, run_id = EXCLUDED.run_id, ts = EXCLUDED.ts,
        skeleton = EXCLUDED.skeleton, metadata = EXCLUDED.metadata,
        metadata_idx = EXCLUDED.metadata_idx, versions = EXCLUDED.versions
    RETURNING (xmax = 0) INTO v_inserted;
"""

# The thread's summary row (`_schema`: ``<prefix>threads``), after the checkpoint
# upsert set ``v_inserted``: a new checkpoint is counted, a replaced one is not.
_UPSERT_THREAD = """\
    IF p_root THEN
        INSERT INTO {threads} AS t (thread_id, checkpoint_count, total_count, first_id,
                                    created_at, latest_id, updated_at, metadata, metadata_idx)
        VALUES (p_thread_id, v_inserted::int, v_inserted::int, p_checkpoint_id, p_ts,
                p_checkpoint_id, p_ts, p_metadata, p_metadata_idx)
        ON CONFLICT (thread_id) DO UPDATE SET
            checkpoint_count = t.checkpoint_count + EXCLUDED.checkpoint_count,
            total_count = t.total_count + EXCLUDED.total_count,
            first_id = CASE WHEN t.first_id IS NULL OR EXCLUDED.first_id <= t.first_id
                       THEN EXCLUDED.first_id ELSE t.first_id END,
            created_at = CASE WHEN t.first_id IS NULL OR EXCLUDED.first_id <= t.first_id
                         THEN EXCLUDED.created_at ELSE t.created_at END,
            latest_id = CASE WHEN t.latest_id IS NULL OR EXCLUDED.latest_id >= t.latest_id
                        THEN EXCLUDED.latest_id ELSE t.latest_id END,
            updated_at = CASE WHEN t.latest_id IS NULL OR EXCLUDED.latest_id >= t.latest_id
                         THEN EXCLUDED.updated_at ELSE t.updated_at END,
            metadata = CASE WHEN t.latest_id IS NULL OR EXCLUDED.latest_id >= t.latest_id
                       THEN EXCLUDED.metadata ELSE t.metadata END,
            metadata_idx = CASE WHEN t.latest_id IS NULL OR EXCLUDED.latest_id >= t.latest_id
                           THEN EXCLUDED.metadata_idx ELSE t.metadata_idx END,
            touched_at = now();
    ELSE  -- a subgraph's checkpoint: counted, never the thread's first or latest
        INSERT INTO {threads} AS t (thread_id, checkpoint_count, total_count)
        VALUES (p_thread_id, 0, v_inserted::int)
        ON CONFLICT (thread_id) DO UPDATE SET
            total_count = t.total_count + EXCLUDED.total_count, touched_at = now();
    END IF;
"""

# -- version 2 ----------------------------------------------------------------------

_PUT = (
    """
CREATE OR REPLACE FUNCTION {fn_put}(
    p_lock_a int4, p_lock_b int4, p_thread_id text, p_ns text, p_checkpoint_id text,
    p_parent_id text, p_run_id text, p_ts text, p_skeleton bytea, p_metadata bytea,
    p_metadata_idx jsonb, p_versions jsonb, p_root bool,
    p_channels text[], p_blob_versions text[], p_kinds int2[], p_types text[],
    p_payloads bytea[], p_chains text[], p_seqs int4[], p_bases text[], p_ops bytea[],
    p_lengths int4[], p_wrapped bool[]
"""  # noqa: S608 - constant fragments, nothing from input
    + _PUT_OPTIONS
    + "BEGIN\n"
    + _LOCK_THREAD
    + """    IF cardinality(p_channels) > 0 THEN
        INSERT INTO {blobs} AS b (thread_id, checkpoint_ns, channel, version, kind, type,
                                  payload, chain, seq, base, ops, length, wrapped)
        SELECT p_thread_id, p_ns, r.*
        FROM unnest(p_channels, p_blob_versions, p_kinds, p_types, p_payloads, p_chains,
                    p_seqs, p_bases, p_ops, p_lengths, p_wrapped) AS r
"""
    + _BLOB_CONFLICT
    + "    END IF;\n"
    + _UPSERT_CHECKPOINT
    + _UPSERT_THREAD
    + _FUNCTION_END
)

# The row stream of `_queries` (checkpoint row 0, blob rows 1, write rows 2).
_GET_TUPLE = """
CREATE OR REPLACE FUNCTION {fn_get_tuple}(
    p_thread_id text, p_ns text, p_checkpoint_id text, p_cached_channels text[],
    p_cached_versions text[]
) RETURNS TABLE (o_r int4, o_thread_id text, o_ns text, o_s1 text, o_s2 text, o_s3 text,
                 o_s4 text, o_s5 text, o_n1 int4, o_n2 int4, o_n3 int4, o_flag bool,
                 o_b1 bytea, o_b2 bytea)
LANGUAGE plpgsql
STABLE
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    c record;
BEGIN
    IF p_checkpoint_id IS NULL THEN
        SELECT x.checkpoint_id, x.parent_id, x.run_id, x.ts, x.skeleton, x.metadata,
               x.versions
        INTO c FROM {checkpoints} x
        WHERE x.thread_id = p_thread_id AND x.checkpoint_ns = p_ns
        ORDER BY x.checkpoint_id DESC LIMIT 1;
    ELSE
        SELECT x.checkpoint_id, x.parent_id, x.run_id, x.ts, x.skeleton, x.metadata,
               x.versions
        INTO c FROM {checkpoints} x
        WHERE x.thread_id = p_thread_id AND x.checkpoint_ns = p_ns
          AND x.checkpoint_id = p_checkpoint_id;
    END IF;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    o_r := 0; o_thread_id := p_thread_id; o_ns := p_ns; o_s1 := c.checkpoint_id;
    o_s2 := c.parent_id; o_s3 := c.run_id; o_s4 := c.ts; o_s5 := NULL; o_n1 := 0;
    o_n2 := NULL; o_n3 := NULL; o_flag := NULL; o_b1 := c.skeleton; o_b2 := c.metadata;
    RETURN NEXT;
    -- Each value by primary key, and for a list delta the rows of its chain up
    -- to it, unless the caller holds that version (it names those it holds).
    RETURN QUERY
    SELECT 1, b.thread_id, b.checkpoint_ns, b.channel, b.version, b.type, b.chain, b.base,
           b.kind::int4, b.seq, b.length, b.wrapped, b.payload, b.ops
    FROM jsonb_each_text(c.versions) AS v(channel, version)
    CROSS JOIN LATERAL (
        SELECT * FROM {blobs} k
        WHERE k.thread_id = p_thread_id AND k.checkpoint_ns = p_ns
          AND k.channel = v.channel AND k.version = v.version
        LIMIT 1
    ) AS o
    CROSS JOIN LATERAL (
        SELECT o.*
      UNION ALL
        SELECT x.* FROM {blobs} x
        WHERE o.kind = 3 AND x.thread_id = p_thread_id AND x.checkpoint_ns = p_ns
          AND x.channel = o.channel AND x.chain = o.chain AND x.seq < o.seq
          AND NOT EXISTS (
              SELECT 1 FROM unnest(p_cached_channels, p_cached_versions) AS h(channel, version)
              WHERE h.channel = o.channel AND h.version = o.version)
    ) AS b;
    RETURN QUERY
    SELECT 2, w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path,
           w.channel, w.type, w.idx, NULL::int4, NULL::int4, NULL::bool, w.payload,
           NULL::bytea
    FROM {writes} w
    WHERE w.thread_id = p_thread_id AND w.checkpoint_ns = p_ns
      AND w.checkpoint_id = c.checkpoint_id;
END
$fn$
"""


#: The DDL of the functions of schema version 2, one statement each (never edited).
FUNCTIONS = (_PUT, _GET_TUPLE)

# -- version 3 ----------------------------------------------------------------------

# Version 3's put: version 2's with the base check and the single-writer guard.
PUT_V3 = (
    """
CREATE OR REPLACE FUNCTION {fn_put}(
    p_lock_a int4, p_lock_b int4, p_guard int8, p_thread_id text, p_ns text,
    p_checkpoint_id text, p_parent_id text, p_run_id text, p_ts text, p_skeleton bytea,
    p_metadata bytea, p_metadata_idx jsonb, p_versions jsonb, p_root bool,
    p_blobs json, p_data bytea
"""
    + _PUT_OPTIONS
    + """    v_newest text;
    v_base record;
BEGIN
"""
    + _LOCK_THREAD
    + _GUARD
    + "    IF p_blobs IS NOT NULL THEN\n"
    + _INSERT_BLOB_ROWS
    + _BLOB_CONFLICT
    + _CHECK_BASES
    + "    END IF;\n"
    + _UPSERT_CHECKPOINT
    + _UPSERT_THREAD
    + _FUNCTION_END
)

# Version 3's get_tuple: version 2's, naming the list versions the caller
# holds as one JSON object {channel: version} instead of two arrays.
GET_TUPLE_V3 = _GET_TUPLE.replace(
    "p_cached_channels text[],\n    p_cached_versions text[]", "p_cached jsonb"
).replace(
    """AND NOT EXISTS (
              SELECT 1 FROM unnest(p_cached_channels, p_cached_versions) AS h(channel, version)
              WHERE h.channel = o.channel AND h.version = o.version)""",
    "AND (p_cached ->> o.channel) IS DISTINCT FROM o.version",
)

# -- version 4 ----------------------------------------------------------------------

# Version 4's put: version 3's, its base check folded into the INSERT of the
# values (see the module docstring); ``p_count`` is the number of JSON rows.
PUT_V4 = (
    """
CREATE OR REPLACE FUNCTION {fn_put}(
    p_lock_a int4, p_lock_b int4, p_guard int8, p_thread_id text, p_ns text,
    p_checkpoint_id text, p_parent_id text, p_run_id text, p_ts text, p_skeleton bytea,
    p_metadata bytea, p_metadata_idx jsonb, p_versions jsonb, p_root bool,
    p_blobs json, p_count int4, p_data bytea
"""  # noqa: S608 - constant fragments, nothing from input
    + _PUT_OPTIONS
    + """    v_newest text;
    v_base record;
    v_stored int8;
BEGIN
"""
    + _LOCK_THREAD
    + _GUARD
    + "    IF p_blobs IS NOT NULL THEN\n"
    + _INSERT_BLOB_ROWS
    + """        -- A delta goes in only if its base is there: a subplan probing the
        -- primary key per delta (OFFSET 0 keeps it from becoming a join).
        WHERE r.b IS NULL OR EXISTS (
            SELECT 1 FROM {blobs} k
            WHERE k.thread_id = p_thread_id AND k.checkpoint_ns = p_ns
              AND k.channel = r.c AND k.version = r.b
            OFFSET 0)
"""
    + _BLOB_CONFLICT
    + """        GET DIAGNOSTICS v_stored = ROW_COUNT;
        -- Fewer rows stored than sent: a base is gone, or a list row was
        -- already stored (kept as it is). Only the check loop tells which.
        IF v_stored < p_count THEN
"""
    + textwrap.indent(_CHECK_BASES, "    ")
    + "        END IF;\n"
    + "    END IF;\n"
    + _UPSERT_CHECKPOINT
    + _UPSERT_THREAD
    + _FUNCTION_END
)

#: The fields of one blob row in ``put``'s JSON argument (see `_codec.put_params`).
BLOB_FIELDS = ("c", "v", "k", "t", "ch", "s", "b", "n", "w", "po", "pl", "oo", "ol")

# The calls, with every argument cast so the exact signature is resolved. The
# blob rows travel as one JSON document and one bytea of their concatenated
# payloads: psycopg dumps a list parameter in Python, element by element, and
# eleven arrays cost the client more than the rest of the put.
PUT_CALL = """
SELECT {fn_put}(
    %(lock_a)s::int4, %(lock_b)s::int4, %(guard)s::int8, %(thread_id)s::text,
    %(checkpoint_ns)s::text, %(checkpoint_id)s::text, %(parent_id)s::text, %(run_id)s::text,
    %(ts)s::text, %(skeleton)s::bytea, %(metadata)s::bytea, %(metadata_idx)s::jsonb,
    %(channel_versions)s::jsonb, %(root)s::bool, %(blobs)s::json, %(blob_count)s::int4,
    %(data)s::bytea)
"""

GET_TUPLE_CALL = """
SELECT * FROM {fn_get_tuple}(
    %(thread_id)s::text, %(checkpoint_ns)s::text, %(checkpoint_id)s::text, %(cached)s::jsonb)
"""
