import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { CommandError, runCommand } from '../util/run-command.js';
import { KataError, messageOf } from '../util/errors.js';
import { unmountAllUnder } from '../util/host-mounts.js';
import { makeShareDirs, mountShareView } from '../share/share-view.js';
import { startVirtiofsd, stopVirtiofsd, virtiofsdArgs } from './virtiofsd.js';
import type { Logger } from '../util/logger.js';
import { mountNsBinaryPath } from '../util/package-root.js';
import { identify, isSameProcessAlive, type ProcessIdentity } from '../util/process-identity.js';
import { needsVirtiofsd, qemuArgs, type VmSpec } from './qemu-args.js';
import { QmpClient } from './qmp-client.js';
import type { VmLayout } from './vm-layout.js';

/** What later commands need to find a running VM again (kept in state). */
export interface VmHandle {
  layout: VmLayout;
  qemu: ProcessIdentity;
  /** Where the agent listens, as the hypervisor sees it: a serial chardev socket or a vsock CID. */
  agentChannel: { kind: 'serial'; socket: string } | { kind: 'vsock'; cid: number; port: number };
  /** QEMU runs in a mount namespace of its own (private_mount_namespace): the share's mounts are made there. */
  mountNamespace?: boolean;
  /** QEMU runs as nobody (rootless): it opens a hot-plugged disk with nobody's rights. */
  rootless?: boolean;
  /** Guest RAM is shared with a vhost-user daemon (virtio-fs): hot-plugged memory must be too. */
  sharedRam?: boolean;
  /** Restored from a VM template, not booted: its agent was up before the host connected. */
  restored?: boolean;
}

/** Starts QEMU daemonized; a failed start leaves no process and no directory behind. */
export async function startVm(spec: VmSpec, logger: Logger): Promise<VmHandle> {
  const { layout } = spec;
  if (spec.hypervisor.rootless && !existsSync(virtfsProxyHelper)) {
    throw new KataError('CONFIG_INVALID', `rootless = true needs QEMU's ${virtfsProxyHelper} (Debian package qemu-system-common)`);
  }
  // The VM dir stays root-only; the share inside it may be traversed (0711), so that a
  // container whose root is a mapped id (a user namespace) reaches its rootfs in the guest.
  await mkdir(layout.dir, { recursive: true, mode: 0o700 });
  await makeShareDirs(layout);
  // QEMU in the host's mount namespace exports the read-only view made here, and virtiofsd serves it
  // from here; in a namespace of QEMU's own, kata-ts-mountns makes the view and starts virtiofsd there.
  if (!spec.hypervisor.privateMountNamespace) {
    await (async () => {
      await mountShareView(layout);
      if (needsVirtiofsd(spec)) await startVirtiofsd(spec.hypervisor, layout);
    })().catch(async (err: unknown) => {
      await unmountAllUnder(layout.dir).catch(() => undefined);
      await rm(layout.dir, { recursive: true, force: true });
      throw err;
    });
  }
  const args = qemuArgs(spec);
  logger.debug('starting QEMU', { path: spec.hypervisor.path, args: args.join(' ') });
  try {
    const [file, argv] = launchInMountNs(spec, ...launchInNetns(spec, spec.hypervisor.path, args));
    await runCommand(file, argv, { timeoutMs: 30_000 });
  } catch (err) {
    const stderr = err instanceof CommandError ? err.result.stderr : '';
    const reason = stderr.trim() ? stderr.trim().split('\n').pop() : messageOf(err);
    await killFromPidFile(layout.pidFile);
    await stopVirtiofsd(layout);
    await unmountAllUnder(layout.dir).catch(() => undefined);
    await rm(layout.dir, { recursive: true, force: true });
    throw new KataError('VM', `QEMU failed to start: ${reason}`, { cause: err });
  }
  const pid = Number((await readFile(layout.pidFile, 'utf8')).trim());
  const qemu = await identify(pid);
  if (!qemu) {
    await stopVirtiofsd(layout);
    await unmountAllUnder(layout.dir).catch(() => undefined);
    await rm(layout.dir, { recursive: true, force: true });
    throw new KataError('VM', `QEMU exited right after starting; see ${layout.consoleLog}`);
  }
  const agentChannel: VmHandle['agentChannel'] =
    spec.hypervisor.useVsock && spec.vsockCid !== undefined
      ? { kind: 'vsock', cid: spec.vsockCid, port: 1024 }
      : { kind: 'serial', socket: layout.agentChannelSocket };
  return {
    layout, qemu, agentChannel,
    ...(spec.hypervisor.privateMountNamespace ? { mountNamespace: true } : {}),
    ...(spec.hypervisor.rootless ? { rootless: true } : {}),
    ...(spec.hypervisor.sharedFs === 'virtio-fs' ? { sharedRam: true } : {}),
  };
}

