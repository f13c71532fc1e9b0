//go:build !unix

package facts

import "errors"

type utsname struct{ nodename, release, machine string }

var errUnsupported = errors.New("not supported on this OS")

func uname() (utsname, error) { return utsname{}, errUnsupported }

func fsInfo(string) (free, total, dev uint64, err error) { return 0, 0, 0, errUnsupported }
