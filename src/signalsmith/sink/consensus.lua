-- The posts pipeline's part of the commit script: each decision folded into the day's
-- consensus hash and the ticker's rolling view, which may raise a mention spike.
--
-- update: [daily key index, ticker, trade date, confidence, score, verdict, published_at,
--            correlation id, arena id, the post's envelope (ARGV index), byte offset and length
--            of its synthesis object, its decision kind, rolling key index, story key index,
--            author key index (0: no author), asset class]
-- Settings: dead_zone, ttl (daily hash, seconds; 0 keeps), window_s, bucket_s,
--   baseline_buckets, spike_factor, spike_min, signal (key index of the signal stream, 0: spikes
--   are not published), signal_maxlen, log (key index of the decision log, 0: none),
--   log_maxlen, now (epoch seconds), now_iso.
--
-- The daily hashes and rolling views are read once per batch, folded in memory post by post, and
-- written once at the end: the script is atomic, so the result is the same as writing after every
-- post, with a few calls per key instead of a dozen per post.
--
-- When a batch changes a day's consensus verdict, the new consensus envelope is also appended to
-- the decision log (kind "consensus", correlation id "<the newest post's>:consensus"), so that
-- the log's readers (the store, the live feed, alert rules) see the consensus turn.

local BUCKETS = math.max(1, math.ceil(S.window_s / S.bucket_s))  -- in the rolling window
local TOTALS = {'n', 'm', 'w', 's', 'buy', 'sell', 'hold'}
local now_bucket = math.floor(S.now / S.bucket_s)
local CUR = {}  -- each total's field for the current bucket, e.g. m:<bucket>
for _, name in ipairs(TOTALS) do CUR[name] = name .. ':' .. now_bucket end
local VOTE = {BUY = 'buy', SELL = 'sell', HOLD = 'hold'}

local function verdict_of(score)
  if score >= S.dead_zone then return 'BUY' end
  if score <= -S.dead_zone then return 'SELL' end
  return 'HOLD'
end

-- A confidence-weighted score: the weighted sum over the weights, within -1..1 (0 with no weight).
local function weighted(sum, weight)
  if weight > 0 then return math.max(-1, math.min(1, sum / weight)) end
  return 0
end

local function synthesis_json(verdict, confidence, score, reasoning)
  return string.format(
    '{"verdict":"%s","confidence":%.4f,"ensemble_score":%.4f,"reasoning":%s}',
    verdict, confidence, score, cjson.encode(reasoning))
end

-- The (ticker, trade date) hashes and rolling views this batch touches, by key index, as read
-- at their first touch and folded since; written back at the end, in the order first touched.
local days, rolls, day_order, roll_order = {}, {}, {}, {}

local function day(index)
  local d = days[index]
  if d then return d end
  local h = redis.call('HMGET', KEYS[index], 'posts', 'buy', 'sell', 'hold',
                       'weight_sum', 'weighted_score', 'confidence_sum', 'verdict')
  d = {posts = num(h[1]), buy = num(h[2]), sell = num(h[3]), hold = num(h[4]),
       wsum = num(h[5]), wscore = num(h[6]), csum = num(h[7]), was = h[8]}
  days[index] = d
  table.insert(day_order, index)
  return d
end

-- The day's consensus: every post of the day, weighted by its confidence. The hash keeps the
-- newest post's envelope around the consensus synthesis.
local function fold_day(u)
  local d = day(u[1])
  local conf, score = u[4], u[5]
  local w = math.max(conf, 0.05)
  d.posts, d.wsum, d.wscore, d.csum = d.posts + 1, d.wsum + w, d.wscore + w * score, d.csum + conf
  if u[6] == 'BUY' then d.buy = d.buy + 1 elseif u[6] == 'SELL' then d.sell = d.sell + 1
  else d.hold = d.hold + 1 end
  d.last = u
end

