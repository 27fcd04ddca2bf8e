package counts

import (
	"strconv"
	"time"
)

// EpochKey is the sentinel key. Consumers create it; when it is missing,
// Redis has lost its data and bases must be re-seeded.
const EpochKey = "likes:epoch"

// BucketOf returns the bucket number of t for buckets of the given width.
func BucketOf(t time.Time, width time.Duration) int64 {
	return t.UnixNano() / int64(width)
}

// AppendTailKey appends the tail key of (post, bucket, shard) to dst:
// likes:t:{<post>:<shard>}:<bucket>. The hash tag puts every bucket of one
// (post, shard) in one Redis Cluster slot, so a read fetches a shard's
// buckets with one MGET, while a post's K shards still hash to different
// slots.
func AppendTailKey(dst []byte, post, bucket int64, shard int) []byte {
	dst = append(dst, "likes:t:{"...)
	dst = strconv.AppendInt(dst, post, 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(shard), 10)
	dst = append(dst, "}:"...)
	return strconv.AppendInt(dst, bucket, 10)
}

// TailKey returns the tail key of (post, bucket, shard).
func TailKey(post, bucket int64, shard int) string {
	return string(AppendTailKey(make([]byte, 0, 48), post, bucket, shard))
}

// BaseKey returns the base key of a post.
func BaseKey(post int64) string {
	return "likes:b:" + strconv.FormatInt(post, 10)
}
