package bench

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"sync"
	"time"
)

// jwtHeader is base64url({"alg":"HS256","typ":"JWT"}), the header
// golang-jwt writes for HS256 (and so auth.Sign).
const jwtHeader = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// tokens holds one HS256 bearer token per user, minted before the run so
// that signing is not part of the measured path. Users are numbered from 1.
// Tokens live in a few large arenas (one per minting goroutine) instead of
// millions of strings: a 100,000 likes/s minute is six million tokens.
// Read-only after mintTokens returns; safe for concurrent use.
type tokens struct {
	per    int64 // users per chunk
	chunks []tokenChunk
}

type tokenChunk struct {
	arena []byte
	off   []uint32 // token j of the chunk is arena[off[j]:off[j+1]]
}

// get returns user u's token (1 ≤ u ≤ n). The slice must not be modified.
func (t *tokens) get(u int64) []byte {
	c := &t.chunks[(u-1)/t.per]
	j := (u - 1) % t.per
	return c.arena[c.off[j]:c.off[j+1]]
}

// mintTokens signs tokens for users 1..n exactly as auth.Sign would (same
// header, claims sub, exp, iat in that order, whole seconds), on workers
// goroutines. A test checks that the bytes equal auth.Sign's.
func mintTokens(secret string, n int64, now time.Time, ttl time.Duration, workers int) *tokens {
	// Chunks of at most 1<<20 users keep arena offsets within uint32.
	per := min(max((n+int64(workers)-1)/int64(max(workers, 1)), 1), 1<<20)
	t := &tokens{per: per, chunks: make([]tokenChunk, (n+per-1)/per)}
	now = now.Truncate(time.Second)
	iat, exp := now.Unix(), now.Add(ttl).Unix()
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(workers, len(t.chunks))) {
		wg.Go(func() {
			for c := range next {
				first := int64(c)*per + 1
				t.chunks[c] = mintChunk(secret, first, min(first+per-1, n), iat, exp)
			}
		})
	}
	for c := range t.chunks {
		next <- c
	}
	close(next)
	wg.Wait()
	return t
}

func mintChunk(secret string, first, last, iat, exp int64) tokenChunk {
	const approxLen = 150
	count := last - first + 1
	ch := tokenChunk{arena: make([]byte, 0, count*approxLen), off: make([]uint32, 1, count+1)}
	mac := hmac.New(sha256.New, []byte(secret))
	enc := base64.RawURLEncoding
	var claims, input, sum []byte
	for u := first; u <= last; u++ {
		claims = append(claims[:0], `{"sub":"`...)
		claims = strconv.AppendInt(claims, u, 10)
		claims = append(claims, `","exp":`...)
		claims = strconv.AppendInt(claims, exp, 10)
		claims = append(claims, `,"iat":`...)
		claims = strconv.AppendInt(claims, iat, 10)
		claims = append(claims, '}')

		start := len(ch.arena)
		ch.arena = append(ch.arena, jwtHeader...)
		ch.arena = append(ch.arena, '.')
		ch.arena = enc.AppendEncode(ch.arena, claims)
		input = append(input[:0], ch.arena[start:]...)
		mac.Reset()
		mac.Write(input)
		sum = mac.Sum(sum[:0])
		ch.arena = append(ch.arena, '.')
		ch.arena = enc.AppendEncode(ch.arena, sum)
		ch.off = append(ch.off, uint32(len(ch.arena)))
	}
	return ch
}
