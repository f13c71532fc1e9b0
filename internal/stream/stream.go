// Package stream copies large content the way every long step here needs: with a caller-owned buffer (so copies of
// many files do not churn memory), stopping when the context ends, and reporting bytes as they go.
package stream

import (
	"context"
	"io"
)

// DefaultBufSize is the buffer Copy allocates when given none.
const DefaultBufSize = 1 << 20

// Copy copies src to dst until EOF and returns the bytes written. It reads into buf (allocated when nil), checks
// ctx before every read, and calls report (when not nil) with each chunk's size. It never uses dst's ReadFrom or
// src's WriteTo, so the buffer size is what the caller chose.
func Copy(ctx context.Context, dst io.Writer, src io.Reader, buf []byte, report func(int64)) (int64, error) {
	if len(buf) == 0 {
		buf = make([]byte, DefaultBufSize)
	}
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := src.Read(buf)
		if k > 0 {
			w, err := dst.Write(buf[:k])
			n += int64(w)
			if err != nil {
				return n, err
			}
			if w != k {
				return n, io.ErrShortWrite
			}
			if report != nil {
				report(int64(k))
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}
