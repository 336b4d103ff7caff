#!/usr/bin/env bash
# Makes an OCI bundle at DIR: a rootfs of Debian's busybox-static (applets linked
# in /bin) and a config.json from `kata-ts spec`, running the given command.
# Usage: scripts/make-busybox-bundle.sh DIR [command [args...]]
set -euo pipefail
dir=$1
shift
kata_ts="$(cd "$(dirname "$0")/.." && pwd)/bin/kata-ts"
rm -rf "$dir"
mkdir -p "$dir"/rootfs/{bin,proc,dev,sys,tmp,etc,root}
cp /bin/busybox "$dir/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$dir/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/rootfs/etc/passwd"
"$kata_ts" spec --no-terminal --bundle "$dir"
if [ $# -gt 0 ]; then
  node -e '
    const fs = require("fs");
    const [file, ...args] = process.argv.slice(1);
    const spec = JSON.parse(fs.readFileSync(file, "utf8"));
    spec.process.args = args;
    fs.writeFileSync(file, JSON.stringify(spec, null, 2) + "\n");
  ' "$dir/config.json" "$@"
fi
