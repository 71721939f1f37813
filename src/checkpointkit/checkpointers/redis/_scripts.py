"""Server-side Lua scripts of the Redis checkpointer.

Every operation on a thread is one script over the thread's four keys (rows,
index, blobs, writes: see `_keys`), so it is atomic and costs one round trip;
the keys share a hash tag, so the scripts run unchanged on Redis Cluster.
Scripts read only the headers of stored values (see `_codec`) with the
``cmsgpack`` library built into Redis, and return values untouched for the
client to decode. They are sent with EVALSHA, falling back to EVAL when the
server answers NOSCRIPT (after a restart or a failover, or on a cluster node
that has not seen the script yet).

Conventions: ``ARGV[1]`` of a thread script is the TTL in milliseconds to
(re)apply to all four keys, ``0`` for none; ``have`` lists are blob fields
the client already holds (not returned, and their delta chains not walked).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

__all__ = [
    "DROP",
    "DROP_RUNS",
    "DUMP",
    "FETCH",
    "GET",
    "HISTORY",
    "MEMORY",
    "PAGE",
    "PUT",
    "RESTORE",
    "ROWS",
    "THREAD_INFO",
    "TOUCH",
    "UNINDEX",
    "WRITES",
    "Script",
]


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1, as EVALSHA names it."""

    name: str
    body: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.body.encode()).hexdigest())  # noqa: S324


