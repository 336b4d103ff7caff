#!/usr/bin/env bash
# Builds Kata Containers 1.x's runtime, proxy, shim and agent from their
# sources, for `npm run bench:kata1`. Not part of CI: the sources are not on
# Debian's mirrors. Give a directory holding the four source trees
# (github.com/kata-containers/{runtime,proxy,shim,agent}, 1.x branches, with
# their vendor/ directories) and an output directory.
# Usage: test/bench/build-kata1.sh SOURCES OUT
set -euo pipefail
src=$(realpath "$1")
out=$(realpath -m "$2")
command -v go >/dev/null || { echo "build-kata1: needs Go (apt install golang-go)" >&2; exit 2; }
for repo in runtime proxy shim agent; do
  [ -d "$src/$repo/vendor" ] || { echo "build-kata1: $src/$repo/vendor is missing" >&2; exit 2; }
done

# Kata 1.x predates Go modules: a GOPATH tree whose packages are the sources.
gopath=$(mktemp -d)
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src/github.com/kata-containers" "$gopath/bin" "$out"
for repo in runtime proxy shim agent; do
  # A copy, not a link: go in GOPATH mode must find the package path in its working directory.
  cp -a "$src/$repo" "$gopath/src/github.com/kata-containers/$repo"
done
export GOPATH=$gopath GO111MODULE=off GOFLAGS=
# The runtime's Makefile reads the minimum Go version with yq, which it would
# download; Debian's Go is newer than that minimum anyway.
printf '#!/bin/sh\necho 1.11.10\n' > "$gopath/bin/yq"
chmod +x "$gopath/bin/yq"

build() { (cd "$gopath/src/github.com/kata-containers/$1" && make "${@:2}" >/dev/null); }
build agent
build proxy
build shim
tree=$gopath/src/github.com/kata-containers
[ -f "$tree/runtime/.git-commit" ] || echo unknown > "$tree/runtime/.git-commit"
build runtime runtime SKIP_GO_VERSION_CHECK=1
cp "$tree/agent/kata-agent" "$tree/proxy/kata-proxy" "$tree/shim/kata-shim" "$tree/runtime/kata-runtime" "$out/"
echo "built Kata 1.x $(cat "$src/runtime/VERSION") into $out"
