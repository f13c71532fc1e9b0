// Package remote reaches a node over SSH: it runs commands (as root through sudo when needed) and moves files with
// SFTP. It is built on golang.org/x/crypto/ssh and github.com/pkg/sftp.
//
// Security by default: host keys are always verified against known_hosts files (HostKeys); an unknown host is
// refused unless the caller asked to accept and record new keys, and a changed key is always refused with both
// fingerprints shown. Passwords reach sudo on stdin, never on a command line, and are never logged.
//
// Callers see two narrow interfaces, Runner (run a command) and Uploader (put a file), so that the install engine
// can be tested against the scripted fake in remote/remotetest.
package remote