# Helpers shared by the per-thread scripts. Lua 5.1: '\0' is a NUL byte.
_PRELUDE = r"""
local ROWS, INDEX, BLOBS, WRITES = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

local function refresh(ttl)
  ttl = tonumber(ttl)
  if ttl and ttl > 0 then
    for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end

-- Split at the first NUL: (namespace, rest) of a field, (id, ns) of a member.
local function split(s)
  local i = string.find(s, '\0', 1, true)
  if not i then return s, '' end
  return string.sub(s, 1, i - 1), string.sub(s, i + 1)
end

-- Header of a checkpoint row: needed blob suffixes, escaped parent id, run id.
local function row_head(row)
  local _, needed, parent, run = cmsgpack.unpack_limit(row, 3)
  return needed, parent, run
end

local function hmget(key, fields)
  local out = {}
  for i = 1, #fields, 1000 do
    local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + 999, #fields)))
    for _, v in ipairs(part) do out[#out + 1] = v end
  end
  return out
end

local function read_have(at)
  local have, n = {}, tonumber(ARGV[at])
  for i = at + 1, at + n do have[ARGV[i]] = true end
  return have, at + n + 1
end

-- Add blob `pre .. version` and the delta chain below it to `out` (field,
-- value pairs), skipping fields in `have`, which it extends.
local function add_chain(pre, version, out, have)
  while version do
    local f = pre .. version
    if have[f] then return end
    have[f] = true
    local v = redis.call('HGET', BLOBS, f)
    if not v then return end
    out[#out + 1] = f
    out[#out + 1] = v
    local _, kind, base = cmsgpack.unpack_limit(v, 2)
    if kind ~= 3 then return end
    version = base
  end
end

-- Add the blobs a checkpoint row needs (and the chains below its list
-- deltas) to `out`, as add_chain does: one HMGET for the row's own blobs.
local function add_row_blobs(ns, row, out, have)
  local fields, pre = {}, ns .. '\0'
  local _, needed = cmsgpack.unpack_limit(row, 1)
  for _, suffix in ipairs(needed) do
    local f = pre .. suffix
    if not have[f] then
      have[f] = true
      fields[#fields + 1] = f
    end
  end
  local n = #fields
  if n == 0 then return end
  -- One HMGET without copying its reply for the usual row (hmget splits big ones).
  local values = n <= 1000 and redis.call('HMGET', BLOBS, unpack(fields)) or hmget(BLOBS, fields)
  for i = 1, n do
    local v = values[i]
    if v then
      out[#out + 1] = fields[i]
      out[#out + 1] = v
      -- The first byte is the kind (a msgpack fixint); 3: a list delta.
      if string.byte(v, 1) == 3 then
        local _, _, base = cmsgpack.unpack_limit(v, 2)
        local channel = split(string.sub(fields[i], #ns + 2))
        add_chain(ns .. '\0' .. channel .. '\0', base, out, have)
      end
    end
  end
end

local function latest(ns)
  local top = redis.call('ZREVRANGEBYLEX', INDEX, '(n' .. ns .. '\1', '[n' .. ns .. '\0',
    'LIMIT', 0, 1)
  if #top == 0 then return nil end
  return string.sub(top[1], #ns + 3)
end

-- Call fn(record, task id, idx) for each record of concatenated write records.
local function each_record(records, fn)
  local off = 0
  while off >= 0 and off < #records do
    local nxt, rec = cmsgpack.unpack_one(records, off)
    fn(string.sub(records, off + 1, nxt < 0 and #records or nxt), rec[1], rec[2])
    off = nxt
  end
end

-- Merge concatenated write records into the writes of checkpoint `f`: a
-- record replaces the stored one of the same (task, idx) when `replace` is
-- set or its idx is negative; otherwise the first stored wins.
local function merge_writes(f, records, replace)
  local cur = redis.call('HGET', WRITES, f)
  if not cur then
    redis.call('HSET', WRITES, f, records)
    return
  end
  local parts, pos = {}, {}
  each_record(cur, function(raw, task, idx)
    parts[#parts + 1] = raw
    pos[task .. '\0' .. idx] = #parts
  end)
  each_record(records, function(raw, task, idx)
    local k = task .. '\0' .. idx
    local at = pos[k]
    if not at then
      parts[#parts + 1] = raw
      pos[k] = #parts
    elseif replace or idx < 0 then
      parts[at] = raw
    end
  end)
  redis.call('HSET', WRITES, f, table.concat(parts))
end

-- Delete checkpoints (rows, writes, index members); return their namespaces.
local function drop(fields)
  local spaces = {}
  for _, f in ipairs(fields) do
    local ns, id = split(f)
    spaces[ns] = true
    redis.call('HDEL', ROWS, f)
    redis.call('HDEL', WRITES, f)
    redis.call('ZREM', INDEX, 'n' .. f, 'c' .. id .. '\0' .. ns)
  end
  return spaces
end

-- Delete the blobs of namespaces `spaces` that no remaining checkpoint needs,
-- directly or as the base of a needed delta.
local function gc(spaces)
  local live = {}
  for ns in pairs(spaces) do
    local members = redis.call('ZRANGEBYLEX', INDEX, '[n' .. ns .. '\0', '(n' .. ns .. '\1')
    for _, m in ipairs(members) do
      local row = redis.call('HGET', ROWS, string.sub(m, 2))
      if row then
        local needed = row_head(row)
        for _, suffix in ipairs(needed) do
          local channel, version = split(suffix)
          local pre = ns .. '\0' .. channel .. '\0'
          while version and not live[pre .. version] do
            live[pre .. version] = true
            local v = redis.call('HGET', BLOBS, pre .. version)
            if not v then break end
            local _, kind, base = cmsgpack.unpack_limit(v, 2)
            if kind ~= 3 then break end
            version = base
          end
        end
      end
    end
  end
  local doomed = {}
  for _, f in ipairs(redis.call('HKEYS', BLOBS)) do
    if spaces[(split(f))] and not live[f] then doomed[#doomed + 1] = f end
  end
  for i = 1, #doomed, 1000 do
    redis.call('HDEL', BLOBS, unpack(doomed, i, math.min(i + 999, #doomed)))
  end
end
"""


def _helpers(prelude: str) -> list[tuple[str | None, str]]:
    """Split the prelude into (function name, chunk) pairs; None: the keys line."""
    chunks = [c for c in prelude.strip("\n").split("\n\n") if c.strip()]
    out: list[tuple[str | None, str]] = []
    for chunk in chunks:
        match = re.search(r"^local function (\w+)", chunk, re.MULTILINE)
        out.append((match.group(1) if match else None, chunk + "\n\n"))
    return out


_HELPERS = _helpers(_PRELUDE)


def _thread_script(name: str, body: str) -> Script:
    """Prefix `body` with the prelude's helpers it calls, directly or through others.

    Only those: Lua creates every function a script defines on each call,
    which would cost every call about 1.5 µs of the server's time for all of them.
    """
    wanted: set[str | None] = {None}
    text = body
    while True:
        more = {
            helper for helper, _ in _HELPERS
            if helper not in wanted and re.search(rf"\b{helper}\(", text)
        }  # fmt: skip
        if not more:
            break
        wanted |= more
        text = body + "".join(chunk for helper, chunk in _HELPERS if helper in wanted)
    return Script(name, "".join(chunk for helper, chunk in _HELPERS if helper in wanted) + body)


