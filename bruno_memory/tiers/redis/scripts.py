"""The ``redis`` tier's Lua scripts: what must happen atomically on the server.

Keys of one script share a hash tag (one cluster slot); see ``redis_keys`` for the layout.
"""

from __future__ import annotations

import hashlib

PUT_MESSAGE = """
-- KEYS[1] window, KEYS[2] its fill lease (revoked), KEYS[3] the window's index: its
-- message ids -> their sort keys, and under '#tail #' the newest one's id ('' if none);
-- trusted while it holds one id per message and the newest is the window's last;
-- ARGV: sort key, message id, element, window size, ttl in ms (0: none)
local win, index, TAIL = KEYS[1], KEYS[3], '#tail #'
redis.call('DEL', KEYS[2])
local n = redis.call('LLEN', win) - 1
if n < 0 then return 0 end
local key, id, size, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
local function head(item)  -- sort key (a number), id, sort key as written
  local s, i = string.match(item, '^(%S+) (%S+) ')
  return tonumber(s), i, s
end
local function expire()
  if ttl > 0 then
    redis.call('PEXPIRE', win, ttl)
    redis.call('PEXPIRE', index, ttl)
  end
end
if redis.call('HLEN', index) == n + 1 then
  local last, newest = nil, ''
  if n > 0 then last, newest = head(redis.call('LINDEX', win, -1)) end
  local held = redis.call('HMGET', index, TAIL, id)
  if held[1] == newest and not held[2] and (n == 0 or (last and key >= last)) then
    redis.call('RPUSH', win, ARGV[3])  -- the newest: appended, the window unread
    redis.call('HSET', index, id, ARGV[1], TAIL, id)
    if n + 1 > size then
      local _, oldest = head(redis.call('LINDEX', win, 1))
      redis.call('HDEL', index, oldest)
      redis.call('LSET', win, 1, '#0')
      redis.call('LPOP', win)
    end
    expire()
    return 1
  end
end
local items = redis.call('LRANGE', win, 1, -1)
local keys, ids = {}, {}
local at, found = 0, 0
for i, item in ipairs(items) do
  local s, mid, written = head(item)
  if not s then redis.call('DEL', win, index) return -1 end
  keys[i], ids[i] = written, mid
  if mid == id then
    if s ~= key then redis.call('DEL', win, index) return -1 end
    found = i
  end
  if s <= key then at = i end
end
local first = 1
if found > 0 then
  redis.call('LSET', win, found, ARGV[3])
elseif at == 0 and #items > 0 and redis.call('LINDEX', win, 0) ~= '#1' then
  at = -1  -- older than a partial window holds: its place is unknown, it stays out
else
  if at == #items then
    redis.call('RPUSH', win, ARGV[3])
  else
    redis.call('LINSERT', win, 'BEFORE', items[at + 1], ARGV[3])
  end
  table.insert(keys, at + 1, ARGV[1])
  table.insert(ids, at + 1, id)
  if #items + 1 > size then
    redis.call('LSET', win, 1, '#0')
    redis.call('LPOP', win)
    first = 2
  end
end
redis.call('DEL', index)  -- rebuilt from the window as it now is
redis.call('HSET', index, TAIL, ids[#ids] or '')
for from = first, #ids, 500 do
  local fields = {}
  for i = from, math.min(from + 499, #ids) do
    fields[#fields + 1] = ids[i]
    fields[#fields + 1] = keys[i]
  end
  redis.call('HSET', index, unpack(fields))
end
if at >= 0 and found == 0 then expire() elseif ttl > 0 then redis.call('PEXPIRE', index, ttl) end
return at >= 0 and 1 or 0
"""
FILL_RECORD = """
-- KEYS[1] fill lease, KEYS[2] record, KEYS[3] filled mark;
-- ARGV: lease token, data, ttl in ms (0: none)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
else
  redis.call('SET', KEYS[2], ARGV[2])
  redis.call('SET', KEYS[3], '1')
end
return 1
"""
FILL_WINDOW = """
-- KEYS[1] fill lease, KEYS[2] window, KEYS[3] filled mark, KEYS[4] the window's index
-- (dropped: the next put rebuilds it); ARGV: lease token, ttl in ms (0: none), marker, items
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
for at = 3, #ARGV, 500 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, at, math.min(at + 499, #ARGV)))
end
redis.call('SET', KEYS[3], '1')
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
return 1
"""
SETTLE = """
-- KEYS[1] key, KEYS[2] its fill lease, KEYS[3] its filled mark (KEYS[4], a window's
-- index): a fill that may have read the tier below before a write reached it (lease out,
-- or filled since) is undone
local raced = redis.call('DEL', KEYS[2]) + redis.call('EXISTS', KEYS[3])
if raced > 0 then redis.call('DEL', KEYS[1], KEYS[3], unpack(KEYS, 4)) end
return raced
"""
PUT_MESSAGE_SHA, FILL_RECORD_SHA, FILL_WINDOW_SHA, SETTLE_SHA = (
    hashlib.sha1(script.encode()).hexdigest()
    for script in (PUT_MESSAGE, FILL_RECORD, FILL_WINDOW, SETTLE)
)


def _function(sha: str, body: str) -> str:
    return f"scripts['{sha}'] = function(KEYS, ARGV)\n{body}\nend\n"


APPLY = (
    "-- ARGV[1]: a JSON array of commands, each [name, arg...]; ``EVALSHA`` of the\n"
    "-- scripts above runs their body here. Replies in order, as a pipeline's would be.\n"
    "-- For a single server only (its keys span slots)\n"
    "local scripts = {}\n"
    + "".join(_function(sha, body) for sha, body in (
        (PUT_MESSAGE_SHA, PUT_MESSAGE), (FILL_RECORD_SHA, FILL_RECORD),
        (FILL_WINDOW_SHA, FILL_WINDOW), (SETTLE_SHA, SETTLE)))
    + """
local out = {}
for i, cmd in ipairs(cjson.decode(ARGV[1])) do
  if cmd[1] == 'EVALSHA' then
    local n = tonumber(cmd[3])
    local keys, argv = {}, {}
    for at = 4, 3 + n do keys[#keys + 1] = cmd[at] end
    for at = 4 + n, #cmd do argv[#argv + 1] = cmd[at] end
    out[i] = scripts[cmd[2]](keys, argv) or false
  else
    out[i] = redis.call(unpack(cmd)) or false  -- a nil reply keeps its place
  end
end
return out
"""
)
"""Every command of a batch in one script call: one command for redis-py to pack and one
reply to parse, instead of one each per command (the client's cost, not the server's)."""
SCRIPTS = (PUT_MESSAGE, FILL_RECORD, FILL_WINDOW, SETTLE, APPLY)
APPLY_SHA = hashlib.sha1(APPLY.encode()).hexdigest()
APPLY_CHUNK = 128
"""Commands per ``APPLY`` call at most: a script blocks the server while it runs, so a
large batch is a pipeline of a few calls (still one round trip)."""
