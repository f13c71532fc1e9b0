package stream

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestCopy(t *testing.T) {
	data := bytes.Repeat([]byte("wutong"), 100000)
	var dst bytes.Buffer
	var reported int64
	n, err := Copy(context.Background(), &dst, bytes.NewReader(data), make([]byte, 4096), func(k int64) { reported += k })
	if err != nil || n != int64(len(data)) || reported != n || !bytes.Equal(dst.Bytes(), data) {
		t.Fatalf("n=%d reported=%d err=%v", n, reported, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Copy(ctx, &dst, bytes.NewReader(data), nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v", err)
	}
}