PUT = _thread_script(
    "put",
    r"""
-- KEYS: the thread's four, then on a single node its threads-index bucket.
-- ARGV: ttl, field, row, ns member, cross member, count ('1': count the
--       namespace's checkpoints), guard ('' = off, else '=' .. the escaped
--       parent id, '=' alone for none), thread id, index score (see _index),
--       #bases, delta base fields..., then (blob field, blob) pairs.
-- Returns {1, thread was new, checkpoints in the namespace}, {0, missing
-- bases}, or {2, newest id} when the single-writer guard refuses the put.
local ns, id = split(ARGV[2])
if ARGV[7] ~= '' then
  -- The rule of check_single_writer, with the index's byte order (Lua's own
  -- string comparison follows the server's locale).
  local newest = latest(ns)
  if newest and newest ~= id then
    local parent = string.sub(ARGV[7], 2)
    if parent == '' or #redis.call('ZRANGEBYLEX', INDEX, '(n' .. ns .. '\0' .. parent,
        '(n' .. ns .. '\1', 'LIMIT', 0, 1) > 0 then
      return {2, newest}
    end
  end
end
local nbases = tonumber(ARGV[10])
local missing = {}
for i = 11, 10 + nbases do
  if redis.call('HEXISTS', BLOBS, ARGV[i]) == 0 then missing[#missing + 1] = ARGV[i] end
end
if #missing > 0 then return {0, missing} end
local new = redis.call('EXISTS', INDEX) == 0 and 1 or 0
redis.call('HSET', ROWS, ARGV[2], ARGV[3])
redis.call('ZADD', INDEX, 0, ARGV[4], 0, ARGV[5])
for i = 11 + nbases, #ARGV, 1000 do  -- pairs: chunks of an even size
  redis.call('HSET', BLOBS, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
refresh(ARGV[1])
if KEYS[5] then
  -- Same script, so a listing never sees the thread without its index entry.
  redis.call('ZADD', KEYS[5], 'GT', ARGV[9], ARGV[8])
end
local count = 0
if ARGV[6] == '1' then
  count = redis.call('ZLEXCOUNT', INDEX, '[n' .. ns .. '\0', '(n' .. ns .. '\1')
end
return {1, new, count}
""",
)

WRITES = _thread_script(
    "put_writes",
    r"""
-- ARGV: ttl, checkpoint field, write records (concatenated, no two with the
-- same (task, idx)). Merged only when the checkpoint has writes already.
if redis.call('HSETNX', WRITES, ARGV[2], ARGV[3]) == 0 then
  merge_writes(ARGV[2], ARGV[3], false)
end
refresh(ARGV[1])
return 1
""",
)

GET = _thread_script(
    "get_tuple",
    r"""
-- ARGV: ttl, ns, checkpoint id ('' = the namespace's latest), #have, have...
-- Returns false, or {field, row, writes, {blob field, blob, ...}}.
local ns, id = ARGV[2], ARGV[3]
if id == '' then
  id = latest(ns)
  if not id then return false end
end
local f = ns .. '\0' .. id
local row = redis.call('HGET', ROWS, f)
if not row then return false end
local blobs = {}
add_row_blobs(ns, row, blobs, (read_have(4)))
refresh(ARGV[1])
return {f, row, redis.call('HGET', WRITES, f), blobs}
""",
)

PAGE = _thread_script(
    "list_page",
    r"""
-- ARGV: ttl, max, min, count, cross ('1': members of the c family),
--       values ('1': add writes and blobs), #have, have...
-- Returns {thread exists, last member, fields, rows, writes, blobs}.
local members = redis.call('ZREVRANGEBYLEX', INDEX, ARGV[2], ARGV[3], 'LIMIT', 0,
  tonumber(ARGV[4]))
local exists = redis.call('EXISTS', INDEX)
if #members == 0 then return {exists, '', {}, {}, {}, {}} end
local fields = {}
for i, m in ipairs(members) do
  if ARGV[5] == '1' then
    local id, ns = split(string.sub(m, 2))
    fields[i] = ns .. '\0' .. id
  else
    fields[i] = string.sub(m, 2)
  end
end
local rows = hmget(ROWS, fields)
local writes, blobs = {}, {}
if ARGV[6] == '1' then
  writes = hmget(WRITES, fields)
  local have = read_have(7)
  for i, row in ipairs(rows) do
    if row then add_row_blobs((split(fields[i])), row, blobs, have) end
  end
end
refresh(ARGV[1])
return {exists, members[#members], fields, rows, writes, blobs}
""",
)

