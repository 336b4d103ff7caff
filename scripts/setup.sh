#!/usr/bin/env bash
# Installs what kata-ts and its tests need on Debian 12 (as root), then builds it.
# Safe to run again: installed packages and an unchanged build are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  qemu-system-x86   # the hypervisor
  qemu-utils        # qemu-img for block volume tests
  qemu-user         # qemu-x86_64: builds the agent's startup snapshot on the CPU a TCG guest sees
  busybox-static    # guest userland and test rootfs
  crun              # OCI runtime inside the guest
  e2fsprogs         # mkfs.ext4 for block volume tests (and ext4 root images)
  erofs-utils       # mkfs.erofs: the guest's read-only root image
  xz-utils          # the uncompressed kernel is xz-packed inside the Debian bzImage
  gcc make bc bison flex libelf-dev  # the kata-ts guest kernel, built once from linux-source
  kmod              # depmod/modinfo for the guest image
  binutils          # strip
  golang-go                         # interop peers
  golang-github-hashicorp-yamux-dev # reference yamux for interop tests
  golang-github-containerd-ttrpc-dev # reference ttrpc for interop tests
  golang-google-grpc-dev            # grpc-go, as Kata 1.x's runtime uses it (interop test)
  containerd        # caller tests: containerd 1.6 (ctr, CRI plugin) runs kata-ts through its runc shim
  docker.io         # caller tests: docker 20.10 runs kata-ts as a runtime (dockerd started by the test)
  podman            # caller tests: podman 4.3 ...
  conmon            # ... and its monitor
  iproute2          # ip and tc: the pod network's taps and filters
  containernetworking-plugins # CNI bridge networks for the podman and CRI network tests
  iptables          # used by the CNI plugins (portmap, firewall)
  ca-certificates
)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages with daemons (containerd) must not start them: the tests start their own,
  # with state in temp dirs, and stop them. policy-rc.d is Debian's switch for that.
  policy=/usr/sbin/policy-rc.d
  own_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=true
  fi
  trap 'if [ "$own_policy" = true ]; then rm -f "$policy"; fi' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "setup: npm ci"
npm ci --no-audit --no-fund --loglevel=error
echo "setup: build"
npm run --silent build
echo "setup: guest image"
./bin/kata-ts image build
# The accelerator decision (a KVM boot probe, cached for this boot of the host):
# made once here, so that the first create does not pay for it.
echo "setup: host check"
./bin/kata-ts check || echo "setup: warning: kata-ts check reports problems (above)"
