// ttrpc-peer: containerd's Go ttrpc (Debian's golang-github-containerd-ttrpc-dev),
// as a server or a client, for the interop tests of kata-ts's ttrpc.
//
//	ttrpc-peer serve SOCKET   serves kata.ts.test.Echo until stdin closes
//	ttrpc-peer call SOCKET    calls kata.ts.test.Echo on SOCKET and prints one JSON line per call
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const service = "kata.ts.test.Echo"

func serve(socket string) error {
	server, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	server.Register(service, map[string]ttrpc.Method{
		// Echo answers after a delay named in the request ("wait:MS:text"), so replies can overtake each other.
		"Echo": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req types.StringValue
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			text := req.Value
			if strings.HasPrefix(text, "wait:") {
				parts := strings.SplitN(text, ":", 3)
				var ms int
				fmt.Sscanf(parts[1], "%d", &ms)
				time.Sleep(time.Duration(ms) * time.Millisecond)
				text = parts[2]
			}
			md, _ := ttrpc.GetMetadata(ctx)
			suffix := ""
			if v, ok := md.Get("who"); ok {
				suffix = " (who=" + strings.Join(v, ",") + ")"
			}
			return &types.StringValue{Value: "echo: " + text + suffix}, nil
		},
		"Fail": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			return nil, status.Errorf(codes.NotFound, "no such thing")
		},
	})
	listener, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	go server.Serve(context.Background(), listener)
	fmt.Println("serving")
	buf := make([]byte, 1)
	os.Stdin.Read(buf)
	return server.Close()
}

type result struct {
	Call    string `json:"call"`
	Value   string `json:"value,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

func call(socket string) error {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return err
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	run := func(name, method, value string, md ttrpc.MD) result {
		ctx := context.Background()
		if md != nil {
			ctx = ttrpc.WithMetadata(ctx, md)
		}
		var resp types.StringValue
		err := client.Call(ctx, service, method, &types.StringValue{Value: value}, &resp)
		if err != nil {
			s, _ := status.FromError(err)
			return result{Call: name, Code: s.Code().String(), Message: s.Message()}
		}
		return result{Call: name, Value: resp.Value}
	}
	out := json.NewEncoder(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	// Concurrent calls on one connection: the slow one is asked first and answered last.
	for _, c := range []struct{ name, value string }{{"slow", "wait:300:slow"}, {"fast", "fast"}} {
		wg.Add(1)
		go func(name, value string) {
			defer wg.Done()
			r := run(name, "Echo", value, nil)
			mu.Lock()
			out.Encode(r)
			mu.Unlock()
		}(c.name, c.value)
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	out.Encode(run("metadata", "Echo", "hello", ttrpc.MD{"who": []string{"go"}}))
	out.Encode(run("large", "Echo", strings.Repeat("x", 1<<20), nil))
	out.Encode(run("fail", "Fail", "", nil))
	out.Encode(run("unknown", "Nope", "", nil))
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: ttrpc-peer serve|call SOCKET")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2])
	case "call":
		err = call(os.Args[2])
	default:
		err = fmt.Errorf("unknown mode %s", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