FETCH = _thread_script(
    "fetch",
    r"""
-- ARGV: ttl, rows ('1': return the rows too), #have, have..., checkpoint fields...
-- Returns {rows, writes, blobs}.
local have, at = read_have(3)
local fields = {}
for i = at, #ARGV do fields[#fields + 1] = ARGV[i] end
local rows = hmget(ROWS, fields)
local writes = hmget(WRITES, fields)
local blobs = {}
for i, row in ipairs(rows) do
  if row then add_row_blobs((split(fields[i])), row, blobs, have) end
end
refresh(ARGV[1])
if ARGV[2] ~= '1' then rows = {} end
return {rows, writes, blobs}
""",
)

HISTORY = _thread_script(
    "delta_history",
    r"""
-- ARGV: ns, checkpoint id ('' = latest), escaped channels (distinct)...
-- Walks the parent chain of the checkpoint until each channel has a seed
-- (an ancestor storing a non-empty value for it). Returns {ancestor fields,
-- ancestor rows, their writes, seed blobs with their delta chains}.
local ns, id = ARGV[1], ARGV[2]
if id == '' then id = latest(ns) end
local row = id and redis.call('HGET', ROWS, ns .. '\0' .. id)
if not row then return {{}, {}, {}, {}} end
local remaining, left = {}, 0
for i = 3, #ARGV do
  remaining[ARGV[i]] = true
  left = left + 1
end
local _, parent = row_head(row)
local fields, rows, blobs, have, seen = {}, {}, {}, {}, {}
while parent and left > 0 and not seen[parent] do
  seen[parent] = true
  local f = ns .. '\0' .. parent
  local r = redis.call('HGET', ROWS, f)
  if not r then break end
  fields[#fields + 1] = f
  rows[#rows + 1] = r
  local needed, up = row_head(r)
  for _, suffix in ipairs(needed) do
    local channel, version = split(suffix)
    if remaining[channel] then
      local pre = ns .. '\0' .. channel .. '\0'
      local v = redis.call('HGET', BLOBS, pre .. version)
      if v then
        local _, kind = cmsgpack.unpack_limit(v, 1)
        if kind ~= 1 then
          remaining[channel] = nil
          left = left - 1
          add_chain(pre, version, blobs, have)
        end
      end
    end
  end
  parent = up
end
return {fields, rows, hmget(WRITES, fields), blobs}
""",
)

THREAD_INFO = _thread_script(
    "thread_info",
    r"""
-- Returns false when the thread's keys are gone, {0} when it has no root
-- checkpoint, else {count, first field, first row, last field, last row}.
if redis.call('EXISTS', INDEX) == 0 then return false end
local count = redis.call('ZLEXCOUNT', INDEX, '[n\0', '(n\1')
if count == 0 then return {0} end
local first = string.sub(redis.call('ZRANGEBYLEX', INDEX, '[n\0', '(n\1', 'LIMIT', 0, 1)[1], 2)
local last = string.sub(redis.call('ZREVRANGEBYLEX', INDEX, '(n\1', '[n\0', 'LIMIT', 0, 1)[1], 2)
local rows = redis.call('HMGET', ROWS, first, last)
return {count, first, rows[1], last, rows[2]}
""",
)

