/**
 * The Lua scripts that give room messages their place, run by redis-link.ts.
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
 * offset, joins the stream and goes out on the room's channel. Returns the first offset (the
 * batch's offsets are consecutive) and the epoch.
 * KEYS: epoch, offset, stream, gen, channel. ARGV: new epoch, history size, ttl, PUBLISH or
 * SPUBLISH, check lineage, then six per message: time, from, data, plain kind, except, token.
 */
export const PUBLISH_SCRIPT = `
${LINEAGE.replace('CHECK_LINEAGE', 'ARGV[5]').replaceAll('TTL', 'ARGV[3]').replace('NEW_EPOCH', 'ARGV[1]')}
local first
for i = 6, #ARGV, 6 do
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
end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return {first, epoch}
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
