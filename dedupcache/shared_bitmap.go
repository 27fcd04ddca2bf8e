package dedupcache

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/redis/go-redis/v9"
)

// The bitmap representation of the shared filter, for servers without
// BF.* commands (plain Redis 7, the machine's Redis).
//
// Each shard key likes:f:<post>:<shard> (no hash tag: the shards of a post
// spread over cluster slots) is one string used as a bitmap:
//
//	bits  0..7   trusted (1: verified complete, see the package doc)
//	bits  8..15  layers in use (0: not initialised)
//	bits 16..31  geometry id (the layer layout it was written with)
//	bits 32..63  pairs added to the current layer
//	bits 64..    layer 0, layer 1, ... each a bloom filter of m_i bits
//
// A layer is a bloom filter for cap_i pairs at false-positive rate
// p_i = p/2^i; cap_(i+1) = growth·cap_i. A pair is "maybe seen" when all
// its bits are set in some layer; it is added to the newest layer, and when
// that layer holds cap_i pairs the next one is opened. So the memory of a
// post's filter follows its likers (within a factor of growth), its
// false-positive rate is p while the post stays within the first layer's
// capacity and stays below Σ p_i < 2p beyond it: a scalable bloom filter
// with RedisBloom's semantics (first sub-filter at the configured error
// rate, each next one tightened by half), so both representations behave
// alike.
//
// Positions are computed by the script from two 32-bit hashes per pair
// (h1 + j·h2 mod m_i, Kirsch–Mitzenmacher double hashing; Lua's % is exact
// here, as every operand stays below 2^53): one 8-byte item
// per pair goes over the wire whatever the number of layers, instead of
// Σ k_i positions. The layout is compiled into the script's text, so a
// different configuration is a different script; the geometry id in the
// header keeps sidecars configured differently from misreading each other's
// keys (a key of another geometry answers "maybe" to everything).

const (
	headerBits = 64
	// maxKeyBits keeps one shard key within 128 MiB, the default
	// per-object limit of Valkey's bloom module, and far below Redis's
	// 512 MiB string limit.
	maxKeyBits = 128 << 20 * 8
	// sharedGrowth is the capacity ratio of consecutive layers.
	sharedGrowth = 4
	// maxItemsPerCall bounds one script call, so a call blocks Redis for a
	// few milliseconds at most.
	maxItemsPerCall = 256
)

// layer is one bloom filter of a shard key.
type layer struct {
	off, m, k, cap uint64
}

// geometry is the layer layout of every shard key.
type geometry struct {
	layers []layer
	id     uint16
}

// newGeometry lays out layers for perShard pairs at false-positive rate fp
// in the first layer, tightening by half per layer.
func newGeometry(perShard int, fp float64) (geometry, error) {
	if perShard < 1 {
		return geometry{}, fmt.Errorf("capacity per shard must be at least 1, got %d", perShard)
	}
	if !(fp >= minFPRate && fp <= maxFPRate) {
		return geometry{}, fmt.Errorf("false-positive rate must be between %g and %g, got %g", minFPRate, maxFPRate, fp)
	}
	var g geometry
	off := uint64(headerBits)
	c := uint64(perShard)
	p := fp
	for {
		m, k := bloom.EstimateParameters(uint(c), p)
		if off+uint64(m) > maxKeyBits {
			break
		}
		g.layers = append(g.layers, layer{off: off, m: uint64(m), k: uint64(k), cap: c})
		off += uint64(m)
		c *= sharedGrowth
		p /= 2
		if len(g.layers) == 16 || p < 1e-15 {
			break
		}
	}
	if len(g.layers) == 0 {
		return geometry{}, fmt.Errorf("a filter for %d pairs at %g does not fit in %d MiB", perShard, fp, maxKeyBits>>23)
	}
	h := fnv.New32a()
	for _, l := range g.layers {
		var b [32]byte
		binary.LittleEndian.PutUint64(b[0:], l.off)
		binary.LittleEndian.PutUint64(b[8:], l.m)
		binary.LittleEndian.PutUint64(b[16:], l.k)
		binary.LittleEndian.PutUint64(b[24:], l.cap)
		h.Write(b[:])
	}
	g.id = uint16(h.Sum32()) | 1 // never 0, the id of a key not initialised
	return g, nil
}

// positions returns where pair's bits are in layer i (the script's formula).
func (g geometry) positions(i int, ph pairHash) []uint64 {
	l := g.layers[i]
	out := make([]uint64, l.k)
	for j := range l.k {
		out[j] = l.off + (uint64(ph.h1)+j*uint64(ph.h2))%l.m
	}
	return out
}

