package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"time"
)

// The demo runs itself inside a namespace (ip netns exec NS demo __serve
// ...) as the TCP server and client of the -tool go transfers.
//
//	__serve ADDR          accept one connection on ADDR, read until EOF,
//	                      answer with the SHA-256 of what arrived; prints
//	                      "listening" once ready
//	__send SRC DST BYTES  connect from SRC to DST, send BYTES pseudo-random
//	                      bytes, compare the server's hash; prints a
//	                      sendResult as JSON

// sendResult is what __send prints.
type sendResult struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	HashOK  bool    `json:"hash_ok"`
}

func helperMain(args []string) int {
	var err error
	switch {
	case args[0] == "__serve" && len(args) == 2:
		err = serve(args[1], os.Stdout)
	case args[0] == "__send" && len(args) == 4:
		var n int64
		n, err = strconv.ParseInt(args[3], 10, 64)
		if err == nil {
			var r sendResult
			r, err = send(args[1], args[2], n)
			if err == nil {
				err = json.NewEncoder(os.Stdout).Encode(r)
			}
		}
	default:
		err = fmt.Errorf("bad helper command line %q", args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo helper:", err)
		return 1
	}
	return 0
}

func serve(addr string, ready io.Writer) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintln(ready, "listening")
	if tl, ok := l.(*net.TCPListener); ok {
		_ = tl.SetDeadline(time.Now().Add(60 * time.Second))
	}
	c, err := l.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	_, err = c.Write(h.Sum(nil))
	return err
}

func send(src, dst string, n int64) (sendResult, error) {
	var r sendResult
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		ip := net.ParseIP(src)
		if ip == nil {
			return r, fmt.Errorf("bad source address %q", src)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	c, err := d.Dial("tcp", dst)
	if err != nil {
		return r, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	buf := make([]byte, 256<<10)
	h := sha256.New()
	start := time.Now()
	for sent := int64(0); sent < n; {
		k := int(min(int64(len(buf)), n-sent))
		for i := 0; i < k; i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < k; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := c.Write(buf[:k]); err != nil {
			return r, fmt.Errorf("send after %d bytes: %w", sent, err)
		}
		h.Write(buf[:k])
		sent += int64(k)
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return r, errors.New("not a TCP connection")
	}
	if err := tc.CloseWrite(); err != nil {
		return r, err
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, got); err != nil {
		return r, fmt.Errorf("read the server's hash: %w", err)
	}
	r.Seconds = time.Since(start).Seconds()
	r.Bytes = n
	r.HashOK = bytes.Equal(got, h.Sum(nil))
	return r, nil
}
