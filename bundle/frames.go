package bundle

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// frameSize is the amount of input compressed into one independent zstd frame, and maxFrameSize a bound on its
// compressed size (zstd adds at most a few bytes per 128 KiB block to incompressible input).
const (
	frameSize    = 4 << 20
	maxFrameSize = frameSize + frameSize/128 + 1024
	writeSlice   = 128 << 10
)

// frameWriter compresses a stream on all cores: it cuts the input into frameSize chunks, compresses each as an
// independent zstd frame (with its own checksum) on a worker goroutine, and writes the frames in order. Any zstd
// reader decodes the concatenated frames as one stream. Memory is bounded by the queue: about
// 2 × frameSize × (2 × workers) bytes.
//
// klauspost's streaming Encoder compresses one stream sequentially; this trades the matches across chunk
// boundaries (irrelevant for already-compressed image layers) for parallel compression.
type frameWriter struct {
	w      io.Writer
	enc    *zstd.Encoder
	buf    []byte      // the chunk being filled
	queue  chan *frame // frames in stream order, to the writer goroutine
	ins    sync.Pool   // input chunks, frameSize each
	outs   sync.Pool   // output frames, big enough for an incompressible chunk
	done   chan struct{}
	mu     sync.Mutex
	err    error // first error of the writer goroutine
	sem    chan struct{}
	closed bool
}

type frame struct {
	in, out []byte
	ready   chan struct{}
}

func newFrameWriter(w io.Writer, level zstd.EncoderLevel, workers int) (*frameWriter, error) {
	if workers < 1 {
		workers = 1
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(workers), zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, err
	}
	fw := &frameWriter{
		w:     w,
		enc:   enc,
		queue: make(chan *frame, 2*workers),
		done:  make(chan struct{}),
		sem:   make(chan struct{}, workers),
	}
	fw.ins.New = func() any { return make([]byte, 0, frameSize) }
	fw.outs.New = func() any { return make([]byte, 0, maxFrameSize) }
	fw.buf = fw.ins.Get().([]byte)[:0]
	go fw.writeLoop(fw.queue)
	return fw, nil
}

// Write buffers p and hands full chunks to the workers.
func (fw *frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := fw.failed(); err != nil {
			return n, err
		}
		k := copy(fw.buf[len(fw.buf):frameSize], p)
		fw.buf = fw.buf[:len(fw.buf)+k]
		p = p[k:]
		n += k
		if len(fw.buf) == frameSize {
			fw.flushChunk()
		}
	}
	return n, nil
}

func (fw *frameWriter) flushChunk() {
	if len(fw.buf) == 0 {
		return
	}
	f := &frame{in: fw.buf, ready: make(chan struct{})}
	fw.buf = fw.ins.Get().([]byte)[:0]
	fw.queue <- f // blocks when the queue is full: bounded memory
	fw.sem <- struct{}{}
	go func() {
		f.out = fw.enc.EncodeAll(f.in, fw.outs.Get().([]byte)[:0])
		<-fw.sem
		close(f.ready)
	}()
}

func (fw *frameWriter) writeLoop(queue <-chan *frame) {
	defer close(fw.done)
	for f := range queue {
		<-f.ready
		if fw.failed() == nil {
			// Write in modest slices: on Linux, page-cache writes of several MiB per call measured several
			// times slower than 128 KiB ones (see docs/benchmarks.md).
			for out := f.out; len(out) > 0; {
				k := min(len(out), writeSlice)
				if _, err := fw.w.Write(out[:k]); err != nil {
					fw.setErr(err)
					break
				}
				out = out[k:]
			}
		}
		fw.ins.Put(f.in[:0])
		if cap(f.out) <= maxFrameSize {
			fw.outs.Put(f.out[:0])
		}
	}
}

func (fw *frameWriter) failed() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.err
}

func (fw *frameWriter) setErr(err error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.err == nil {
		fw.err = err
	}
}

// Close compresses what is buffered, waits for every frame to be written and returns the first error.
func (fw *frameWriter) Close() error {
	if fw.closed {
		return fw.failed()
	}
	fw.closed = true
	fw.flushChunk()
	close(fw.queue)
	<-fw.done
	fw.enc.Close()
	if err := fw.failed(); err != nil {
		return fmt.Errorf("write compressed stream: %w", err)
	}
	return nil
}

// Abort stops the writer after an error elsewhere; frames not yet written are dropped.
func (fw *frameWriter) Abort() {
	fw.setErr(errors.New("aborted"))
	fw.Close()
}
