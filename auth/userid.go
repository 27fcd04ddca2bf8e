package auth

import (
	"errors"
	"math"
)

// maxUserIDDigits is the number of decimal digits of math.MaxInt64.
const maxUserIDDigits = 19

// parseUserID parses a user id: 1 to 19 ASCII digits, no sign, no spaces, no
// leading zero, value in [1, 2^63−1]. Errors do not quote s, which comes from
// outside.
func parseUserID(s string) (int64, error) {
	switch {
	case s == "":
		return 0, errors.New("user id is empty")
	case len(s) > maxUserIDDigits:
		return 0, errors.New("user id is too long")
	case s[0] == '0':
		if len(s) == 1 {
			return 0, errors.New("user id is zero")
		}
		return 0, errors.New("user id has a leading zero")
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errors.New("user id is not a decimal number")
		}
		v = v*10 + uint64(c-'0') // 19 digits fit in a uint64
	}
	if v > math.MaxInt64 {
		return 0, errors.New("user id is out of range")
	}
	return int64(v), nil
}
