package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Size limits of the files vxtun reads. A peers file of 10 000 peers is
// about 2 MiB; the others are a few hundred bytes.
const (
	MaxConfigFileSize = 1 << 20  // net-conf.json, node.json, subnet.env, VTEP MAC file
	MaxPeersFileSize  = 32 << 20 // peers.json
)

// ErrNotRegular is wrapped by ReadFile's error for a path that is not a
// regular file (a FIFO, a device such as /dev/zero, a directory, a socket).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by ReadFile's error for a file above its limit.
var ErrTooLarge = errors.New("file too large")

// ErrWorldWritable is wrapped by ReadFile's error for a file that any user
// may write: whoever can write a config file controls vxtun's routing.
var ErrWorldWritable = errors.New("file is world-writable")

// ReadFile reads a configuration file of at most limit bytes. The file must
// be a regular file that is not world-writable. It is opened non-blocking,
// so a FIFO never blocks the caller (a reload, or a shutdown waiting for
// one), and it is read with a bound, so a device or a growing file cannot
// exhaust memory.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openNonBlock, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, fileKind(fi.Mode()))
	case fi.Mode().Perm()&0o002 != 0:
		return nil, fmt.Errorf("%s: %w (mode %#o): chmod o-w it", path, ErrWorldWritable, fi.Mode().Perm())
	case fi.Size() > limit:
		return nil, fmt.Errorf("%s: %w (%d bytes, limit %d)", path, ErrTooLarge, fi.Size(), limit)
	}
	// Sized for the file as it is, so a large peers file is read without
	// the growing copies of io.ReadAll (a 5 000-peer file: 0.8 MB, not
	// 3.3 MB of garbage per reload); the limit still bounds a file that
	// grows meanwhile.
	buf := bytes.NewBuffer(make([]byte, 0, fi.Size()+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (more than %d bytes)", path, ErrTooLarge, limit)
	}
	return data, nil
}

// fileKind names a non-regular file mode for errors.
func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}
