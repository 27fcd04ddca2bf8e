// Command likes is the like-counter sidecar and its tools: serve, consume,
// dev, bench, token, migrate, config and version. Run `likes help`.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "likes:", err)
		os.Exit(1)
	}
}
