/** Where the guest agent and its protos live inside the initrd. */
export const guestAgentDir = '/opt/kata-ts';
export const guestAgentEntry = `${guestAgentDir}/kata-agent.mjs`;

/**
 * The initrd's /init (busybox sh): mount the pseudo file systems, load the
 * modules, then hand PID 1 to the agent. Agent options stay on the kernel
 * command line, where the agent reads them itself.
 */
export function initScript(): string {
  return `#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /sys/fs/cgroup
mount -t devpts devpts /dev/pts -o newinstance,ptmxmode=0666,gid=5,mode=620
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "kata-ts init: uptime $(cut -d' ' -f1 /proc/uptime)s, loading modules" > /dev/kmsg
while read -r module; do
  modprobe "$module" || echo "kata-ts init: modprobe $module failed" > /dev/kmsg
done < /etc/kata-ts/modules
hostname kata-ts-guest
ip link set lo up 2>/dev/null
case " $(cat /proc/cmdline) " in
  *" agent.debug_console "*) setsid sh -c 'exec sh </dev/console >/dev/console 2>&1' & ;;
esac
echo "kata-ts init: uptime $(cut -d' ' -f1 /proc/uptime)s, starting agent" > /dev/kmsg
# Each vsock or serial connection holds a thread-pool thread in a blocking read.
export UV_THREADPOOL_SIZE=32
exec node --max-semi-space-size=4 ${guestAgentEntry}
`;
}
