// Command child is the process that the tests of package testenv start.
//
//	child echo WORDS...   print WORDS to stdout and "err" to stderr, exit 0
//	child exit N          exit with status N
//	child wait            print "ready", wait for SIGTERM, print "terminated", exit 3
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: child echo|exit|wait")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "echo":
		fmt.Println(strings.Join(os.Args[2:], " "))
		fmt.Fprintln(os.Stderr, "err")
	case "exit":
		n, _ := strconv.Atoi(os.Args[2])
		os.Exit(n)
	case "wait":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		<-ch
		fmt.Println("terminated")
		os.Exit(3)
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}
