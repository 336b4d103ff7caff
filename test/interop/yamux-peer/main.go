// Reference yamux peer for kata-ts interop tests, built on hashicorp/yamux
// from Debian's golang-github-hashicorp-yamux-dev.
//
//	yamux-peer server SOCKET             accept one connection; hash every stream it is sent
//	yamux-peer client SOCKET N SIZE      open N streams of SIZE bytes each and check the hashes
//
// The server hashes what it reads until the peer half-closes (FIN), then answers
// "<bytes> <sha256>" and closes. The client cannot half-close and keep reading
// (this yamux version's Read returns EOF after Close), so it sends an 8-byte
// big-endian length first, reads the answer until the peer's FIN, then closes.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

func payload(stream, size int) []byte {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte((i*7 + stream*13) % 251)
	}
	return data
}

func hashStream(s io.ReadWriteCloser) error {
	h := sha256.New()
	n, err := io.Copy(h, s)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(s, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	s.Close()
	return err
}

func config() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = os.Stderr
	c.KeepAliveInterval = 2 * time.Second
	return c
}

func serve(path string) error {
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	fmt.Println("listening")
	conn, err := l.Accept()
	if err != nil {
		return err
	}
	session, err := yamux.Server(conn, config())
	if err != nil {
		return err
	}
	for {
		s, err := session.Accept()
		if err != nil {
			fmt.Println("session ended:", err)
			return nil
		}
		go func() {
			if err := hashStream(s); err != nil {
				fmt.Fprintln(os.Stderr, "stream:", err)
			}
		}()
	}
}

func client(path string, streams, size int) error {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	session, err := yamux.Client(conn, config())
	if err != nil {
		return err
	}
	rtt, err := session.Ping()
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := session.OpenStream()
			if err != nil {
				errs <- err
				return
			}
			data := payload(i, size)
			length := make([]byte, 8)
			binary.BigEndian.PutUint64(length, uint64(size))
			if _, err := s.Write(append(length, data...)); err != nil {
				errs <- err
				return
			}
			answer, err := io.ReadAll(s)
			s.Close()
			if err != nil {
				errs <- err
				return
			}
			sum := sha256.Sum256(data)
			want := strconv.Itoa(size) + " " + hex.EncodeToString(sum[:])
			if string(answer) != want {
				errs <- fmt.Errorf("stream %d: got %q want %q", i, answer, want)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	// Tell the peer to open no more streams, give it time to see that, then leave.
	if err := session.GoAway(); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	fmt.Printf("ok streams=%d size=%d ping=%s\n", streams, size, rtt)
	return session.Close()
}

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "server":
		err = serve(os.Args[2])
	case len(os.Args) == 5 && os.Args[1] == "client":
		n, _ := strconv.Atoi(os.Args[3])
		size, _ := strconv.Atoi(os.Args[4])
		err = client(os.Args[2], n, size)
	default:
		err = fmt.Errorf("usage: yamux-peer server SOCKET | client SOCKET N SIZE")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "yamux-peer:", err)
		os.Exit(1)
	}
}
