package dedupcache

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The BF.* representation of the shared filter, for servers with a bloom
// module (Redis 8, Redis Stack, Valkey with valkey-bloom).
//
// Each shard is a scalable bloom filter likes:bf:{<post>:<shard>} created by
// BF.INSERT (or BF.RESERVE) with an explicit capacity (dedup.shared_capacity
// divided by the shards), error rate (dedup.fp_rate; the module tightens
// each further sub-filter by half, so the total stays below twice that) and
// expansion (sharedGrowth), plus its trusted marker
// likes:bf:{<post>:<shard>}:t. The hash tag holds post and shard, so the two
// keys of a shard share a slot (the script touches both) while the shards of
// a post still spread over the cluster. Items are user ids.
//
// Valkey's bloom module refuses objects over 128 MiB by default
// (bf.bloom-memory-usage-limit): the first sub-filter is checked against that
// at start-up (see newGeometry), and a filter that later cannot grow makes
// BF.INSERT fail for its items: the script then drops the trusted marker, so
// that post's likes go to the authoritative check instead of trusting a
// filter that misses pairs (and the round trip that saw the refusal does not
// verify the post again, however empty the database says it is).
//
// The tests run this path against redis-server with a stand-in bloom module
// (testenv.RedisWithBloom), since none is packaged for this machine's Redis.

// bloomScript test-and-adds (ARGV[1] = "a") or tests ("t") the items
// ARGV[6..] against KEYS[1] (the filter) and reads KEYS[2] (its trusted
// marker). ARGV[2] is the TTL in milliseconds, ARGV[3..5] capacity, error
// rate and expansion for BF.INSERT. Reply as bitmapScript's; an item the
// module refused is answered 'e'.
var bloomScript = redis.NewScript(`
local existed = redis.call('EXISTS', KEYS[1])
local trusted = redis.call('EXISTS', KEYS[2])
if existed == 0 and trusted == 1 then redis.call('DEL', KEYS[2]); trusted = 0 end
local items = {}
for i = 6, #ARGV do items[#items + 1] = ARGV[i] end
local out = {}
if ARGV[1] ~= 'a' then
  if existed == 0 then return {3, ''} end
  local r = redis.call('BF.MEXISTS', KEYS[1], unpack(items))
  for i = 1, #items do out[i] = (r[i] == 1) and '0' or '1' end
  return {trusted, table.concat(out)}
end
local r = redis.call('BF.INSERT', KEYS[1], 'CAPACITY', ARGV[3], 'ERROR', ARGV[4], 'EXPANSION', ARGV[5], 'ITEMS', unpack(items))
local failed = false
for i = 1, #items do
  if type(r[i]) == 'table' then out[i] = 'e'; failed = true
  elseif r[i] == 1 then out[i] = '1'
  else out[i] = '0' end
end
if failed and trusted == 1 then redis.call('DEL', KEYS[2]); trusted = 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if trusted == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return {trusted, table.concat(out)}
`)

// bloomMarkScript trusts (ARGV[1] = "1": creates the filter with BF.RESERVE
// if missing, sets the marker) or distrusts ("0": deletes the marker) a
// shard. ARGV[2] is the TTL, ARGV[3..5] capacity, error rate, expansion.
var bloomMarkScript = redis.NewScript(`
if ARGV[1] ~= '1' then redis.call('DEL', KEYS[2]); return 1 end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('BF.RESERVE', KEYS[1], ARGV[4], ARGV[3], 'EXPANSION', ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
`)

// bloomKeys returns the filter and marker keys of (post, shard).
func bloomKeys(post int64, shard int) []string {
	k := "likes:bf:{" + strconv.FormatInt(post, 10) + ":" + strconv.Itoa(shard) + "}"
	return []string{k, k + ":t"}
}

// hasBloom reports whether the server knows BF.INSERT and BF.MEXISTS
// (COMMAND INFO answers nil for an unknown command).
func hasBloom(ctx context.Context, rdb redis.UniversalClient) (bool, error) {
	v, err := rdb.Do(ctx, "COMMAND", "INFO", "BF.INSERT", "BF.MEXISTS").Slice()
	if err != nil {
		return false, fmt.Errorf("COMMAND INFO BF.INSERT: %w", err)
	}
	if len(v) != 2 {
		return false, errors.New("COMMAND INFO BF.INSERT: unexpected reply")
	}
	return v[0] != nil && v[1] != nil, nil
}
