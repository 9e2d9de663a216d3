package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a policy, at the position of the offending key or
// value.
type Error struct {
	Pos Pos
	Msg string
}

var _ error = (*Error)(nil)

// Error formats the problem as FILE:LINE:COL: msg, the form editors and
// terminals turn into a link.
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every problem found in a policy, sorted by file, line and
// column. The loader keeps going after the first problem so that one run
// shows the user everything there is to fix.
type ErrorList []*Error

var _ error = ErrorList(nil)

// Error returns one problem per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the individual errors, so errors.As can reach each *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Warning is something in a policy that loads but probably does not do what
// its author meant.
type Warning struct {
	Pos Pos
	Msg string
}

// String formats the warning as FILE:LINE:COL: warning: msg.
func (w Warning) String() string { return w.Pos.String() + ": warning: " + w.Msg }

// diagnostics collects errors and warnings while a policy loads.
type diagnostics struct {
	errs  ErrorList
	warns []Warning
}

func (d *diagnostics) errorf(pos Pos, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (d *diagnostics) warnf(pos Pos, format string, args ...any) {
	d.warns = append(d.warns, Warning{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// result returns the sorted warnings and, if there was any error, the sorted
// error list. It returns a nil error, not an empty ErrorList, when the policy
// is clean, so callers can compare with nil.
func (d *diagnostics) result() ([]Warning, error) {
	slices.SortStableFunc(d.warns, func(a, b Warning) int { return comparePos(a.Pos, b.Pos) })
	if len(d.errs) == 0 {
		return d.warns, nil
	}
	slices.SortStableFunc(d.errs, func(a, b *Error) int { return comparePos(a.Pos, b.Pos) })
	return d.warns, d.errs
}

func comparePos(a, b Pos) int {
	return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
}
