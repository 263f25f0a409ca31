-- signalsmith's commit script: one call commits a whole batch of posts.
--
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] the batch as JSON, ARGV[4] the settings as JSON,
-- ARGV[5..] raw values: field values and the consensus JSON, passed as they are. The batch is a
-- list of commits, each [entry id, records, updates]
--   record: [key index, maxlen, [field, value, ...]]   (a number value n stands for ARGV[n])
--   update: [daily key index, ticker, trade date, confidence, score, verdict, published_at,
--            correlation id, arena id, json head (ARGV index), json tail (ARGV index),
--            rolling key index, story key index, author key index (0: no author), asset class]
-- Settings: dead_zone, ttl (daily hash, seconds; 0 keeps), window_s, bucket_s,
--   baseline_buckets, spike_factor, spike_min, signal (key index of the signal stream, 0: spikes
--   are not published), signal_maxlen, now (epoch seconds), now_iso.
-- Returns one 1 (applied) or 0 (no longer pending for this consumer) per commit.

local group, consumer = ARGV[1], ARGV[2]
local batch, S = cjson.decode(ARGV[3]), cjson.decode(ARGV[4])
local BUCKETS = math.max(1, math.ceil(S.window_s / S.bucket_s))  -- in the rolling window
local TOTALS = {'n', 'm', 'w', 's', 'buy', 'sell', 'hold'}
local now_bucket = math.floor(S.now / S.bucket_s)

local function num(value) return tonumber(value) or 0 end

local function xadd(key, maxlen, fields)
  local args = {key}
  if maxlen > 0 then
    table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, maxlen)
  end
  table.insert(args, '*')
  for _, value in ipairs(fields) do table.insert(args, value) end
  redis.call('XADD', unpack(args))
end

local function publish(record)
  local fields = {}
  for _, value in ipairs(record[3]) do
    if type(value) == 'number' then value = ARGV[value] end
    table.insert(fields, value)
  end
  xadd(KEYS[record[1]], record[2], fields)
end

local function verdict_of(score)
  if score >= S.dead_zone then return 'BUY' end
  if score <= -S.dead_zone then return 'SELL' end
  return 'HOLD'
end

local function synthesis_json(verdict, confidence, score, reasoning)
  return string.format(
    '{"verdict":"%s","confidence":%.4f,"ensemble_score":%.4f,"reasoning":%s}',
    verdict, confidence, score, cjson.encode(reasoning))
end

-- The day's consensus in the (ticker, trade date) hash: every post of the day, weighted by its
-- confidence.
local function fold_day(u)
  local key = KEYS[u[1]]
  local conf, score, vote = u[4], u[5], u[6]
  local h = redis.call('HMGET', key, 'posts', 'buy', 'sell', 'hold',
                       'weight_sum', 'weighted_score', 'confidence_sum')
  local posts, buy, sell, hold = num(h[1]) + 1, num(h[2]), num(h[3]), num(h[4])
  local w = math.max(conf, 0.05)
  local wsum, wscore, csum = num(h[5]) + w, num(h[6]) + w * score, num(h[7]) + conf
  if vote == 'BUY' then buy = buy + 1 elseif vote == 'SELL' then sell = sell + 1
  else hold = hold + 1 end
  local s = math.max(-1, math.min(1, wscore / wsum))
  local verdict = verdict_of(s)
  local agree = ({BUY = buy, SELL = sell, HOLD = hold})[verdict]
  local c = math.max(0, math.min(1, (csum / posts) * (agree / posts)))
  local reasoning = string.format(
    'consensus of %d posts today: %d buy, %d sell, %d hold; confidence-weighted score %+.3f',
    posts, buy, sell, hold, s)
  redis.call('HSET', key,
    'json', ARGV[u[10]] .. synthesis_json(verdict, c, s, reasoning) .. ARGV[u[11]],
    'ticker', u[2], 'trade_date', u[3], 'verdict', verdict,
    'confidence', string.format('%.4f', c), 'ensemble_score', string.format('%.4f', s),
    'published_at', u[7], 'correlation_id', u[8], 'arena_id', u[9],
    'posts', posts, 'buy', buy, 'sell', sell, 'hold', hold,
    'weight_sum', tostring(wsum), 'weighted_score', tostring(wscore),
    'confidence_sum', tostring(csum))
  if S.ttl > 0 then redis.call('EXPIRE', key, S.ttl) end
