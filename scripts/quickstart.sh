#!/usr/bin/env bash
# The README's first command: set everything up, then run a container in a VM on
# the bundled defaults and show what ran and how long each phase took.
set -euo pipefail
cd "$(dirname "$0")/.."
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }

t0=$(now)
bash scripts/setup.sh
t1=$(now)

bundle=/var/tmp/kata-ts-demo-bundle
id="kata-ts-demo-$$"
command=(sh -c 'echo "hello from a container in a kata-ts VM"; echo "guest kernel $(uname -r), $(nproc) vCPU, $(free -m | awk "/Mem:/ {print \$2}") MiB"; echo "container hostname: $(hostname)"')
scripts/make-busybox-bundle.sh "$bundle" "${command[@]}"
kata=(./bin/kata-ts --kata-config ./configuration.toml)
log=$(mktemp /tmp/kata-ts-demo-log.XXXXXX)
trap '"${kata[@]}" delete --force "$id" >/dev/null 2>&1 || true; rm -f "$log"' EXIT

echo "--- container output ---"
t2=$(now)
"${kata[@]}" --log "$log" create "$id" --bundle "$bundle"
t3=$(now)
"${kata[@]}" start "$id"
t4=$(now)
while [ "$("${kata[@]}" state "$id" | sed -n 's/.*"status": "\(.*\)".*/\1/p')" != stopped ]; do sleep 0.1; done
t5=$(now)
"${kata[@]}" delete "$id"
t6=$(now)
echo "--- end of container output ---"

# Every name and figure below comes from what ran: create's log and kata-ts env on the same configuration.
logged() { sed -n "s/.*msg=\"$1\".*/\\1/p" "$log" | head -n 1; }
accelerator=$(sed -n 's/.*msg="accelerator \([a-z]*\): \(.*\)"$/\1 (\2)/p' "$log" | head -n 1)
restored_from=$(logged 'VM restored from the VM template \([^"]*\)')
booted_because=$(logged 'VM booted, without a VM template: \([^"]*\)')
template_made=$(sed -n 's/.*msg="made the VM template \([^ ]*\) in \([0-9]*\) ms".*/\2/p' "$log" | head -n 1)
vm_boot_ms=$(sed -n 's/.*msg="created container .*vmBootMs=\([0-9]*\).*/\1/p' "$log" | head -n 1)
rm -f "$log"
trap - EXIT
env_field() { "${kata[@]}" env --json | node -e 'let t = ""; process.stdin.on("data", (c) => (t += c)).on("end", () => { let v = JSON.parse(t); for (const k of process.argv[1].split(".")) v = v?.[k]; console.log(v ?? ""); });' "$1"; }
if [ -n "$restored_from" ]; then
  vm_start="restored from the VM template $restored_from"
  if [ -n "$template_made" ]; then vm_start="$vm_start (this create made it first: $template_made ms)"; fi
else
  vm_start="booted (${booted_because:-no template})"
fi
cat <<SUMMARY

kata-ts ran: ${command[*]}
  bundle:     $bundle (busybox-static rootfs)
  VM:         QEMU $(env_field Hypervisor.Version), accelerator $accelerator
  VM start:   $vm_start; VM and agent ready $vm_boot_ms ms after create began the VM
  guest:      kernel $(env_field Kernel.Path); root $(env_field Hypervisor.GuestRoot)
  agent:      $(env_field Proxy.Channel), served by the sandbox's pod process; the container's pid is its carrier
phases (ms):
  setup (packages, npm, build, guest image)         $(ms "$t0" "$t1")
  create (VM, agent ready, container created)       $(ms "$t2" "$t3")
  start                                             $(ms "$t3" "$t4")
  run until the process exited                      $(ms "$t4" "$t5")
  delete (container, VM, pod process)               $(ms "$t5" "$t6")
SUMMARY
