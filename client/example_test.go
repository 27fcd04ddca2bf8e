package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/likes-sidecar/likes/client"
	"github.com/likes-sidecar/likes/internal/memsidecar"
)

// startExampleSidecar serves the sidecar's real HTTP API (in-memory
// stand-ins behind it) so the examples run anywhere. In an application the
// sidecar runs beside it, at client.DefaultConfig().BaseURL.
func startExampleSidecar() *memsidecar.Sidecar {
	s, err := memsidecar.Start(memsidecar.Options{})
	if err != nil {
		log.Fatal(err)
	}
	return s
}

func ExampleNew() {
	sidecar := startExampleSidecar()
	defer sidecar.Close()

	cfg := client.DefaultConfig() // http://127.0.0.1:8080, 1s timeout, 64 idle connections
	cfg.BaseURL = sidecar.URL
	likes, err := client.New(cfg) // once per process; safe for concurrent use
	if err != nil {
		log.Fatal(err)
	}
	defer likes.Close()

	n, err := likes.Count(context.Background(), 1)
	fmt.Println(n, err)
	// Output: 0 <nil>
}

func ExampleClient_Like() {
	sidecar := startExampleSidecar()
	defer sidecar.Close()
	likes, _ := client.New(client.Config{BaseURL: sidecar.URL, Timeout: time.Second, MaxIdleConns: 8, IdleConnTimeout: time.Minute})
	defer likes.Close()

	// The user's token, as the application's identity provider issued it.
	user := client.Bearer(sidecar.Token(42))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()

	err := likes.Like(ctx, user, 7)
	fmt.Println("first like:", err)

	err = likes.Like(ctx, user, 7)
	if errors.Is(err, client.ErrAlreadyLiked) {
		fmt.Println("second like: already liked")
	}

	n, _ := likes.Count(ctx, 7)
	fmt.Println("count:", n)
	// Output:
	// first like: <nil>
	// second like: already liked
	// count: 1
}

func ExampleClient_Unlike() {
	sidecar := startExampleSidecar()
	defer sidecar.Close()
	cfg := client.DefaultConfig()
	cfg.BaseURL = sidecar.URL
	likes, _ := client.New(cfg)
	defer likes.Close()
	user := client.Bearer(sidecar.Token(42))
	ctx := context.Background()

	_ = likes.Like(ctx, user, 7)
	fmt.Println("unlike:", likes.Unlike(ctx, user, 7))
	if err := likes.Unlike(ctx, user, 7); errors.Is(err, client.ErrNotLiked) {
		fmt.Println("unlike again: not liked")
	}
	n, _ := likes.Count(ctx, 7)
	fmt.Println("count:", n)
	// Output:
	// unlike: <nil>
	// unlike again: not liked
	// count: 0
}

func ExampleOverloadError() {
	sidecar := startExampleSidecar()
	defer sidecar.Close()
	cfg := client.DefaultConfig()
	cfg.BaseURL = sidecar.URL
	likes, _ := client.New(cfg)
	defer likes.Close()

	sidecar.FailLog(true) // the event log stops acknowledging writes
	err := likes.Like(context.Background(), client.Bearer(sidecar.Token(42)), 7)

	var overload *client.OverloadError
	if errors.As(err, &overload) {
		// Nothing was recorded: tell the user to try again, or retry after
		// overload.RetryAfter (with jitter).
		fmt.Println(overload.Code, "retry after", overload.RetryAfter)
	}
	fmt.Println(errors.Is(err, client.ErrUnavailable))
	// Output:
	// log_unavailable retry after 1s
	// true
}

func ExampleUserHeader() {
	// Behind an authenticating proxy the sidecar can run with
	// auth.mode=header and take the user id from a trusted header.
	sidecar, err := memsidecar.Start(memsidecar.Options{HeaderAuth: true})
	if err != nil {
		log.Fatal(err)
	}
	defer sidecar.Close()
	cfg := client.DefaultConfig()
	cfg.BaseURL = sidecar.URL
	likes, _ := client.New(cfg)
	defer likes.Close()

	fmt.Println(likes.Like(context.Background(), client.UserHeader("x-user-id", 42), 7))
	// Output: <nil>
}
