// Kata Containers 1.x's own components (runtime, proxy, shim, Go agent), built
// from their sources with test/bench/build-kata1.sh (they are not on Debian's
// mirrors): what bench:kata1 and the opt-in Kata 1.x interop test need to run them.
import { spawn } from 'node:child_process';
import { access, copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { HypervisorConfig } from '../../src/config/runtime-config.js';
import { runTool } from './run-cli.js';

export const kata1Binaries = ['kata-runtime', 'kata-proxy', 'kata-shim', 'kata-agent'] as const;

const exists = (file: string): Promise<boolean> => access(file).then(() => true, () => false);

/** The directory given (flag or KATA1_DIR) if it holds Kata 1.x's four binaries; else why not. */
export async function findKata1(dir: string | undefined): Promise<{ dir: string } | { missing: string }> {
  if (!dir) return { missing: 'KATA1_DIR is not set' };
  for (const binary of kata1Binaries) {
    if (!(await exists(path.join(dir, binary)))) return { missing: `${path.join(dir, binary)} is missing` };
  }
  return { dir: path.resolve(dir) };
}

/** Kata's agent as the guest's /init, with the libraries it links, in an uncompressed newc initrd (osbuilder's AGENT_INIT=yes). */
export async function kataAgentInitrd(agent: string, workDir: string): Promise<string> {
  const tree = path.join(workDir, 'kata1-initrd');
  for (const sub of ['proc', 'sys', 'dev', 'run', 'tmp', 'etc', 'sbin', 'usr/bin']) await mkdir(path.join(tree, sub), { recursive: true });
  await copyFile(agent, path.join(tree, 'usr/bin/kata-agent'));
  await symlink('/usr/bin/kata-agent', path.join(tree, 'init'));
  await symlink('/usr/bin/kata-agent', path.join(tree, 'sbin/init'));
  const { stdout } = await execa('ldd', [agent], { reject: false });
  for (const lib of stdout.match(/\/\S+/g) ?? []) {
    await mkdir(path.join(tree, path.dirname(lib)), { recursive: true });
    await copyFile(lib, path.join(tree, lib));
  }
  const out = path.join(workDir, 'kata1-agent-initrd.img');
  const cpio = await execa('sh', ['-c', `cd ${tree} && find . -mindepth 1 | busybox cpio -o -H newc`], { encoding: 'buffer' });
  await writeFile(out, cpio.stdout);
  return out;
}

/** Kata 1.x asks QEMU for KVM and the host's CPU model; under TCG a wrapper asks for what kata-ts's VMs get. */
export async function qemuForKata1(qemu: string, accelerator: 'kvm' | 'tcg', workDir: string): Promise<string> {
  if (accelerator === 'kvm') return qemu;
  const wrapper = path.join(workDir, 'qemu-tcg');
  await writeFile(wrapper, `#!/bin/bash
args=()
for a in "$@"; do
  a=\${a//accel=kvm,kernel_irqchip=split/accel=tcg}
  a=\${a//accel=kvm,kernel_irqchip/accel=tcg}
  a=\${a//accel=kvm/accel=tcg}
  case "$a" in host,*|host) a=max ;; esac
  args+=("$a")
done
exec ${qemu} "\${args[@]}"
`, { mode: 0o755 });
  return wrapper;
}

/** A kata-runtime 1.x configuration: this QEMU, kernel and initrd, 9p, virtio-serial through kata-proxy. */
export async function kata1Config(file: string, kata1Dir: string, guest: { qemu: string; kernel: string; initrd: string }, h: Pick<HypervisorConfig, 'defaultVcpus' | 'defaultMemoryMiB'>): Promise<string> {
  await writeFile(file, `[hypervisor.qemu]
path = "${guest.qemu}"
kernel = "${guest.kernel}"
initrd = "${guest.initrd}"
machine_type = "pc"
kernel_params = ""
firmware = ""
machine_accelerators = ""
default_vcpus = ${h.defaultVcpus}
default_maxvcpus = 0
default_bridges = 1
default_memory = ${h.defaultMemoryMiB}
disable_block_device_use = false
shared_fs = "virtio-9p"
block_device_driver = "virtio-scsi"
enable_iothreads = false
valid_hypervisor_paths = ["${guest.qemu}"]

[proxy.kata]
path = "${path.join(kata1Dir, 'kata-proxy')}"

[shim.kata]
path = "${path.join(kata1Dir, 'kata-shim')}"

[agent.kata]

[netmon]
path = "/usr/libexec/kata-containers/kata-netmon"

[runtime]
internetworking_model = "tcfilter"
disable_guest_seccomp = true
`);
  return file;
}

/**
 * What kata-runtime 1.x needs of the host and this one may lack; returns the
 * undo. It logs to syslog and exits without /dev/log (a busybox syslogd then
 * runs for the while). It puts a container's rootfs in the 9p share by mount
 * propagation into a slave bind, which a host whose / is private (no systemd)
 * never delivers: the guest would see an empty read-only rootfs.
 */
export async function prepareHostForKataRuntime(workDir: string): Promise<() => Promise<void>> {
  const undo: Array<() => Promise<unknown>> = [];
  if (!(await exists('/dev/log'))) {
    const syslogd = spawn('busybox', ['syslogd', '-n', '-O', path.join(workDir, 'syslog.log')], { stdio: 'ignore' });
    undo.push(async () => {
      syslogd.kill('SIGTERM');
      await rm('/dev/log', { force: true });
    });
    for (let i = 0; i < 50 && !(await exists('/dev/log')); i++) await sleep(100);
  }
  const sandboxes = '/run/kata-containers/shared/sandboxes';
  const hadVc = await exists('/run/vc');
  await mkdir(sandboxes, { recursive: true });
  if ((await runTool('mountpoint', ['-q', sandboxes])).exitCode !== 0) {
    await execa('mount', ['--bind', sandboxes, sandboxes]);
    await execa('mount', ['--make-shared', sandboxes]);
    undo.push(() => execa('umount', [sandboxes], { reject: false }));
  }
  // kata-runtime leaves its empty state dirs behind.
  if (!hadVc) undo.push(() => execa('sh', ['-c', 'rmdir /run/vc/sbs /run/vc/vm /run/vc'], { reject: false }));
  return async () => {
    for (const step of undo.reverse()) await step().catch(() => undefined);
  };
}
