package parts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Header is the JSON object in a part file's header.
type Header struct {
	SetID     string `json:"setId"`     // 32 lowercase hex digits, shared by all parts of one split
	Archive   string `json:"archive"`   // base name of the original archive
	Index     int    `json:"index"`     // 1-based part number
	Count     int    `json:"count"`     // number of parts in the set
	Offset    int64  `json:"offset"`    // byte offset of this payload within the archive
	Size      int64  `json:"size"`      // payload bytes in this part
	SHA256    string `json:"sha256"`    // lowercase hex sha256 of this part's payload
	TotalSize int64  `json:"totalSize"` // size of the whole archive
}

// Validate checks the header's fields on their own (not against other parts).
func (h *Header) Validate() error {
	switch {
	case !isLowerHex(h.SetID, 32):
		return fmt.Errorf("setId %q is not 32 lowercase hex digits", h.SetID)
	case !validArchiveName(h.Archive):
		return fmt.Errorf("archive %q is not a valid file name", h.Archive)
	case h.Count < 1 || h.Count > MaxParts:
		return fmt.Errorf("count %d is not in 1..%d", h.Count, MaxParts)
	case h.Index < 1 || h.Index > h.Count:
		return fmt.Errorf("index %d is not in 1..%d", h.Index, h.Count)
	case h.Size < 0 || h.Size > MaxPartSize-HeaderSize:
		return fmt.Errorf("size %d is not in 0..%d", h.Size, MaxPartSize-HeaderSize)
	case h.TotalSize < 0:
		return fmt.Errorf("totalSize %d is negative", h.TotalSize)
	case h.Offset < 0 || h.Offset > h.TotalSize-h.Size:
		return fmt.Errorf("offset %d with size %d does not fit in totalSize %d", h.Offset, h.Size, h.TotalSize)
	case !isLowerHex(h.SHA256, 64):
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", h.SHA256)
	}
	return nil
}

// Encode returns the header as exactly HeaderSize bytes: the magic line, the
// compact JSON object, a newline, spaces and a final newline.
func (h *Header) Encode() ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("encode part header: %w", err)
	}
	j, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode part header: %w", err)
	}
	if len(Magic)+len(j)+1 > HeaderSize {
		return nil, fmt.Errorf("encode part header: %d bytes do not fit in %d; archive name %q is too long",
			len(Magic)+len(j)+1, HeaderSize, h.Archive)
	}
	buf := bytes.Repeat([]byte{' '}, HeaderSize)
	n := copy(buf, Magic)
	n += copy(buf[n:], j)
	buf[n] = '\n'
	buf[HeaderSize-1] = '\n'
	return buf, nil
}

// ReadHeader reads and checks the HeaderSize-byte header at the start of r.
// Input without the magic gives an error wrapping ErrNotPart; any other bad
// header (short, invalid JSON, unknown or missing fields, out-of-range values,
// anything but '\n' and spaces after the JSON) an error wrapping ErrBadHeader.
// The JSON must be exactly what Encode writes, so a flipped bit anywhere in the
// header is caught here or, in the sha256 field, when the payload is hashed.
func ReadHeader(r io.Reader) (*Header, error) {
	buf := make([]byte, HeaderSize)
	n, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read part header: %w", err)
	}
	m := min(n, len(Magic))
	if n == 0 || string(buf[:m]) != Magic[:m] {
		return nil, fmt.Errorf("%w: no %q magic at the start", ErrNotPart, strings.TrimSpace(Magic))
	}
	if n < HeaderSize {
		return nil, fmt.Errorf("%w: file ends after %d of %d header bytes", ErrBadHeader, n, HeaderSize)
	}
	j := bytes.TrimRight(buf[len(Magic):], " \n")
	var h Header
	if err := json.Unmarshal(j, &h); err != nil {
		return nil, fmt.Errorf("%w: invalid JSON: %w", ErrBadHeader, err)
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	if canon, err := json.Marshal(&h); err != nil || !bytes.Equal(canon, j) {
		return nil, fmt.Errorf("%w: JSON differs from its canonical form (altered or corrupt)", ErrBadHeader)
	}
	return &h, nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func validArchiveName(s string) bool {
	return s != "" && s != "." && s != ".." && utf8.ValidString(s) &&
		!strings.ContainsAny(s, "/\\\x00")
}
