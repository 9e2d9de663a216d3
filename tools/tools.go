//go:build tools

// Package tools pins the build tools `make package` runs, so that the same
// commit builds the same packages.
package tools

import (
	_ "github.com/goreleaser/nfpm/v2/cmd/nfpm"
)
