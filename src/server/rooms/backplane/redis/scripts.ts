/**
 * The Lua scripts that give room messages their place, called by room-commands.ts and defined
 * on every command connection by connections.ts.
 *
 * Sequencing: the publish script takes a room's next offset for each message of a batch,
 * appends it to the room's stream (under the stream ID `<offset>-1`, so history pages by
 * offset) and publishes it on the room's channel, all in one atomic step, so channel order is
 * offset order. It stores and sends the parts of a message (time, sender, data); the envelope
 * is built in TypeScript on each node.
 *
 * Lineage (Sentinel and Redis Cluster): replication is asynchronous, so a replica promoted to
 * master may lack the last messages its old master gave out and nodes delivered; the next
 * publish there would give their offsets to other messages. So each room records the
 * replication ID of the master that gives out its offsets (`plaza:{room}:gen`), and every script
 * starts a new epoch when another master (a promoted replica, a restarted master, the target
 * of a slot migration) first serves the room. Members' positions are then plainly old, and the
 * backplane tells them so (a reset) where a reused offset would have been a silent gap. One
 * Redis (`redis://`) skips the check: it keeps its epochs across a restart with its data.
 */

/**
 * Shared by the scripts: `lineage` is the serving master's replication ID when checked (Sentinel,
 * Cluster; ARGV flag '1'), else ''; `fresh(nextEpoch)` starts the room over under that epoch.
 * KEYS: epoch, offset, stream, gen.
 */
const LINEAGE = `
local lineage = ''
if CHECK_LINEAGE == '1' then
  lineage = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
end
local epoch = redis.call('GET', KEYS[1])
local function fresh(nextEpoch)
  epoch = nextEpoch
  redis.call('SET', KEYS[1], epoch, 'PX', TTL)
  redis.call('DEL', KEYS[2], KEYS[3])
  if lineage ~= '' then redis.call('SET', KEYS[4], lineage, 'PX', TTL) end
end
if not epoch or (lineage ~= '' and redis.call('GET', KEYS[4]) ~= lineage) then fresh(NEW_EPOCH) end
`;

/**
 * Sequences a batch of one room's messages, in order, in one atomic step: each takes the next
 * offset, joins the stream and goes out on the room's channel. Returns the epoch, each
 * message's offset, and for each '' (published now) or 'd' + the fingerprint kept with its
 * publish id (a repeat: nothing published, the offset is the first one's).
 *
 * The publish-id window (issue #22) lives with the room, in its hash slot: `ids` maps a publish
 * id to `epoch offset time fingerprint`, `idq` lists the ids oldest first for the bounds (count
 * and age; an id that expired and came back sits in `idq` twice, and its older place may
 * forget it early: the bounds hold either way). Checked and written in this same script as the
 * INCR, so two nodes sending the same id cannot both publish it.
 * KEYS: epoch, offset, stream, gen, channel, ids, idq. ARGV: new epoch, history size, ttl,
 * PUBLISH or SPUBLISH, check lineage, window size, window ttl, then eight per message: time,
 * from, data, plain kind, except, token, publish id ('' for none), fingerprint.
 */
export const PUBLISH_SCRIPT = `
${LINEAGE.replace('CHECK_LINEAGE', 'ARGV[5]').replaceAll('TTL', 'ARGV[3]').replace('NEW_EPOCH', 'ARGV[1]')}
local first
local offsets = {}
local repeats = {}
local windowSize = tonumber(ARGV[6])
local windowTtl = tonumber(ARGV[7])
local withIds = false
for i = 8, #ARGV, 8 do
  local id = ARGV[i + 6]
  local had = false
  if id ~= '' and windowSize > 0 then
    withIds = true
    local kept = redis.call('HGET', KEYS[6], id)
    if kept then
      local keptEpoch, keptOffset, keptTime, keptPrint = string.match(kept, '^(%S+) (%d+) (%d+) ?(.*)$')
      if keptTime and tonumber(keptTime) > tonumber(ARGV[i]) - windowTtl then
        offsets[#offsets + 1] = tonumber(keptOffset)
        repeats[#repeats + 1] = 'd' .. keptEpoch .. ' ' .. keptPrint
        had = true
      end
    end
  end
  if not had then
  local offset = redis.call('INCR', KEYS[2])
  local function append()
    return redis.pcall('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], offset .. '-1', 't', ARGV[i], 'f', ARGV[i + 1], 'd', ARGV[i + 2], 'k', ARGV[i + 3], 'x', ARGV[i + 4], 'n', ARGV[i + 5])
  end
  local added = append()
  if type(added) == 'table' and added.err then
    -- A stream this script did not write (an older Plaza's): the room starts a new epoch over
    -- it. Only the batch's first message can meet one.
    if first then return redis.error_reply(added.err) end
    fresh(ARGV[1])
    offset = redis.call('INCR', KEYS[2])
    added = append()
    if type(added) == 'table' and added.err then return redis.error_reply(added.err) end
  end
  first = first or offset
  redis.call(ARGV[4], KEYS[5], 'm ' .. offset .. ' ' .. epoch .. ' ' .. ARGV[i] .. ' ' .. ARGV[i + 3] .. ' ' .. ARGV[i + 4] .. ' ' .. ARGV[i + 5] .. '\\n' .. ARGV[i + 1] .. '\\n' .. ARGV[i + 2])
  offsets[#offsets + 1] = offset
  repeats[#repeats + 1] = ''
  if id ~= '' and windowSize > 0 then
    redis.call('HSET', KEYS[6], id, epoch .. ' ' .. offset .. ' ' .. ARGV[i] .. ' ' .. ARGV[i + 7])
    -- RPUSH answers the list's length: no LLEN per publish.
    local queued = redis.call('RPUSH', KEYS[7], id)
    while queued > windowSize do
      redis.call('HDEL', KEYS[6], redis.call('LPOP', KEYS[7]))
      queued = queued - 1
    end
  end
  end
end
if withIds then
  -- By age, from the oldest end, once per batch rather than per message: a few ids per call keep
  -- the script short, the count bound above keeps the window bounded meanwhile, and a read
  -- ignores an id past its age anyway.
  local now = tonumber(ARGV[#ARGV - 7])
  for _ = 1, 8 do
    local oldest = redis.call('LINDEX', KEYS[7], 0)
    if not oldest then break end
    local kept = redis.call('HGET', KEYS[6], oldest)
    local keptTime = kept and string.match(kept, '^%S+ %d+ (%d+)')
    if keptTime and tonumber(keptTime) > now - windowTtl then break end
    redis.call('LPOP', KEYS[7])
    if keptTime then redis.call('HDEL', KEYS[6], oldest) end
  end
end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
if withIds then
  redis.call('PEXPIRE', KEYS[6], windowTtl)
  redis.call('PEXPIRE', KEYS[7], windowTtl)
end
return {epoch, offsets, repeats}
`;

