// Command app is a small web application of the kind an app pod runs next to
// the likes sidecar: it serves a page with a like button and the live like
// count, and talks to the sidecar on localhost through package client.
//
//	go run ./cmd/likes dev                      # the sidecar and everything behind it
//	go run ./examples/app                       # http://127.0.0.1:8000
//
// Identity is a demo login: the user types a name, the app derives a user id
// from it and signs a token for that id with the sidecar's HS256 secret
// (auth.Sign, the same thing `likes token` does), kept in an HttpOnly
// cookie. A real application gets the token from its identity provider and
// forwards it unchanged; the sidecar verifies it and takes the user id from
// it, never from the request.
//
// See README.md beside this file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/likes-sidecar/likes/client"
)

// devSecret is the public HS256 secret of `likes dev`; never use it outside
// a laptop.
const devSecret = "likes-dev-secret-NOT-FOR-PRODUCTION-0123456789"

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "address of the web app")
	likesURL := flag.String("likes-url", "http://127.0.0.1:8080", "the likes sidecar (its http.listen, with http.path_prefix if any)")
	secret := flag.String("jwt-secret", "", "HS256 secret the demo login signs tokens with: the sidecar's auth.jwt_secret (default $DEMO_JWT_SECRET, else the likes dev secret)")
	flag.Parse()
	if *secret == "" {
		*secret = os.Getenv("DEMO_JWT_SECRET")
	}
	if *secret == "" {
		*secret = devSecret
	}
	if err := run(*listen, *likesURL, *secret); err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

func run(listen, likesURL, secret string) error {
	cfg := client.DefaultConfig()
	cfg.BaseURL = likesURL
	likes, err := client.New(cfg)
	if err != nil {
		return err
	}
	defer likes.Close()
	a, err := newApp(appConfig{Likes: likes, Secret: secret})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("app on http://%s, likes sidecar at %s", ln.Addr(), likesURL)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
