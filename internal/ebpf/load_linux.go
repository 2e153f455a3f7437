package ebpf

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// progLoadAttr is the BPF_PROG_LOAD part of union bpf_attr.
type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
	progName    [unix.BPF_OBJ_NAME_LEN]byte
}

// LoadSocketFilter assembles prog and loads it as a socket-filter program
// (the type TUNSETSTEERINGEBPF and SO_ATTACH_REUSEPORT_EBPF take) named
// name, and returns its file descriptor. A refusal carries the verifier's
// log.
func LoadSocketFilter(name string, prog []Asm) (int, error) {
	insns, err := Assemble(prog)
	if err != nil {
		return -1, err
	}
	code := Encode(insns)
	license := []byte("GPL\x00")
	logBuf := make([]byte, 16384)
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_SOCKET_FILTER,
		insnCnt:  uint32(len(insns)),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel: 1,
		logSize:  uint32(len(logBuf)),
		logBuf:   uint64(uintptr(unsafe.Pointer(&logBuf[0]))),
	}
	copy(attr.progName[:], name)
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(logBuf)
	if errno != 0 {
		if n := clen(logBuf); n > 0 {
			return -1, fmt.Errorf("bpf prog load %s: %w: %s", name, errno, logBuf[:n])
		}
		return -1, fmt.Errorf("bpf prog load %s: %w", name, errno)
	}
	return int(fd), nil
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// mapCreateAttr is the BPF_MAP_CREATE part of union bpf_attr.
type mapCreateAttr struct {
	mapType    uint32
	keySize    uint32
	valueSize  uint32
	maxEntries uint32
	mapFlags   uint32
}

// NewArray creates an array map of n zeroed values of valueSize bytes
// (keys are 32-bit indexes) and returns its file descriptor. A program
// that uses it holds its own reference: the caller may close fd once the
// program is loaded.
func NewArray(name string, valueSize, n int) (int, error) {
	attr := mapCreateAttr{mapType: unix.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: uint32(valueSize), maxEntries: uint32(n)}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return -1, fmt.Errorf("bpf map create %s: %w", name, errno)
	}
	return int(fd), nil
}
