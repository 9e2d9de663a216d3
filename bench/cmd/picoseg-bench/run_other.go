//go:build !linux

package main

import "errors"

func run(args []string) error {
	return errors.New("the lab benchmark needs Linux (network namespaces, nftables, NFQUEUE)")
}