end

-- How much this post counts: 1 / (copies of its story in the window) / sqrt(its author's posts
-- on the ticker in the window), so reposts and one loud author cannot swing the view.
local function discount(u)
  local copies, posts = 1, 1
  if u[13] > 0 then
    copies = redis.call('INCR', KEYS[u[13]]); redis.call('EXPIRE', KEYS[u[13]], S.window_s)
  end
  if u[14] > 0 then
    posts = redis.call('INCR', KEYS[u[14]]); redis.call('EXPIRE', KEYS[u[14]], S.window_s)
  end
  return 1 / (copies * math.sqrt(posts))
end

-- Buckets that left the rolling window leave the totals; their mention counts stay for the
-- spike baseline until they are older than it.
local function age(key, r)
  local lo = now_bucket - BUCKETS + 1
  local from = num(r.from)
  if from == 0 then from = now_bucket end
  for b = from, math.min(lo - 1, from + BUCKETS - 1) do
    local fields = {}
    for i, name in ipairs(TOTALS) do fields[i] = name .. ':' .. b end
    local old = redis.call('HMGET', key, unpack(fields))
    for i, name in ipairs(TOTALS) do r[name] = math.max(0, num(r[name]) - num(old[i])) end
    table.remove(fields, 2)  -- keep m:<bucket> for the baseline
    redis.call('HDEL', key, unpack(fields))
  end
  r.from = math.max(from, lo)
  local kept = num(r.kept)
  if kept == 0 then kept = now_bucket end
  local oldest = now_bucket - S.baseline_buckets
  local gone = {}
  for b = kept, math.min(oldest - 1, kept + S.baseline_buckets + BUCKETS) do
    table.insert(gone, 'm:' .. b)
  end
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
  r.kept = math.max(kept, oldest)
end

-- Mentions per bucket over the baseline (the buckets before this one, since first seen).
local function baseline(key, r)
  if num(r.bl_at) == now_bucket then return num(r.bl) end
  local first = num(r.first)
  local span = math.min(S.baseline_buckets, math.max(1, now_bucket - first))
  local fields = {}
  for b = now_bucket - span, now_bucket - 1 do table.insert(fields, 'm:' .. b) end
  local sum = 0
  for _, value in ipairs(redis.call('HMGET', key, unpack(fields))) do sum = sum + num(value) end
  local mean = sum / span
  redis.call('HSET', key, 'bl', tostring(mean), 'bl_at', now_bucket)
  return mean
end

local function spike_envelope(u, m, raw, base, ratio, score, verdict, conf)
  local against = 'a ticker new to the view'
  if base > 0 then against = string.format('a baseline of %.2f (%.1fx)', base, ratio) end
  local reasoning = string.format(
    'mention spike: %.1f mentions (%d posts) in %ds against %s; ' ..
    'their confidence-weighted score %+.3f', m, raw, S.bucket_s, against, score)
  local id = string.sub(redis.sha1hex(u[2] .. '\031spike\031' .. now_bucket), 1, 32)
  return '{"schema_version":"1","arena":"trading_intelligence","decision":{"target":{' ..
    '"ticker":' .. cjson.encode(u[2]) .. ',"trade_date":' .. cjson.encode(u[3]) ..
    ',"exchange":"","asset_class":' .. cjson.encode(u[15]) .. '},"synthesis":' ..
    synthesis_json(verdict, conf, score, reasoning) ..
    ',"agent_signals":[],"source_metrics":{"total_calls":0,"successful":0,"failed":0,' ..
    '"total_bytes":0,"by_source":{}},"phase_timings":[],"arena_total_seconds":null,' ..
    '"source":null,"status":"ok","kind":"spike"},"published_at":' .. cjson.encode(S.now_iso) ..
    ',"correlation_id":"' .. id .. '","arena_id":' .. cjson.encode(u[9]) ..
    ',"meta":{"spike":{' .. string.format(
      '"bucket_start":%d,"bucket_s":%d,"mentions":%.3f,"posts":%d,"baseline":%.4f,"ratio":%.2f',
      now_bucket * S.bucket_s, S.bucket_s, m, raw, base, ratio) .. '}}}'
