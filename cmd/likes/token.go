package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/likes-sidecar/likes/auth"
)

func newToken() *cobra.Command {
	var user string
	var ttl time.Duration
	var count int
	cmd := &cobra.Command{
		Use:   "token --user 42 [--secret S] [--ttl 1h]",
		Short: "Print a signed HS256 token for tests and demos",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := strconv.ParseInt(user, 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("--user: want a positive 64-bit integer, got %q", user)
			}
			secret, _ := cmd.Flags().GetString("secret")
			if secret == "" {
				secret = os.Getenv("LIKES_AUTH_JWT_SECRET")
			}
			if secret == "" {
				secret = devSecret
			}
			if ttl <= 0 {
				return errors.New("--ttl: must be positive")
			}
			if count < 1 {
				return errors.New("--count: must be at least 1")
			}
			w := bufio.NewWriter(os.Stdout)
			defer w.Flush()
			now := time.Now()
			for i := 0; i < count; i++ {
				tok, err := auth.Sign(secret, id+int64(i), ttl, now)
				if err != nil {
					return err
				}
				fmt.Fprintln(w, tok)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "user id (the token's sub)")
	cmd.Flags().String("secret", "", "HS256 secret (default: $LIKES_AUTH_JWT_SECRET, else the dev secret)")
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "lifetime of the token")
	cmd.Flags().IntVar(&count, "count", 1, "print tokens for users user, user+1, … (one per line), for load tests")
	cmd.MarkFlagRequired("user")
	return cmd
}
