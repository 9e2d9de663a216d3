//go:build !linux

// Command bareq-go is a Linux-only NFQUEUE benchmark baseline.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bareq-go: NFQUEUE is Linux only")
	os.Exit(1)
}