-- ``text`` with the first ``old`` (plain text) replaced by ``new``; nil when it has none.
local function swap(text, old, new)
  local k = string.find(text, old, 1, true)
  if not k then return nil end
  return string.sub(text, 1, k - 1) .. new .. string.sub(text, k + #old)
end

-- The day's consensus envelope: the newest post's, with the consensus synthesis in place of
-- its own and kind "consensus".
local function consensus_json(u, synthesis)
  local body, at, len = ARGV[u[10]], u[11], u[12]
  local tail = string.sub(body, at + len + 1)
  tail = swap(tail, '"kind":"' .. u[13] .. '"', '"kind":"consensus"') or tail
  return string.sub(body, 1, at) .. synthesis .. tail
end

-- The consensus envelope as the decision log gets it when the verdict turns: an id of its own.
local function turned_json(json, u)
  local id = '"correlation_id":"' .. u[8]
  return swap(json, id .. '"', id .. ':consensus"')
end

local function write_day(index, d)
  local u = d.last
  local s = weighted(d.wscore, d.wsum)
  local verdict = verdict_of(s)
  local agree = ({BUY = d.buy, SELL = d.sell, HOLD = d.hold})[verdict]
  local c = math.max(0, math.min(1, (d.csum / d.posts) * (agree / d.posts)))
  local reasoning = string.format(
    'consensus of %d posts today: %d buy, %d sell, %d hold; confidence-weighted score %+.3f',
    d.posts, d.buy, d.sell, d.hold, s)
  local json = consensus_json(u, synthesis_json(verdict, c, s, reasoning))
  if S.log > 0 and d.was and d.was ~= verdict then
    local turned = turned_json(json, u)
    if turned then xadd(KEYS[S.log], S.log_maxlen, {'data', turned}) end
  end
  local fields = {
    'json', json,
    'ticker', u[2], 'trade_date', u[3], 'verdict', verdict,
    'confidence', string.format('%.4f', c), 'ensemble_score', string.format('%.4f', s),
    'published_at', u[7], 'correlation_id', u[8], 'arena_id', u[9],
    'posts', d.posts, 'buy', d.buy, 'sell', d.sell, 'hold', d.hold,
    'weight_sum', tostring(d.wsum), 'weighted_score', tostring(d.wscore),
    'confidence_sum', tostring(d.csum)}
  local v = d.window
  if v then
    local score = weighted(v.s, v.w)
    for _, value in ipairs({'window_s', S.window_s, 'window_posts', v.n,
        'window_mentions', string.format('%.3f', v.m), 'window_buy', string.format('%.3f', v.buy),
        'window_sell', string.format('%.3f', v.sell), 'window_hold', string.format('%.3f', v.hold),
        'window_score', string.format('%.4f', score), 'window_verdict', verdict_of(score)}) do
      table.insert(fields, value)
    end
  end
  local p = d.spike
  if p then
    for _, value in ipairs({'spike_json', p.json, 'spike_at', S.now_iso,
        'spike_mentions', string.format('%.3f', p.m), 'spike_ratio', string.format('%.2f', p.ratio)}) do
      table.insert(fields, value)
    end
  end
  redis.call('HSET', KEYS[index], unpack(fields))
  if S.ttl > 0 then redis.call('EXPIRE', KEYS[index], S.ttl) end
end

-- One more post counted under a key that lives window_s past its latest post: a new key (the
-- common case, a story seen once) takes one call.
local function bump(index)
  local key = KEYS[index]
  if redis.call('SET', key, 1, 'EX', S.window_s, 'NX') then return 1 end
  local n = redis.call('INCR', key)
  redis.call('EXPIRE', key, S.window_s)
  return n
end

-- How much this post counts: 1 / (copies of its story in the window) / sqrt(its author's posts
-- on the ticker in the window), so reposts and one loud author cannot swing the view.
local function discount(u)
  local copies, posts = 1, 1
  if u[15] > 0 then copies = bump(u[15]) end
  if u[16] > 0 then posts = bump(u[16]) end
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
  local oldest = math.min(now_bucket - S.baseline_buckets, lo)  -- the window still needs lo on
  local gone = {}
  for b = kept, math.min(oldest - 1, kept + S.baseline_buckets + BUCKETS) do
    table.insert(gone, 'm:' .. b)
  end
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
  r.kept = math.max(kept, oldest)
end

-- The rolling view of a ticker as read at its first touch in this batch, aged to now: r.t holds
-- the window's totals, r.c the current bucket's.
local function rolling(index)
  local r = rolls[index]
  if r then return r end
  local key = KEYS[index]
  local names = {'from', 'kept', 'first', 'spiked', 'bl', 'bl_at'}
  for _, name in ipairs(TOTALS) do
    table.insert(names, name); table.insert(names, CUR[name])
  end
  local values = redis.call('HMGET', key, unpack(names))
  r = {}
  for i, name in ipairs(names) do r[name] = values[i] end
  age(key, r)
  r.t, r.c = {}, {}
  for _, name in ipairs(TOTALS) do
    r.t[name], r.c[name] = num(r[name]), num(r[CUR[name]])
  end
  if num(r.first) == 0 then r.first = now_bucket end
  r.spiked = num(r.spiked)
  rolls[index] = r
  table.insert(roll_order, index)
  return r
end

local function write_rolling(index, r)
  local writes = {'from', r.from, 'kept', r.kept, 'first', r.first}
  for _, name in ipairs(TOTALS) do
    table.insert(writes, name); table.insert(writes, tostring(r.t[name]))
    table.insert(writes, CUR[name]); table.insert(writes, tostring(r.c[name]))
  end
  if r.spiked > 0 then table.insert(writes, 'spiked'); table.insert(writes, r.spiked) end
  if r.bl then
    table.insert(writes, 'bl'); table.insert(writes, tostring(r.bl))
    table.insert(writes, 'bl_at'); table.insert(writes, r.bl_at)
  end
  redis.call('HSET', KEYS[index], unpack(writes))
  redis.call('EXPIRE', KEYS[index], (S.baseline_buckets + BUCKETS + 1) * S.bucket_s)
end

-- Mentions per bucket over the baseline (the buckets before this one, since first seen). Only
-- the current bucket changes within a batch, so the earlier ones are read from the hash.
local function baseline(key, r)
  if num(r.bl_at) == now_bucket then return num(r.bl) end
  local span = math.min(S.baseline_buckets, math.max(1, now_bucket - num(r.first)))
  local fields = {}
  for b = now_bucket - span, now_bucket - 1 do table.insert(fields, 'm:' .. b) end
  local sum = 0
  for _, value in ipairs(redis.call('HMGET', key, unpack(fields))) do sum = sum + num(value) end
  r.bl, r.bl_at = sum / span, now_bucket
  return r.bl
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
    ',"exchange":"","asset_class":' .. cjson.encode(u[17]) .. '},"synthesis":' ..
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
-- ticker and bucket; published as its own signal (right after the post that raised it) and kept
-- in the daily hash.
local function spike(u, r)
  local c = r.c
  local m, raw = c.m, c.n
  if m < S.spike_min or r.spiked == now_bucket then return end
  local base = baseline(KEYS[u[14]], r)
  if m < S.spike_factor * math.max(base, 1 / S.baseline_buckets) then return end
  local score = weighted(c.s, c.w)
  local verdict = verdict_of(score)
  local ratio = m / math.max(base, 1e-9)
  if base <= 0 then ratio = m end
  local json = spike_envelope(u, m, raw, base, ratio, score, verdict, math.abs(score))
  r.spiked = now_bucket
  day(u[1]).spike = {json = json, m = m, ratio = ratio}
  if S.signal > 0 then xadd(KEYS[S.signal], S.signal_maxlen, {'data', json}) end
  if S.log > 0 then xadd(KEYS[S.log], S.log_maxlen, {'data', json}) end
end

-- The window fields of a daily hash are the view as it stood after that day's last post: kept
-- when the ticker's next post belongs to another day, and at the end.
local function snapshot(r)
  if r.day then
    local t = r.t
    days[r.day].window = {n = t.n, m = t.m, w = t.w, s = t.s, buy = t.buy, sell = t.sell,
                          hold = t.hold}
  end
end

-- The rolling per-ticker view: mentions, the buy/sell/hold balance and the weighted score over
-- the last window_s seconds, in buckets of bucket_s.
local function roll(u)
  local r = rolling(u[14])
  if r.day ~= u[1] then snapshot(r); r.day = u[1] end
  local d = discount(u)
  local weight = math.max(u[4], 0.05) * d
  local score, vote, t, c = weight * u[5], VOTE[u[6]] or 'hold', r.t, r.c
  t.n, c.n = t.n + 1, c.n + 1
  t.m, c.m = t.m + d, c.m + d
  t.w, c.w = t.w + weight, c.w + weight
  t.s, c.s = t.s + score, c.s + score
  t[vote], c[vote] = t[vote] + d, c[vote] + d
  spike(u, r)
end

local function fold(u) fold_day(u); roll(u) end

local function finish()
  for _, index in ipairs(roll_order) do
    snapshot(rolls[index]); write_rolling(index, rolls[index])
  end
  for _, index in ipairs(day_order) do write_day(index, days[index]) end
end
