// Package testpcaps finds the shared real-world captures the tests replay.
// They live beside the repository (<repo>/../shared/pcaps) and are never
// copied into it; tests skip cleanly where they are absent.
package testpcaps

import (
	"os"
	"path/filepath"
	"testing"
)

// Find looks for the shared capture folder, a sibling of the repository
// root, walking up from the working directory to the go.mod.
func Find() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			pcaps := filepath.Join(dir, "..", "shared", "pcaps")
			st, err := os.Stat(pcaps)
			return pcaps, err == nil && st.IsDir()
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// Dir returns the shared capture folder, or skips the test when it is not
// there.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, ok := Find()
	if !ok {
		tb.Skip("shared captures (<repo>/../shared/pcaps) not present")
	}
	return dir
}
