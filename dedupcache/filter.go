package dedupcache

import "context"

// Filter is a fast, probabilistic first answer for likes: "definitely new"
// (isNew true: no database lookup needed) or "maybe seen" (isNew false: ask
// the authoritative check). It adds the pair as it tests it. A filter that
// errs must return an error, never a guess: the checker then asks the
// database.
type Filter interface {
	CheckAndAdd(ctx context.Context, post, user int64) (isNew bool, err error)
}
