// Package packagetest checks picoseg's packages as a packager would: it
// opens every .deb and .ipk that `make package` left in dist/ and checks
// the file list, modes and owners, conffiles, control fields, Depends,
// maintainer scripts and the binary's architecture; it verifies the
// systemd unit with systemd-analyze and runs the OpenWrt init script
// against a stub of procd's shell functions; and, when asked to
// (PICOSEG_PACKAGE_INSTALL=1, as root), installs the amd64 .deb on this
// machine and purges it again.
//
// The package tests skip when dist/ holds no packages; `make package-test`
// builds them first. The checks of the sources (the unit, the init script,
// the starter policies) always run.
package packagetest
