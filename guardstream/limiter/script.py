"""The one Lua script behind every limiter decision and every usage charge.

Why Lua: the read-then-increment of the usual tutorial races between workers (two workers
each read limit-1 and both pass). Redis runs a script atomically, so "prune the window,
compare, record" is one step for every worker and every process.

Why a sliding log: it is exact ("at most N requests and T tokens in any `window`"), so a
burst of concurrent requests lets exactly the limit through, and the script can say to the
microsecond when the oldest entry leaves the window (`retry_after`). Each entry is added
once and removed once, and running sums sit next to the log, so a decision costs O(1)
amortized; the log of one identity is bounded by its request limit plus its usage charges.

Keys (all of one identity, so one Redis Cluster hash slot through a `{...}` hash tag):
  KEYS[1]  sorted set: one member per admitted request or usage charge, score = time (us),
           member = "<time_us>:<seq>:<requests 0|1>:<tokens>"
  KEYS[2]  hash: r = requests in window, t = tokens in window, s = member sequence
  KEYS[3]  hash: d = UTC day number, n = spend that day in nano-USD
Both window keys get a TTL of one window (plus a second) on every write; the spend hash
lives until the end of its day plus an hour. Nothing needs a cleanup job.

ARGV[1] mode: "decide" or "charge"
ARGV[2] window length in microseconds
ARGV[3] now in microseconds, or "" to take Redis TIME (production always sends "": only
        tests drive the clock, through `Limiter(clock=...)`)
decide: ARGV[4] max requests, ARGV[5] max tokens, ARGV[6] request tokens,
        ARGV[7] daily budget in nano-USD (0 = none)
        -> {code, retry_after_us, requests_in_window, tokens_in_window}
        code 0 admitted, 1 request limit, 2 token limit, 3 budget, 4 never fits the window
charge: ARGV[4] tokens, ARGV[5] cost in nano-USD
        -> {tokens_in_window, spend_today_nano}
"""

from __future__ import annotations

import hashlib

__all__ = ["CODE_BUDGET", "CODE_OK", "CODE_REQUESTS", "CODE_TOKENS", "CODE_TOO_BIG",
           "SCRIPT", "SCRIPT_SHA"]

CODE_OK = 0
CODE_REQUESTS = 1
CODE_TOKENS = 2
CODE_BUDGET = 3
CODE_TOO_BIG = 4

SCRIPT = r"""
local mode = ARGV[1]
local window = tonumber(ARGV[2])
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local DAY = 86400000000
local ttl_ms = math.floor(window / 1000) + 1000

local function parse(member)
  local r, t = string.match(member, ':(%d):(%d+)$')
  return tonumber(r), tonumber(t)
end

-- Drop entries that left the window and return the sums of what is left.
local function prune()
  local cutoff = now - window
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  if #old > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  end
  local sums = redis.call('HMGET', KEYS[2], 'r', 't')
  local req, tok
  if sums[1] == false or sums[2] == false then
    -- The sums are gone but the log is not (or neither is): the log is the truth.
    req, tok = 0, 0
    for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
      local r, t = parse(m)
      req = req + r
      tok = tok + t
    end
  else
    req, tok = tonumber(sums[1]), tonumber(sums[2])
    for _, m in ipairs(old) do
      local r, t = parse(m)
      req = req - r
      tok = tok - t
    end
    if #old > 0 then
      -- Stored now, not only on record(): a refusal prunes too, and the entries it
      -- removed must never be subtracted again nor stay in the sums.
      redis.call('HSET', KEYS[2], 'r', string.format('%d', req), 't', string.format('%d', tok))
    end
  end
  return req, tok
end

local function record(r, tokens_arg, req, tok)
  local seq = redis.call('HINCRBY', KEYS[2], 's', 1)
  redis.call('ZADD', KEYS[1], now, string.format('%d:%d:%d:', now, seq, r) .. tokens_arg)
  redis.call('HSET', KEYS[2], 'r', string.format('%d', req), 't', string.format('%d', tok))
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
  redis.call('PEXPIRE', KEYS[2], ttl_ms)
end

if mode == 'decide' then
  local max_req = tonumber(ARGV[4])
  local max_tok = tonumber(ARGV[5])
  local cost = tonumber(ARGV[6])
  local budget = tonumber(ARGV[7])
  if budget > 0 then
    local spend = redis.call('HMGET', KEYS[3], 'd', 'n')
    local day = math.floor(now / DAY)
    if tonumber(spend[1]) == day and tonumber(spend[2] or '0') >= budget then
      return {3, (day + 1) * DAY - now, 0, 0}
    end
  end
  local req, tok = prune()
  if cost > max_tok then
    return {4, window, req, tok}
  end
  local wait_req, wait_tok = 0, 0
  local over_req = req + 1 > max_req
  local over_tok = tok + cost > max_tok
  if over_req or over_tok then
    -- How long until enough of the oldest entries leave the window.
    local need_req = req + 1 - max_req
    local need_tok = tok + cost - max_tok
    local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
    for i = 1, #entries, 2 do
      local r, t = parse(entries[i])
      local leaves = tonumber(entries[i + 1]) + window - now
      if over_req and wait_req == 0 and r > 0 then
        need_req = need_req - r
        if need_req <= 0 then wait_req = leaves end
      end
      if over_tok and wait_tok == 0 and t > 0 then
        need_tok = need_tok - t
        if need_tok <= 0 then wait_tok = leaves end
      end
    end
    -- An inconsistent log never admits: wait one whole window instead.
    if over_req and wait_req <= 0 then wait_req = window end
    if over_tok and wait_tok <= 0 then wait_tok = window end
    if wait_tok > wait_req then
      return {2, wait_tok, req, tok}
    end
    return {1, wait_req, req, tok}
  end
  record(1, ARGV[6], req + 1, tok + cost)
  return {0, 0, req + 1, tok + cost}
end

if mode == 'charge' then
  local tokens = tonumber(ARGV[4])
  local cost = tonumber(ARGV[5])
  local tok_after = 0
  if tokens > 0 then
    local req, tok = prune()
    record(0, ARGV[4], req, tok + tokens)
    tok_after = tok + tokens
  end
  local spend_after = 0
  if cost > 0 then
    local day = math.floor(now / DAY)
    local stored = redis.call('HMGET', KEYS[3], 'd', 'n')
    if tonumber(stored[1]) == day then
      spend_after = redis.call('HINCRBY', KEYS[3], 'n', ARGV[5])
    else
      redis.call('HSET', KEYS[3], 'd', string.format('%d', day), 'n', ARGV[5])
      spend_after = cost
    end
    redis.call('PEXPIRE', KEYS[3], math.floor(((day + 1) * DAY - now) / 1000) + 3600000)
  end
  return {tok_after, spend_after}
end

return redis.error_reply('unknown mode')
"""

SCRIPT_SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()
