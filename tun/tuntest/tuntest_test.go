package tuntest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

func TestReadBatchAndOwnership(t *testing.T) {
	d := New(Config{BatchSize: 2})
	defer d.Close()
	src := []byte{1, 2, 3}
	for range 3 {
		if err := d.Inject(src); err != nil {
			t.Fatal(err)
		}
	}
	src[0] = 99 // Inject copied
	bufs := [][]byte{make([]byte, 10), make([]byte, 10), make([]byte, 10)}
	sizes := make([]int, 3)
	n, err := d.Read(bufs, sizes, 4)
	if err != nil || n != 2 {
		t.Fatalf("read: got %d, %v; want 2, nil", n, err)
	}
	for i := range n {
		if got := bufs[i][4 : 4+sizes[i]]; !bytes.Equal(got, []byte{1, 2, 3}) {
			t.Fatalf("packet %d: got %v, want [1 2 3]", i, got)
		}
	}
	n, err = d.Read(bufs, sizes, 0)
	if err != nil || n != 1 {
		t.Fatalf("second read: got %d, %v; want 1, nil", n, err)
	}
}

func TestReadShortBuffer(t *testing.T) {
	d := New(Config{})
	defer d.Close()
	if err := d.Inject(make([]byte, 20)); err != nil {
		t.Fatal(err)
	}
	_, err := d.Read([][]byte{make([]byte, 10)}, []int{0}, 0)
	if !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("got %v, want io.ErrShortBuffer", err)
	}
}

func TestWriteCopies(t *testing.T) {
	d := New(Config{})
	defer d.Close()
	bufs := [][]byte{{0, 0, 7, 8}, {0, 0, 9}}
	n, err := d.Write(bufs, 2)
	if err != nil || n != 2 {
		t.Fatalf("write: got %d, %v; want 2, nil", n, err)
	}
	bufs[0][2] = 0
	if got := <-d.Outbound; !bytes.Equal(got, []byte{7, 8}) {
		t.Fatalf("first: got %v, want [7 8]", got)
	}
	if got := <-d.Outbound; !bytes.Equal(got, []byte{9}) {
		t.Fatalf("second: got %v, want [9]", got)
	}
	if _, w := d.Calls(); w != 1 {
		t.Fatalf("write calls: got %d, want 1", w)
	}
}

func TestCloseUnblocks(t *testing.T) {
	d := New(Config{QueueLen: 1})
	errc := make(chan error, 2)
	go func() {
		_, err := d.Read([][]byte{make([]byte, 10)}, []int{0}, 0)
		errc <- err
	}()
	go func() {
		_, err := d.Write([][]byte{{1}, {2}, {3}}, 0) // second blocks: queue of 1
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	d.Close()
	for range 2 {
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("got %v, want os.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock Read/Write")
		}
	}
	if err := d.Inject([]byte{1}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("inject after close: got %v, want os.ErrClosed", err)
	}
}