// bytesFor returns the memory of one shard key holding n pairs.
func (g geometry) bytesFor(n uint64) uint64 {
	end := uint64(headerBits)
	for _, l := range g.layers {
		end = l.off + l.m
		if n <= l.cap {
			break
		}
		n -= l.cap
	}
	return (end + 7) / 8
}

// fpAt returns the false-positive rate of a shard key holding n pairs.
func (g geometry) fpAt(n uint64) float64 {
	pass := 1.0
	for i, l := range g.layers {
		fill := min(n, l.cap)
		if i == len(g.layers)-1 {
			fill = n
		}
		pass *= 1 - math.Pow(1-math.Exp(-float64(l.k)*float64(fill)/float64(l.m)), float64(l.k))
		n -= fill
		if n == 0 {
			break
		}
	}
	return 1 - pass
}

// bitmapScript builds the test-and-add script for g.
//
// KEYS[1] is a shard key; ARGV[1] is "a" (test and add) or "t" (test only),
// ARGV[2] the key's TTL in milliseconds, ARGV[3] the pairs, 8 bytes each
// (h1, h2 big-endian). It returns {status, answers}. Status 1 (trusted) or
// 0 (not verified) come with one answer byte per pair: '1' for never added
// before, '0' for maybe seen. Status 2 (the key has another geometry) and 3
// (a test of a key that does not exist) come with none. Layers before the
// newest are read in rounds, one BITFIELD of GETs per round for every pair
// still in the running, a pair leaving at its first clear bit (so about two
// reads per pair and layer, as with GETBIT, but a few commands per chunk
// instead of one per read: Redis counts each command a script runs); the
// newest is tested and set with one BITFIELD per chunk of pairs (each SET
// returns the bit's old value).
func bitmapScript(g geometry) *redis.Script {
	var off, m, k, c []string
	for _, l := range g.layers {
		off = append(off, strconv.FormatUint(l.off, 10))
		m = append(m, strconv.FormatUint(l.m, 10))
		k = append(k, strconv.FormatUint(l.k, 10))
		c = append(c, strconv.FormatUint(l.cap, 10))
	}
	src := `
local OFF = {` + strings.Join(off, ",") + `}
local M = {` + strings.Join(m, ",") + `}
local K = {` + strings.Join(k, ",") + `}
local CAP = {` + strings.Join(c, ",") + `}
local NL = ` + strconv.Itoa(len(g.layers)) + `
local GID = ` + strconv.Itoa(int(g.id)) + `
local key = KEYS[1]
-- Offsets go to Redis as strings: string.format('%d') is cheaper than the
-- conversion redis.call applies to Lua numbers (about a quarter of the
-- script's time).
local fmt = string.format
local hdr = redis.call('BITFIELD', key, 'GET', 'u8', '#0', 'GET', 'u8', '#1', 'GET', 'u16', '#1', 'GET', 'u32', '#1')
local trusted, L, gid, n = hdr[1], hdr[2], hdr[3], hdr[4]
if (L > 0 and gid ~= GID) or L > NL then
  -- A key of another layout cannot take this pair, which the caller will
  -- accept through the authoritative check: the sidecars of that layout
  -- must not go on trusting the key, or they would answer "never added"
  -- for it.
  if ARGV[1] == 'a' and trusted ~= 0 then redis.call('BITFIELD', key, 'SET', 'u8', '#0', 0) end
  return {2, ''}
end
local data = ARGV[3]
local items = math.floor(#data / 8)
local function item(x)
  return struct.unpack('>I4I4', data, 8 * x + 1)
end
-- test(i, cand, nc, seen) tests the nc items listed in cand against layer
-- i: it marks seen[y] for each item y whose bits are all set and returns the
-- others, in order. It reads position j of every item still in the running
-- with one BITFIELD per round, so an item leaves at its first clear bit (two
-- reads on average in a half-full layer) and a chunk costs at most k
-- commands per layer, not one GETBIT per position read.
local function test(i, cand, nc, seen)
  local o, m, kk = OFF[i], M[i], K[i]
  local H1, H2, alive = {}, {}, {}
  for c = 1, nc do
    H1[c], H2[c] = item(cand[c])
    alive[c] = c
  end
  local na = nc
  local left, nl = {}, 0
  for j = 0, kk - 1 do
    if na == 0 then break end
    local ops, nops = {}, 0
    for a = 1, na do
      local c = alive[a]
      ops[nops + 1] = 'GET'; ops[nops + 2] = 'u1'; ops[nops + 3] = fmt('%d', o + (H1[c] + j * H2[c]) % m)
      nops = nops + 3
    end
    local r = redis.call('BITFIELD', key, unpack(ops, 1, nops))
    local keep, nk = {}, 0
    for a = 1, na do
      if r[a] == 1 then
        nk = nk + 1; keep[nk] = alive[a]
      else
        nl = nl + 1; left[nl] = cand[alive[a]]
      end
    end
    alive, na = keep, nk
  end
  for a = 1, na do seen[cand[alive[a]]] = true end
  table.sort(left)
  return left, nl
end
-- older(lo, hi, last, seen) tests items lo..hi against layers 1..last and
-- returns those seen in none.
local function older(lo, hi, last, seen)
  local cand, nc = {}, 0
  for y = lo, hi do nc = nc + 1; cand[nc] = y end
  for i = 1, last do
    if nc == 0 then break end
    cand, nc = test(i, cand, nc, seen)
  end
  return cand, nc
end
local out = {}
if ARGV[1] ~= 'a' then
  if L == 0 then return {3, ''} end
  local lim = math.floor(1500 / K[L])
  local x = 0
  while x < items do
    local hi = math.min(items, x + lim) - 1
    local seen = {}
    older(x, hi, L, seen)
    for y = x, hi do out[y + 1] = seen[y] and '0' or '1' end
    x = hi + 1
  end
  return {trusted, table.concat(out)}
end
if L == 0 then L = 1; n = 0 end
local x = 0
while x < items do
  if L < NL and n >= CAP[L] then L = L + 1; n = 0 end
  local room = items - x
  if L < NL and CAP[L] - n < room then room = CAP[L] - n end
  local lim = math.floor(1500 / K[L])
  if room > lim then room = lim end
  local seen = {}
  local pend, npend = older(x, x + room - 1, L - 1, seen)
  for y = x, x + room - 1 do
    if seen[y] then out[y + 1] = '0' end
  end
  if npend > 0 then
    local o, m, kk = OFF[L], M[L], K[L]
    local ops, nops = {}, 0
    for p = 1, npend do
      local h1, h2 = item(pend[p])
      for j = 0, kk - 1 do
        ops[nops + 1] = 'SET'; ops[nops + 2] = 'u1'; ops[nops + 3] = fmt('%d', o + (h1 + j * h2) % m); ops[nops + 4] = '1'
        nops = nops + 4
      end
    end
    local r = redis.call('BITFIELD', key, unpack(ops, 1, nops))
    for p = 1, npend do
      local new = false
      for j = (p - 1) * kk + 1, p * kk do
        if r[j] == 0 then new = true; break end
      end
      out[pend[p] + 1] = new and '1' or '0'
      if new then n = n + 1 end
    end
  end
  x = x + room
end
if L < NL and n >= CAP[L] then L = L + 1; n = 0 end
redis.call('BITFIELD', key, 'SET', 'u8', '#1', L, 'SET', 'u16', '#1', GID, 'SET', 'u32', '#1', n)
redis.call('PEXPIRE', key, ARGV[2])
return {trusted, table.concat(out)}
`
	return redis.NewScript(src)
}

