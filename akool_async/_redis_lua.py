"""The shared account budget's arithmetic, as Lua scripts that Redis runs atomically.

Each script reads the time with ``redis.call('TIME')``: every machine is on the server's
one clock (client clocks skew). The arithmetic is ``_gcra``'s, on the account's state in
one hash (``KEYS[1]``):

- GCRA: ``acquire`` reserves the next slot if it is due within ``max_wait`` and says how
  long to wait; a slot further away is refused (nothing reserved) with the wait, so that a
  worker that dies or gives up holds at most ``max_wait`` of the budget. ``burst`` go at
  once, then one per ``1 / rate`` (here the configured burst, not half: the operator sets
  the account's numbers).
- Throttled (1005, HTTP 429 seen by any worker): the rate halves (not below
  ``min_fraction``), once per episode, and recovers linearly over ``recovery`` seconds;
  nobody goes before a "not before" time: the server's Retry-After (capped at
  ``max_pause``), else ``pause``.
- Jobs in flight: leases in a sorted set (``KEYS[2]``) scored by when they expire, pruned
  in the same script; a worker that dies stops renewing and its leases expire.
- State lost (a Redis restart, a flush) while workers ran (``known``: this worker had seen
  it): the state is re-made empty, as if a burst and ``max_wait`` of reserved slots had
  just gone, and new leases wait one lease time for the holders to renew theirs. A burst
  never goes through twice.

Common arguments (``ARGV[1..9]``): rate, burst, max_wait, known (0/1), lease_ttl,
min_fraction, recovery, max_pause, state_ttl_ms. Times come back as strings (Redis
truncates Lua numbers to integers).
"""

from __future__ import annotations

_COMMON = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, horizon = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local known, lease_ttl = ARGV[4] == '1', tonumber(ARGV[5])
local min_fraction, recovery, max_pause = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local function num(x) return string.format('%.17g', x) end
local s = {}
local raw = redis.call('HGETALL', KEYS[1])
local restarted = 0
if #raw == 0 then
  s.rate, s.updated, s.calm_after, s.not_before = rate, now, now, now
  s.throttles, s.admitted, s.recovering_until, s.tat = 0, 0, now, now
  if known then
    restarted = 1
    s.tat = now + horizon + (burst - 1) / rate
    s.recovering_until = now + lease_ttl
  end
else
  for i = 1, #raw, 2 do s[raw[i]] = tonumber(raw[i + 1]) end
end
local function set_rate(new)  -- the backlog past a pause stays the same number of requests
  local start = math.max(now, s.not_before)
  if s.tat > start then s.tat = start + (s.tat - start) * s.rate / new end
  s.rate = new
end
local function recover()
  if s.rate < rate then
    set_rate(math.min(rate, s.rate + (now - s.updated) * rate / recovery))
  elseif s.rate > rate then
    set_rate(rate)
  end
  s.updated = now
end
local function save()
  redis.call('HSET', KEYS[1], 'tat', num(s.tat), 'rate', num(s.rate),
    'updated', num(s.updated), 'calm_after', num(s.calm_after),
    'not_before', num(s.not_before), 'throttles', s.throttles, 'admitted', s.admitted,
    'recovering_until', num(s.recovering_until))
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
end
local function live_leases()
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', num(now))
  return redis.call('ZCARD', KEYS[2])
end
local function keep_leases(first)
  for i = first, #ARGV do redis.call('ZADD', KEYS[2], num(now + lease_ttl), ARGV[i]) end
  redis.call('PEXPIRE', KEYS[2], math.ceil(lease_ttl * 2000))
end
"""

# ARGV[10]: max_wait. -> {admitted 0/1, wait, server now, restarted 0/1}
ACQUIRE = (
    _COMMON
    + """
recover()
local interval = 1 / s.rate
local arrival = math.max(s.tat, now)
local allowed = math.max(arrival - (burst - 1) * interval, s.not_before)
local wait = allowed - now
local admitted = 0
if wait <= tonumber(ARGV[10]) + 1e-9 then
  s.tat = math.max(arrival, allowed) + interval
  s.admitted = s.admitted + 1
  admitted = 1
end
save()
return {admitted, num(math.max(wait, 0)), num(now), restarted}
"""
)

# ARGV[10]: the server's Retry-After ('' if none), ARGV[11]: pause without one.
# -> {new episode 0/1, rate now, seconds until the not-before time}
THROTTLED = (
    _COMMON
    + """
recover()
local episode = 0
if now >= s.calm_after then
  s.throttles = s.throttles + 1
  set_rate(math.max(rate * min_fraction, s.rate / 2))
  s.calm_after = now + burst / s.rate
  episode = 1
end
local pause = tonumber(ARGV[10])
if pause == nil or pause <= 0 then pause = tonumber(ARGV[11]) end
pause = math.min(pause, max_pause)
if pause > 0 then
  s.not_before = math.max(s.not_before, now + pause)
  s.tat = math.max(s.tat, s.not_before + (burst - 1) / s.rate)
end
save()
return {episode, num(s.rate), num(math.max(s.not_before - now, 0))}
"""
)

# ARGV[10]: cap, ARGV[11..]: the lease's members (one per job).
# -> {taken 0/1, seconds to wait at most before asking again, leases held}
TAKE_LEASE = (
    _COMMON
    + """
local held = live_leases()
local wanted = #ARGV - 10
local result
if now < s.recovering_until then
  result = {0, num(s.recovering_until - now), held}
elseif held + wanted > tonumber(ARGV[10]) then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  result = {0, num(tonumber(first[2]) - now), held}
else
  keep_leases(11)
  result = {1, '0', held + wanted}
end
save()
return result
"""
)

# ARGV[10..]: the members of every lease this worker holds. -> {restarted 0/1}
RENEW_LEASES = (
    _COMMON
    + """
keep_leases(10)
save()
return {restarted}
"""
)

# ARGV[10..]: the members to remove. -> {removed}
RELEASE_LEASE = """
local removed = 0
for i = 10, #ARGV do removed = removed + redis.call('ZREM', KEYS[2], ARGV[i]) end
return {removed}
"""

# Read only. -> {rate now, throttles, admitted, leases held, not-before in, server now}
STATUS = (
    _COMMON
    + """
recover()
local held = redis.call('ZCOUNT', KEYS[2], '(' .. num(now), '+inf')
return {num(s.rate), s.throttles, s.admitted, held, num(math.max(s.not_before - now, 0)),
  num(now)}
"""
)
