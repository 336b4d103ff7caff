/** Where the guest agent and its protos live in the guest. */
export const guestAgentDir = '/opt/kata-ts';
/** The launcher that compiles the agent bundle with its V8 code cache. */
export const guestAgentLoader = `${guestAgentDir}/kata-agent-loader.cjs`;
/** The agent's V8 startup snapshot: the agent loaded, protos included, ready to serve. */
export const agentSnapshotBlob = `${guestAgentDir}/kata-agent.blob`;
/** The CPU features the snapshot was built on (kata-ts-cpu-features's line). */
export const agentSnapshotCpu = `${agentSnapshotBlob}.cpu`;
/** Prints the CPU features node checks a snapshot against (native/cpu-features.c). */
export const guestCpuFeatures = '/usr/bin/kata-ts-cpu-features';

/**
 * node's flags for the agent. The code cache is recorded with exactly these
 * (V8 rejects a cache made under other flags). --lite-mode (no JIT) starts the
 * agent about a second sooner under TCG, where compiling costs most; the agent
 * does little CPU work once up.
 */
export const agentNodeFlags: readonly string[] = ['--lite-mode', '--no-expose-wasm', '--max-semi-space-size=4'];

/**
 * The guest's /init (busybox sh), PID 1 from the root image (after the boot
 * initrd's switch_root) or from a full initrd: mount the pseudo file systems,
 * load the drivers of the devices present, then hand PID 1 to the agent. Agent
 * options stay on the kernel command line, where the agent reads them itself.
 */
export function initScript(): string {
  return `#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts -o newinstance,ptmxmode=0666,gid=5,mode=620
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "kata-ts init: uptime $(cut -d' ' -f1 /proc/uptime)s, loading modules" > /dev/kmsg
# Coldplug: the drivers of the PCI devices present, then of the virtio devices they carry.
modprobe -qa $(cat /sys/bus/pci/devices/*/modalias) 2>/dev/null
modprobe -qa $(cat /sys/bus/virtio/devices/*/modalias) 2>/dev/null
hostname kata-ts-guest
ip link set lo up 2>/dev/null
case " $(cat /proc/cmdline) " in
  *" agent.debug_console "*) setsid sh -c 'exec sh </dev/console >/dev/console 2>&1' & ;;
esac
echo "kata-ts init: uptime $(cut -d' ' -f1 /proc/uptime)s, starting agent" > /dev/kmsg
# Each vsock or serial connection holds a thread-pool thread in a blocking read.
export UV_THREADPOOL_SIZE=32
# The startup snapshot when the image has one built on this CPU (node, as PID 1, would
# refuse another and end the VM); else the bundle with its code cache.
if [ -f ${agentSnapshotBlob} ] && [ "$(${guestCpuFeatures} 2>/dev/null)" = "$(cat ${agentSnapshotCpu} 2>/dev/null)" ]; then
  exec node ${agentNodeFlags.join(' ')} --snapshot-blob ${agentSnapshotBlob}
fi
exec node ${agentNodeFlags.join(' ')} ${guestAgentLoader}
`;
}

/**
 * The boot initrd's /init: load the drivers of the root device and file
 * system named on the kernel command line (root=, rootfstype=, rootflags=),
 * mount the image read-only and switch to it. A failure powers the VM off,
 * so the host sees the VM exit instead of waiting for an agent.
 */
export function bootInitScript(): string {
  return `#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() {
  echo "kata-ts boot: $*" > /dev/kmsg
  poweroff -f
}
root=; fstype=; flags=ro
for p in $(cat /proc/cmdline); do
  case $p in
    root=*) root=\${p#root=} ;;
    rootfstype=*) fstype=\${p#rootfstype=} ;;
    rootflags=*) flags=ro,\${p#rootflags=} ;;
  esac
done
[ -n "$root" ] && [ -n "$fstype" ] || fail "root= and rootfstype= must name the root image"
case $root in
  /dev/pmem*) drivers="nfit nd_pmem" ;;
  /dev/vd*) drivers="virtio_pci virtio_blk" ;;
  *) drivers= ;;
esac
# A kernel without loadable modules has these drivers built in.
if [ -e /proc/modules ]; then
  modprobe -a crc32c_generic $drivers $fstype || fail "cannot load $drivers $fstype"
fi
n=0
while [ ! -b "$root" ]; do
  [ $n -lt 500 ] || fail "$root did not appear"
  sleep 0.01
  n=$((n + 1))
done
mount -t "$fstype" -o "$flags" "$root" /root || fail "cannot mount $root ($fstype, $flags)"
umount /proc /sys /dev
exec switch_root /root /init
`;
}
