// Package auth says who is calling: it turns the request's credentials into a
// user id, a positive 64-bit integer. The user id of a like always comes from
// here, never from a request body.
//
// It takes header values as plain strings, so the HTTP API and the Envoy
// ext_proc server share it without either's request types.
//
// # Modes
//
// In "jwt" mode (the default) the caller presents "Authorization: Bearer
// <token>" (the scheme is case-insensitive; one or more spaces separate it from
// the token). In "header" mode an authenticating proxy in front of the sidecar
// has already verified the caller and passes the user id in a header
// (auth.user_header, "x-user-id" by default).
//
// Header mode is safe only when the sidecar's listener is reachable solely
// through that proxy — bound to localhost or a pod-local socket, or protected by
// a network policy that admits nothing else — and the proxy removes any copy of
// the header the client sent before it sets its own. Otherwise any client can
// name any user by sending the header itself. When in doubt, use jwt mode.
//
// # Tokens (jwt mode)
//
// Tokens are JWS compact serializations verified with
// github.com/golang-jwt/jwt/v5 against exactly one key source:
//
//   - auth.jwt_secret: an HS256 shared secret of at least [MinSecretLen]
//     bytes (RFC 7518 §3.2: an HMAC key shorter than the hash is guessable).
//   - auth.public_key_file: one PEM public key ("PUBLIC KEY", "RSA PUBLIC
//     KEY" or "CERTIFICATE"; the first block is used). RSA (at least 2048
//     bits) verifies RS256, ECDSA P-256/P-384/P-521 verifies ES256/ES384/ES512,
//     Ed25519 verifies EdDSA. Private keys are refused: they have no business
//     on a sidecar.
//   - auth.jwks_file: a JWKS document (RFC 7517). Keys of kty RSA, EC and
//     OKP (Ed25519) with use "sig" or no use are loaded; others (use "enc",
//     kty "oct", unknown types) are skipped, and a set with no usable key is an
//     error. A key's "alg", when present, must suit its type; when absent it
//     is RS256 for RSA, the curve's ES* for EC and EdDSA for OKP. A token's
//     "kid" must name a key of the set; a token without "kid" is accepted only
//     when the set holds exactly one key. Duplicate kids are an error.
//
// Keys are read once by [New]; rotating them means restarting the process.
//
// Algorithm confusion is impossible by construction: every key carries the one
// algorithm it verifies, the parser accepts only the algorithms of the
// configured keys (jwt.WithValidMethods), and the key lookup refuses a token
// whose "alg" differs from its key's. So "alg": "none" is refused, and a token
// signed HS256 with an RSA public key's bytes as the secret is refused under a
// public key or JWKS configuration. Symmetric keys are never taken from a
// public key file or a JWKS.
//
// Claims:
//
//   - sub is the user id: a JSON string of ASCII decimal digits, 1 to 19 of
//     them, without sign, spaces or leading zeros, whose value is between 1
//     and 2^63−1. Leading zeros are refused so that each user has exactly one
//     spelling; 0, negatives, overflow and anything else are refused. The same
//     rule applies to the header of header mode.
//   - exp is required. A like token without expiry is a credential that works
//     forever if it leaks, and the verified-token cache needs a deadline.
//   - nbf is enforced when present; iat is not checked.
//   - iss must equal auth.issuer when that is set; aud must contain
//     auth.audience when that is set.
//   - A payload with a key that is a registered claim name (sub, exp, nbf,
//     iat, iss, aud, jti) in another case — "EXP", "Sub", "ſub" with a long
//     s — is refused. The JWT library decodes claims with encoding/json,
//     which matches names case-insensitively (Unicode folding, last match
//     wins), so {"exp":<future>,"EXP":<past>} is expired to it and valid to a
//     reader that matches exactly; a token that spells a claim two ways is
//     ambiguous, whichever spelling wins.
//   - exp and nbf are checked with a leeway (auth.leeway, 30s by default) for
//     clock skew between the issuer and the sidecar: without it, a token minted
//     with nbf = now by an issuer whose clock runs a second ahead is refused
//     for that second. 30 s is negligible next to any sensible token lifetime.
//
// Before any parsing a token longer than [MaxTokenLen] bytes, or containing a
// byte outside the base64url alphabet and '.', is refused, and base64 is
// decoded strictly. That bounds the work an attacker can cause per request and
// gives every verified token exactly one spelling in the cache.
//
// Under auth.jwt_secret, tokens of the common shape (a canonical HS256 header,
// a flat claims object of ASCII strings without escapes and integers, each
// registered claim spelled once and in lower case) are checked by a fast path
// — a pooled HMAC and a strict claims scanner — instead of the JWT library.
// It accepts only what the library accepts, for the same user and validity,
// and leaves every other token to the library; a differential fuzz test holds
// it to that.
//
// # Verified-token cache
//
// Verifying a signature costs microseconds (HS256) to tens of microseconds
// (RS256, ES256); a user liking in a burst presents the same token many times.
// So a verified token's user id is cached, keyed by the whole token string
// (equality of the whole token, not of a hash, is what makes a hit as good as a
// verification), until the token's exp — never past it, even though the leeway
// would still accept it; a token inside its leeway is simply verified on each
// use. A hit before nbf − leeway (a clock that went backwards) also falls
// through to verification.
//
// The cache holds at most auth.cache_size entries (0 disables it), split over
// shards chosen by a seeded hash of the token (a power of two, at most 64,
// with at least 16 entries each), each a map behind its own RWMutex and padded
// to its own cache lines, so parallel hits on different tokens do not contend
// and hits on one token share a read lock. A hit takes no allocation. When a
// shard is full, inserting drops one entry picked by map iteration order
// (effectively random): O(1), no bookkeeping; expired entries are dropped
// when a lookup finds them or by that eviction. Memory is about cache_size ×
// (token length + 100 bytes) at worst.
//
// Invalid tokens are not cached, negatively or otherwise: their variety is
// unbounded and attacker-controlled, so caching them would only let an attacker
// evict valid entries. Rejecting them costs a parse and at most one signature
// check, bounded by [MaxTokenLen].
//
// # Errors
//
// [Authenticator.Authenticate] returns [ErrNoCredentials] when nothing was
// presented (HTTP 401 "missing_token") and otherwise wraps
// [ErrInvalidCredentials] with the reason (HTTP 401 "invalid_token"). Reasons
// never quote the presented credential.
//
// # Concurrency
//
// An [Authenticator] is immutable after [New] apart from its cache, which
// has its own locks; all its methods are safe for concurrent use. [Sign] and
// [Config] methods are pure.
package auth