/** QEMU opens its taps in the namespace it runs in: the pod's (nsenter), or a new empty one (unshare). */
function launchInNetns(spec: VmSpec, file: string, args: string[]): [string, string[]] {
  const network = spec.network;
  if (network?.netns) return ['nsenter', [`--net=${network.netns}`, '--', file, ...args]];
  if (network?.fresh) return ['unshare', ['--net', '--', file, ...args]];
  return [file, args];
}

/** Debian's QEMU helper that serves a 9p share as root to a QEMU that is not (package qemu-system-common). */
export const virtfsProxyHelper = '/usr/lib/qemu/virtfs-proxy-helper';

/** Outermost: QEMU's own mount namespace, with only its VM dir left of the VM root (native/mount-ns.c). */
function launchInMountNs(spec: VmSpec, file: string, args: string[]): [string, string[]] {
  if (!spec.hypervisor.privateMountNamespace) return [file, args];
  const proxy = spec.hypervisor.rootless ? ['--proxy-9p', virtfsProxyHelper, spec.layout.sharedDir] : [];
  const daemonArgs = virtiofsdArgs(spec.hypervisor, spec.layout);
  const virtiofs = needsVirtiofsd(spec) ? ['--virtiofsd', String(daemonArgs.length), spec.hypervisor.virtioFsDaemon, ...daemonArgs] : [];
  return [mountNsBinaryPath, ['launch', spec.layout.dir, ...proxy, ...virtiofs, '--', file, ...args]];
}

/**
 * Kills the QEMU that wrote this pid file, if it still runs: a QEMU whose
 * start was cut short (a killed create) is known by nothing else. The pid must
 * still be that QEMU: its command line names this very pid file.
 */
export async function killFromPidFile(pidFile: string): Promise<boolean> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1) return false;
  const id = await identify(pid);
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  if (!id || !cmdline.includes(pidFile)) return false;
  process.kill(id.pid, 'SIGKILL');
  for (let i = 0; i < 100 && (await isSameProcessAlive(id)); i++) await sleep(20);
  return true;
}

export async function vmIsRunning(vm: VmHandle): Promise<boolean> {
  return isSameProcessAlive(vm.qemu);
}

/** QMP quit, then SIGKILL after the grace period; then the VM dir goes. Safe on a dead VM. */
export async function stopVm(vm: VmHandle, logger: Logger, graceMs = 3000): Promise<void> {
  if (await isSameProcessAlive(vm.qemu)) {
    try {
      const qmp = await QmpClient.connect(vm.layout.qmpSocket, 1000);
      await qmp.execute('quit', undefined, 1000).catch(() => undefined);
      qmp.close();
    } catch (err) {
      logger.debug(`QMP quit failed: ${messageOf(err)}`);
    }
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && (await isSameProcessAlive(vm.qemu))) await sleep(50);
    if (await isSameProcessAlive(vm.qemu)) {
      logger.warn(`QEMU ${vm.qemu.pid} did not quit within ${graceMs} ms; killing it`);
      process.kill(vm.qemu.pid, 'SIGKILL');
      for (let i = 0; i < 100 && (await isSameProcessAlive(vm.qemu)); i++) await sleep(20);
    }
  }
  await stopVirtiofsd(vm.layout);
  // A bind mount left in the shared dir would make rm -r delete the files behind it.
  await unmountAllUnder(vm.layout.dir);
  await rm(vm.layout.dir, { recursive: true, force: true });
}
