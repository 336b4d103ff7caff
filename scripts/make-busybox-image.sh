#!/usr/bin/env bash
# Makes an OCI image archive (an OCI layout in a tar) holding Debian's busybox-static,
# offline, for `ctr images import` and `podman load`. One uncompressed layer, built
# reproducibly (fixed mtimes, owners and order), so the digests only change with busybox.
# Usage: scripts/make-busybox-image.sh OUT.tar [NAME [CMD_JSON]]
#   NAME default docker.io/kata-ts/busybox:latest; CMD_JSON the image's Cmd, default ["sh"]
#   (a pod sandbox image wants one that waits forever: '["sleep","2147483647"]').
set -euo pipefail
out=$1
name=${2:-docker.io/kata-ts/busybox:latest}
cmd=${3:-'["sh"]'}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,proc,dev,sys,tmp,etc,root,run}
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"

blobs=$work/layout/blobs/sha256
mkdir -p "$blobs"
tar --create --file "$work/layer.tar" --directory "$rootfs" --sort=name --mtime=@0 \
  --owner=0 --group=0 --numeric-owner --format=posix --pax-option=delete=atime,delete=ctime .

# put FILE: stores FILE as a blob; prints "digest size".
put() {
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$blobs/$digest"
  echo "$digest $size"
}

read -r layer_digest layer_size < <(put "$work/layer.tar")
cat > "$work/config.json" <<EOF
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":$cmd,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$layer_digest"]},"history":[{"created_by":"kata-ts scripts/make-busybox-image.sh"}]}
EOF
read -r config_digest config_size < <(put "$work/config.json")
cat > "$work/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_digest","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer_digest","size":$layer_size}]}
EOF
read -r manifest_digest manifest_size < <(put "$work/manifest.json")

# ctr reads io.containerd.image.name; podman and skopeo read org.opencontainers.image.ref.name.
cat > "$work/layout/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest_digest","size":$manifest_size,"annotations":{"io.containerd.image.name":"$name","org.opencontainers.image.ref.name":"$name"}}]}
EOF
echo '{"imageLayoutVersion":"1.0.0"}' > "$work/layout/oci-layout"
mkdir -p "$(dirname "$out")"
tar --create --file "$out" --directory "$work/layout" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner .
echo "$out: $name (manifest sha256:$manifest_digest)" >&2
