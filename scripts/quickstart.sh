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

# What create itself used (its log), not a separate guess.
accelerator=$(sed -n 's/.*msg="accelerator \([a-z]*\): \(.*\)"$/\1 (\2)/p' "$log" | head -n 1)
rm -f "$log"
trap - EXIT
cat <<SUMMARY

kata-ts ran: ${command[*]}
  bundle:     $bundle (busybox-static rootfs)
  VM:         QEMU, accelerator $accelerator, guest image guest/vmlinuz + guest/kata-ts-initrd.img
phases (ms):
  setup (packages, npm, build, guest image)         $(ms "$t0" "$t1")
  create (boot VM, agent ready, container created)  $(ms "$t2" "$t3")
  start                                             $(ms "$t3" "$t4")
  run until the process exited                      $(ms "$t4" "$t5")
  delete (container, VM, proxy, shim)               $(ms "$t5" "$t6")
SUMMARY
