-- signalsmith's commit script: one call commits a whole batch of a pipeline's entries. For each
-- entry still pending for this consumer it appends the entry's records, folds its updates (the
-- pipeline's part, inserted below), and acknowledges it; an entry no longer ours is left alone.
--
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] the batch as JSON, ARGV[4] the settings as JSON,
-- ARGV[5..] raw values: field values and envelopes, passed as they are. The batch is a list of
-- commits, each [entry id, records, updates]
--   record: [key index, maxlen, [field, value, ...]]   (a number value n stands for ARGV[n])
--   update: the pipeline's part reads it (see its script)
-- Settings: types (one letter per key: s stream, h hash, k counter), max_values (per record),
--   and the part's own.
-- Returns one 1 (applied) or 0 (no longer pending for this consumer) per commit.
-- Refuses the whole batch with an error before its first write when a key holds the wrong type
-- or a record is too large: a script is not rolled back, and a refused batch is sent again.

local group, consumer = ARGV[1], ARGV[2]
local batch, S = cjson.decode(ARGV[3]), cjson.decode(ARGV[4])

local function num(value) return tonumber(value) or 0 end

-- XADD key [MAXLEN ~ maxlen] * field value ...; a number value n stands for ARGV[n].
local function xadd(key, maxlen, fields)
  local args = {key}
  if maxlen > 0 then args[2], args[3], args[4] = 'MAXLEN', '~', maxlen end
  args[#args + 1] = '*'
  for _, value in ipairs(fields) do
    if type(value) == 'number' then value = ARGV[value] end
    args[#args + 1] = value
  end
  redis.call('XADD', unpack(args))
end

-- The pipeline's part: fold(update) for each update, finish() once after the batch.
--@part

-- Stream ids as numbers, to find the batch's id range.
local function parse_id(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local function before(ams, aseq, bms, bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end

-- The batch's entries still pending for this consumer, from one XPENDING over the batch's id
-- range. ``complete`` is false when the range held more of ours than asked for: then an entry
-- missing from the set is checked on its own.
local function ours()
  local lo, hi
  local lo_ms, lo_seq, hi_ms, hi_seq
  for _, commit in ipairs(batch) do
    local ms, seq = parse_id(commit[1])
    if lo == nil or before(ms, seq, lo_ms, lo_seq) then lo, lo_ms, lo_seq = commit[1], ms, seq end
    if hi == nil or before(hi_ms, hi_seq, ms, seq) then hi, hi_ms, hi_seq = commit[1], ms, seq end
  end
  local set = {}
  if lo == nil then return set, true end
  local rows = redis.call('XPENDING', KEYS[1], group, lo, hi, #batch, consumer)
  for _, row in ipairs(rows) do set[row[1]] = true end
  return set, #rows < #batch
end

local TYPES = {s = 'stream', h = 'hash', k = 'string'}

local function refuse(why)
  return redis.error_reply('REFUSED ' .. why)
end

local function check()
  for i = 1, #KEYS do
    local want = TYPES[string.sub(S.types, i, i)]
    local got = redis.call('TYPE', KEYS[i]).ok
    if got ~= 'none' and got ~= want then
      return refuse('key ' .. KEYS[i] .. ' holds a ' .. got .. ', not a ' .. want)
    end
    if got == 'string' and not tonumber(redis.call('GET', KEYS[i])) then
      return refuse('key ' .. KEYS[i] .. ' holds no count')
    end
  end
  for _, commit in ipairs(batch) do
    for _, record in ipairs(commit[2]) do
      local n = #record[3]
      if n == 0 or n % 2 == 1 or n > S.max_values then
        return refuse('entry ' .. commit[1] .. ': a record of ' .. n .. ' values')
      end
    end
  end
end

local refused = check()
if refused then return refused end

local pending, complete = ours()

local function still_ours(id)
  if pending[id] then return true end
  if complete then return false end
  return #redis.call('XPENDING', KEYS[1], group, id, id, 1, consumer) > 0
end

local applied, done, ids = {}, {}, {}
for n, commit in ipairs(batch) do
  local id = commit[1]
  -- Not ours any more, or already applied earlier in this batch: nothing to do.
  if done[id] or not still_ours(id) then
    applied[n] = 0
  else
    for _, record in ipairs(commit[2]) do xadd(KEYS[record[1]], record[2], record[3]) end
    for _, update in ipairs(commit[3]) do fold(update) end
    done[id] = true
    table.insert(ids, id)
    applied[n] = 1
  end
end
finish()
for first = 1, #ids, 1000 do
  redis.call('XACK', KEYS[1], group, unpack(ids, first, math.min(#ids, first + 999)))
end
return applied