/**
 * Settles a publish id whose client gave up waiting (issue #22, item 3), atomically with the
 * publish script's check: returns the id's entry if it was published within the window, or else
 * records it as withdrawn (`- 0 <time>`, which the publish script then reports as a repeat of
 * epoch '-': the node refuses that publish) and returns ''. Bounded like the publish script's
 * window. KEYS: ids, idq. ARGV: publish id, now, window size, window ttl.
 */
export const WITHDRAW_SCRIPT = `
local kept = redis.call('HGET', KEYS[1], ARGV[1])
local keptTime = kept and string.match(kept, '^%S+ %d+ (%d+)')
if keptTime and tonumber(keptTime) > tonumber(ARGV[2]) - tonumber(ARGV[4]) then return kept end
redis.call('HSET', KEYS[1], ARGV[1], '- 0 ' .. ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[1])
while redis.call('LLEN', KEYS[2]) > tonumber(ARGV[3]) do redis.call('HDEL', KEYS[1], redis.call('LPOP', KEYS[2])) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return ''
`;

/**
 * The room's epoch (created, with an empty history, when missing or of another lineage), last
 * offset and newest entries. KEYS: epoch, offset, stream, gen. ARGV: new epoch, ttl, count, check lineage.
 */
export const FETCH_SCRIPT = `
${LINEAGE.replace('CHECK_LINEAGE', 'ARGV[4]').replaceAll('TTL', 'ARGV[2]').replace('NEW_EPOCH', 'ARGV[1]')}
local offset = redis.call('GET', KEYS[2]) or '0'
local entries = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', ARGV[3])
return {epoch, offset, entries}
`;

/**
 * Compare-and-set of a room's epoch; the new epoch starts with no offsets and no history.
 * KEYS: epoch, offset, stream, gen. ARGV: current, next, ttl, check lineage.
 */
export const RETIRE_SCRIPT = `
${LINEAGE.replace('CHECK_LINEAGE', 'ARGV[4]').replaceAll('TTL', 'ARGV[3]').replace('NEW_EPOCH', 'ARGV[2]')}
if epoch ~= ARGV[1] then return 0 end
fresh(ARGV[2])
return 1
`;

/** Each script as defineCommand adds it to a client: its name there, how many of its arguments are keys, its source. */
export const SCRIPTS = {
  plazaPublish: { numberOfKeys: 7, lua: PUBLISH_SCRIPT },
  plazaFetch: { numberOfKeys: 4, lua: FETCH_SCRIPT },
  plazaRetire: { numberOfKeys: 4, lua: RETIRE_SCRIPT },
  plazaWithdraw: { numberOfKeys: 2, lua: WITHDRAW_SCRIPT },
} as const;

/** The scripts as methods of a client they were defined on. */
export interface Scripts {
  plazaRetire(...args: Array<string | number>): Promise<number>;
  plazaPublish(...args: Array<string | number>): Promise<[string, number[], string[]]>;
  plazaFetch(...args: Array<string | number>): Promise<[string, string, Array<[string, string[]]>]>;
  plazaWithdraw(...args: Array<string | number>): Promise<string>;
}