end

-- A spike: this bucket's (discounted) mentions far above the ticker's own baseline. Once per
-- ticker and bucket; published as its own signal and kept in the daily hash.
local function spike(u, key, r)
  local m, raw = num(r['m:' .. now_bucket]), num(r['n:' .. now_bucket])
  if m < S.spike_min or num(r.spiked) == now_bucket then return end
  local base = baseline(key, r)
  if m < S.spike_factor * math.max(base, 1 / S.baseline_buckets) then return end
  local w = num(r['w:' .. now_bucket])
  local score = 0
  if w > 0 then score = math.max(-1, math.min(1, num(r['s:' .. now_bucket]) / w)) end
  local verdict = verdict_of(score)
  local ratio = m / math.max(base, 1e-9)
  if base <= 0 then ratio = m end
  local json = spike_envelope(u, m, raw, base, ratio, score, verdict, math.abs(score))
  redis.call('HSET', key, 'spiked', now_bucket)
  redis.call('HSET', KEYS[u[1]], 'spike_json', json, 'spike_at', S.now_iso,
             'spike_mentions', string.format('%.3f', m), 'spike_ratio', string.format('%.2f', ratio))
  if S.signal > 0 then xadd(KEYS[S.signal], S.signal_maxlen, {'data', json}) end
end

-- The rolling per-ticker view: mentions, the buy/sell/hold balance and the weighted score over
-- the last window_s seconds, in buckets of bucket_s.
local function roll(u)
  local key = KEYS[u[12]]
  local cur = ':' .. now_bucket
  local names = {'from', 'kept', 'first', 'spiked', 'bl', 'bl_at'}
  for _, name in ipairs(TOTALS) do
    table.insert(names, name); table.insert(names, name .. cur)
  end
  local values = redis.call('HMGET', key, unpack(names))
  local r = {}
  for i, name in ipairs(names) do r[name] = values[i] end
  age(key, r)
  local d = discount(u)
  local weight = math.max(u[4], 0.05) * d
  local vote = string.lower(u[6])
  local add = {n = 1, m = d, w = weight, s = weight * u[5], buy = 0, sell = 0, hold = 0}
  add[vote] = d
  local writes = {'from', r.from, 'kept', r.kept, 'first', num(r.first) > 0 and r.first or now_bucket}
  for _, name in ipairs(TOTALS) do
    r[name] = num(r[name]) + add[name]
    r[name .. cur] = num(r[name .. cur]) + add[name]
    table.insert(writes, name); table.insert(writes, tostring(r[name]))
    table.insert(writes, name .. cur); table.insert(writes, tostring(r[name .. cur]))
  end
  redis.call('HSET', key, unpack(writes))
  redis.call('EXPIRE', key, (S.baseline_buckets + BUCKETS + 1) * S.bucket_s)
  local score = 0
  if r.w > 0 then score = math.max(-1, math.min(1, r.s / r.w)) end
  local verdict = verdict_of(score)
  redis.call('HSET', KEYS[u[1]], 'window_s', S.window_s, 'window_posts', r.n,
    'window_mentions', string.format('%.3f', r.m), 'window_buy', string.format('%.3f', r.buy),
    'window_sell', string.format('%.3f', r.sell), 'window_hold', string.format('%.3f', r.hold),
    'window_score', string.format('%.4f', score), 'window_verdict', verdict)
  spike(u, key, r)
end

local applied = {}
for n, commit in ipairs(batch) do
  local id = commit[1]
  if #redis.call('XPENDING', KEYS[1], group, id, id, 1, consumer) == 0 then
    applied[n] = 0
  else
    for _, record in ipairs(commit[2]) do publish(record) end
    for _, update in ipairs(commit[3]) do fold_day(update); roll(update) end
    redis.call('XACK', KEYS[1], group, id)
    applied[n] = 1
  end
end
return applied
