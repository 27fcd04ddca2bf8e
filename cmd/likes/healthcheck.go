package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/likes-sidecar/likes/config"
)

// newHealthcheck is `likes healthcheck`: a tiny HTTP probe for container
// HEALTHCHECKs (the final image has no shell, curl or wget). Exit 0 when the
// URL answers 200, 1 otherwise.
func newHealthcheck() *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck [--url http://127.0.0.1:9090/healthz]",
		Short: "Probe a running likes process: exit 0 if its /healthz (or --url) answers 200",
		Long: `likes healthcheck GETs --url and exits 0 on a 200 answer, 1 otherwise.
Without --url it probes /healthz on admin.listen, or on http.listen when
admin.listen is empty, read from the same flags, LIKES_ environment and
--config file as 'likes serve' (an unspecified or wildcard host becomes
127.0.0.1). It is what the Docker image's HEALTHCHECK runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				v, err := load(cmd)
				if err != nil {
					return err
				}
				if url, err = healthURL(v); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			status, err := probe(ctx, url)
			if err != nil {
				return fmt.Errorf("healthcheck %s: %w", url, err)
			}
			if status != http.StatusOK {
				return fmt.Errorf("healthcheck %s: got status %d, want 200", url, status)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s\n", url)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "URL to probe (default: /healthz on admin.listen, else http.listen)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "bound on the whole probe")
	config.AddFlags(cmd.Flags(), "http.listen", "admin.listen")
	return cmd
}

// healthURL is http://<admin.listen or http.listen>/healthz, with a wildcard
// or missing host replaced by 127.0.0.1.
func healthURL(v *config.Values) (string, error) {
	key := "admin.listen"
	addr := v.String(key)
	if addr == "" {
		key, addr = "http.listen", v.String("http.listen")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s: %q is not host:port: %w", key, addr, err)
	}
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

// probe GETs url and returns the status code.
func probe(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}
