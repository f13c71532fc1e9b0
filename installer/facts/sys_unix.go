//go:build unix

package facts

import (
	"fmt"

	"golang.org/x/sys/unix"
)

type utsname struct{ nodename, release, machine string }

// uname is uname(2) of the running kernel.
func uname() (utsname, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return utsname{}, fmt.Errorf("uname: %w", err)
	}
	return utsname{
		nodename: unix.ByteSliceToString(u.Nodename[:]),
		release:  unix.ByteSliceToString(u.Release[:]),
		machine:  unix.ByteSliceToString(u.Machine[:]),
	}, nil
}

// fsInfo is statfs(2) and the device of p.
func fsInfo(p string) (free, total, dev uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return 0, 0, 0, fmt.Errorf("statfs %s: %w", p, err)
	}
	var s unix.Stat_t
	if err := unix.Stat(p, &s); err != nil {
		return 0, 0, 0, fmt.Errorf("stat %s: %w", p, err)
	}
	bsize := uint64(st.Bsize)
	return uint64(st.Bavail) * bsize, uint64(st.Blocks) * bsize, uint64(s.Dev), nil
}