// bitmapMarkScript sets (ARGV[3] = "1") or clears ("0") the trusted flag of
// a shard key. Trusting a missing key creates it empty with the geometry
// (ARGV[1]) and TTL (ARGV[2]); a key of another geometry is left alone
// (returns 0).
var bitmapMarkScript = redis.NewScript(`
local key = KEYS[1]
-- Offsets go to Redis as strings: string.format('%d') is cheaper than the
-- conversion redis.call applies to Lua numbers (about a quarter of the
-- script's time).
local fmt = string.format
local hdr = redis.call('BITFIELD', key, 'GET', 'u8', '#1', 'GET', 'u16', '#1')
local gid = tonumber(ARGV[1])
if ARGV[3] ~= '1' then
  if hdr[1] > 0 then redis.call('BITFIELD', key, 'SET', 'u8', '#0', 0) end
  return 1
end
if hdr[1] > 0 and hdr[2] ~= gid then return 0 end
if hdr[1] == 0 then
  redis.call('BITFIELD', key, 'SET', 'u8', '#1', 1, 'SET', 'u16', '#1', gid, 'SET', 'u32', '#1', 0)
end
redis.call('BITFIELD', key, 'SET', 'u8', '#0', 1)
redis.call('PEXPIRE', key, ARGV[2])
return 1
`)

// appendBitmapKey appends the shard key of (post, shard) to dst.
func appendBitmapKey(dst []byte, post int64, shard int) []byte {
	dst = append(dst, "likes:f:"...)
	dst = strconv.AppendInt(dst, post, 10)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, int64(shard), 10)
}

// appendItem appends a pair's 8-byte item (h1, h2 big-endian).
func appendItem(dst []byte, ph pairHash) []byte {
	dst = binary.BigEndian.AppendUint32(dst, ph.h1)
	return binary.BigEndian.AppendUint32(dst, ph.h2)
}