ROWS = _thread_script(
    "rows",
    r"""
-- ARGV: one namespace ('1') or all ('0'), escaped ns.
-- Returns {fields, rows, kinds}: kinds[i] holds one digit per needed blob of
-- rows[i] (its BlobKind, '-' when missing), which is what pruning decides on.
local fields = {}
if ARGV[1] == '1' then
  local ns = ARGV[2]
  for _, m in ipairs(redis.call('ZRANGEBYLEX', INDEX, '[n' .. ns .. '\0', '(n' .. ns .. '\1')) do
    fields[#fields + 1] = string.sub(m, 2)
  end
else
  fields = redis.call('HKEYS', ROWS)
end
local rows = hmget(ROWS, fields)
local kinds, known = {}, {}
for i, row in ipairs(rows) do
  local digits = {}
  if row then
    local ns = split(fields[i])
    for j, suffix in ipairs((row_head(row))) do
      local f = ns .. '\0' .. suffix
      local k = known[f]
      if not k then
        local v = redis.call('HGET', BLOBS, f)
        if v then
          local _, kind = cmsgpack.unpack_limit(v, 1)
          k = tostring(kind)
        else
          k = '-'
        end
        known[f] = k
      end
      digits[j] = k
    end
  end
  kinds[i] = table.concat(digits)
end
return {fields, rows, kinds}
""",
)

DROP = _thread_script(
    "drop",
    r"""
-- ARGV: checkpoint fields to delete, with their writes and the blobs of their
-- namespaces that no remaining checkpoint needs. Returns how many existed.
local fields = {}
for i = 1, #ARGV do
  if redis.call('HEXISTS', ROWS, ARGV[i]) == 1 then fields[#fields + 1] = ARGV[i] end
end
if #fields > 0 then gc(drop(fields)) end
return #fields
""",
)

DROP_RUNS = _thread_script(
    "drop_runs",
    r"""
-- ARGV: run ids. Deletes the thread's checkpoints made by those runs (as DROP).
local runs = {}
for i = 1, #ARGV do runs[ARGV[i]] = true end
local all = redis.call('HGETALL', ROWS)
local doomed = {}
for i = 1, #all, 2 do
  local _, _, run = row_head(all[i + 1])
  if run and runs[run] then doomed[#doomed + 1] = all[i] end
end
if #doomed > 0 then gc(drop(doomed)) end
return #doomed
""",
)

DUMP = _thread_script(
    "dump",
    r"""
-- Returns every row, blob and writes value of the thread, as field/value lists.
return {redis.call('HGETALL', ROWS), redis.call('HGETALL', BLOBS),
  redis.call('HGETALL', WRITES)}
""",
)

RESTORE = _thread_script(
    "restore",
    r"""
-- ARGV: ttl, exclusive ('1': refuse when the thread exists), #rows, #blobs,
--       rows as (field, row, ns member, cross member), blobs as (field, blob),
--       writes as (field, concatenated records), which replace stored ones.
-- Returns {0} when refused, else {1, thread was new}.
if ARGV[2] == '1' and redis.call('EXISTS', ROWS, INDEX, BLOBS, WRITES) > 0 then return {0} end
local new = redis.call('EXISTS', INDEX) == 0 and 1 or 0
local i = 5
for _ = 1, tonumber(ARGV[3]) do
  redis.call('HSET', ROWS, ARGV[i], ARGV[i + 1])
  redis.call('ZADD', INDEX, 0, ARGV[i + 2], 0, ARGV[i + 3])
  i = i + 4
end
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HSET', BLOBS, ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  merge_writes(ARGV[i], ARGV[i + 1], true)
  i = i + 2
end
refresh(ARGV[1])
return {1, new}
""",
)

MEMORY = _thread_script(
    "memory_usage",
    r"""
-- Returns the bytes Redis uses for the thread's keys (MEMORY USAGE, exact).
local total = 0
for i = 1, #KEYS do
  total = total + (redis.call('MEMORY', 'USAGE', KEYS[i], 'SAMPLES', 0) or 0)
end
return total
""",
)

UNINDEX = Script(
    "unindex",
    r"""
-- KEYS: a threads-index bucket, then on a single node the thread's index key.
-- ARGV: thread id, the score a listing saw.
-- Removes the entry of a thread whose keys are gone, unless the thread was
-- written since: on a single node, checked on its keys; on a cluster (where
-- they live on another node), by the score, which every write that creates
-- the thread changes (TOUCH).
if KEYS[2] then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
""",
)

TOUCH = Script(
    "touch",
    r"""
-- KEYS: a threads-index bucket. ARGV: thread id, score.
-- Indexes a thread a write has just created, always changing its score (see
-- UNINDEX): the given score, or one above the current one.
local score = tonumber(ARGV[2])
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if current and tonumber(current) >= score then score = tonumber(current) + 1 end
return redis.call('ZADD', KEYS[1], score, ARGV[1])
""",
)
