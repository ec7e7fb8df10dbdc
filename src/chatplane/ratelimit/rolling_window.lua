-- Rolling-window rate limit: check every window of one key, then count, atomically.
-- Run by chatplane.ratelimit.redis.RedisRateLimiter (EVALSHA, loaded on demand).
--
-- KEYS[1]: the key's hash, fields "<window seconds>:<bucket index>" -> count.
-- ARGV[1]: TTL (ms) for the hash after a counted hit (outlives its newest bucket).
-- Then 4 values per limited window: seconds, current bucket index, buckets per window, limit.
-- Returns {allowed (0/1), then per window: count, bucket}; see windows._decide for their
-- meaning.
local key = KEYS[1]
local ttl = tonumber(ARGV[1])
local byname = {}
local wins = {}
for base = 2, #ARGV, 4 do
  local w = {
    sec = ARGV[base], curname = ARGV[base + 1], cur = tonumber(ARGV[base + 1]),
    n = tonumber(ARGV[base + 2]), limit = tonumber(ARGV[base + 3]),
    total = 0, newest = tonumber(ARGV[base + 1]), buckets = {},
  }
  byname[w.sec] = w
  wins[#wins + 1] = w
end
local flat = redis.call('HGETALL', key)
local stale = {}
for i = 1, #flat, 2 do
  local sec, idx = string.match(flat[i], '^(%d+):(%-?%d+)$')
  local w = sec and byname[sec]
  if w then
    idx = tonumber(idx)
    if idx <= w.cur - w.n then
      stale[#stale + 1] = flat[i]
    else
      local c = tonumber(flat[i + 1])
      w.total = w.total + c
      w.buckets[#w.buckets + 1] = {idx, c}
      if idx > w.newest then w.newest = idx end
    end
  end
end
for i = 1, #stale, 100 do
  redis.call('HDEL', key, unpack(stale, i, math.min(i + 99, #stale)))
end
local allowed = 1
for _, w in ipairs(wins) do
  if w.total >= w.limit then allowed = 0 end
end
local out = {allowed}
for _, w in ipairs(wins) do
  if allowed == 1 then
    redis.call('HINCRBY', key, w.sec .. ':' .. w.curname, 1)
    out[#out + 1] = w.total + 1
    out[#out + 1] = w.newest
  else
    local room = 0
    if w.total >= w.limit then
      table.sort(w.buckets, function(a, b) return a[1] < b[1] end)
      local need = w.total - w.limit + 1
      local acc = 0
      for _, b in ipairs(w.buckets) do
        acc = acc + b[2]
        if acc >= need then
          room = b[1]
          break
        end
      end
    end
    out[#out + 1] = w.total
    out[#out + 1] = room
  end
end
if allowed == 1 and redis.call('PTTL', key) < ttl then
  redis.call('PEXPIRE', key, ttl)
end
return out
