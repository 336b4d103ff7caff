// grpc-authority-peer: a gRPC client as Kata 1.x's runtime is one (grpc-go,
// with :authority set to the unix socket URL that kata-runtime sends), for
// the interop test of the agent's HTTP/2 authority handling.
//
//	grpc-authority-peer SOCKET AUTHORITY COUNT
//
// calls grpc.Health/Check COUNT times and grpc.Health/Version once on one
// connection and prints one JSON line per call: the method and the
// response's protobuf bytes in hex, or the error.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc"
)

// rawCodec hands protobuf bytes through as they are: no generated code needed.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

type result struct {
	Method   string `json:"method"`
	Response string `json:"response,omitempty"`
	Error    string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: grpc-authority-peer SOCKET AUTHORITY COUNT")
		os.Exit(2)
	}
	socket, authority := os.Args[1], os.Args[2]
	count, _ := strconv.Atoi(os.Args[3])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, "passthrough:///kata-agent",
		grpc.WithInsecure(), grpc.WithBlock(), grpc.WithAuthority(authority),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	out := json.NewEncoder(os.Stdout)
	call := func(method string) {
		request, response := []byte{}, []byte{}
		r := result{Method: method}
		if err := conn.Invoke(ctx, method, &request, &response, grpc.ForceCodec(rawCodec{})); err != nil {
			r.Error = err.Error()
		} else {
			r.Response = hex.EncodeToString(response)
		}
		out.Encode(r)
	}
	for i := 0; i < count; i++ {
		call("/grpc.Health/Check")
	}
	call("/grpc.Health/Version")
}
