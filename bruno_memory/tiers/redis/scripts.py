"""The ``redis`` tier's Lua scripts: what must happen atomically on the server.

Keys of one script share a hash tag (one cluster slot); see ``redis_keys`` for the layout.
"""

from __future__ import annotations

import hashlib

PUT_MESSAGE = """
-- KEYS[1] window, KEYS[2] its fill lease (revoked);
-- ARGV: sort key, message id, element, window size, ttl in ms (0: none)
local win = KEYS[1]
redis.call('DEL', KEYS[2])
if redis.call('LLEN', win) == 0 then return 0 end
local items = redis.call('LRANGE', win, 1, -1)
local key = tonumber(ARGV[1])
local at = 0
for i, item in ipairs(items) do
  local s, id = string.match(item, '^(%S+) (%S+) ')
  if not s or not tonumber(s) then redis.call('DEL', win) return -1 end
  if id == ARGV[2] then
    if tonumber(s) ~= key then redis.call('DEL', win) return -1 end
    redis.call('LSET', win, i, ARGV[3])
    return 1
  end
  if tonumber(s) <= key then at = i end
end
if at == 0 and #items > 0 and redis.call('LINDEX', win, 0) ~= '#1' then return 0 end
if at == #items then
  redis.call('RPUSH', win, ARGV[3])
else
  redis.call('LINSERT', win, 'BEFORE', items[at + 1], ARGV[3])
end
if #items + 1 > tonumber(ARGV[4]) then
  redis.call('LSET', win, 1, '#0')
  redis.call('LPOP', win)
end
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', win, ARGV[5]) end
return 1
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
-- KEYS[1] fill lease, KEYS[2] window, KEYS[3] filled mark;
-- ARGV: lease token, ttl in ms (0: none), marker, items
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
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
-- KEYS[1] key, KEYS[2] its fill lease, KEYS[3] its filled mark: a fill that may have read
-- the tier below before a write reached it (lease out, or filled since) is undone
local raced = redis.call('DEL', KEYS[2]) + redis.call('EXISTS', KEYS[3])
if raced > 0 then redis.call('DEL', KEYS[1], KEYS[3]) end
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
