import path from 'node:path';
import type { Storage } from '../agent-protocol/messages.js';
import type { RuntimeConfig } from '../config/runtime-config.js';
import type { Logger } from '../util/logger.js';
import type { OciRuntimeSpec } from './oci-spec-types.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { StateStore } from '../store/state-store.js';
import { KataError, isKataError, messageOf } from '../util/errors.js';
import { specToAgent } from './agent-spec.js';
import type { RuntimeContainerState, VolumeRecord } from './container-record.js';
import { shareMounter } from '../hypervisor/vm-mounts.js';
import { containerNeeds, growSandbox, memberNeeds } from './sandbox-resources.js';
import { guestSharedDir, shareContainerFiles, unshareContainerFiles } from '../share/container-files.js';
import { loadBundle } from './oci-bundle.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent } from './sandbox-agent.js';
import { sandboxMembership } from './sandbox-membership.js';
import { readSandboxRecord, removeSandboxDir, sandboxDir, withSandboxLock, writeSandboxRecord, type SandboxRecord } from './sandbox-record.js';
import { sandboxAccelerator } from './sandbox-accelerator.js';
import { bootSandboxVm, shutdownSandboxVm } from './sandbox-vm.js';
import { ociVersion } from './describe-container.js';
import { runHooks, warnGuestHooks } from './oci-hooks.js';
import { spawnCarrier, type CarrierStdio, type SpawnedCarrier } from './carrier-process.js';
import { podCommand } from './pod-spawn.js';
import { stopProcess } from './stop-process.js';
import { configureGuestNetwork } from './guest-network.js';
import { checkConsoleSocket } from './console-socket-path.js';
import { identify, isSameProcessAlive } from '../util/process-identity.js';
import { ownedNetnsName } from '../network/pod-network.js';
import { splitSpecDevices } from './spec-devices.js';
import { attachVolume, checkHostPath, detachContainerVolumes, sandboxVolumes } from './block-volumes.js';
import { placeContainerCarrier, removeContainerCgroup } from '../cgroups/container-cgroup.js';

export interface CreateOptions {
  id: string;
  bundle: string;
  consoleSocket?: string;
  pidFile?: string;
  /** run in the foreground: the carrier stays in this session and may use the calling terminal. */
  foreground?: boolean;
  /** The carrier's stdin, stdout and stderr, when not this command's own (the containerd shim's pipes and FIFOs). */
  stdio?: CarrierStdio;
}

export interface CreatedContainer {
  state: RuntimeContainerState;
  carrier: SpawnedCarrier;
  /** Milliseconds spent booting a new sandbox VM (0 when the container joined one). */
  bootMs: number;
}

/**
 * The share as the guest mounts it, once per sandbox: Kata 1.x's 9p Storage, or
 * Kata 2.x's virtio-fs one (driver virtio-fs, fstype virtiofs, the same tag).
 */
export function sharedStorage(h: Pick<RuntimeConfig['hypervisor'], 'sharedFs' | 'msize9p'>): Storage {
  // With the trailing slash, as Kata 1.x sends it: its 1.x agent creates only the parent of a path without one.
  const mountPoint = `${guestSharedDir}/`;
  if (h.sharedFs === 'virtio-fs') {
    return { driver: 'virtio-fs', driver_options: [], source: 'kataShared', fstype: 'virtiofs', options: [], mount_point: mountPoint };
  }
  return {
    driver: '9p',
    driver_options: [],
    source: 'kataShared',
    fstype: '9p',
    options: ['trans=virtio', 'version=9p2000.L', 'cache=mmap', 'nodev', `msize=${h.msize9p}`],
    mount_point: mountPoint,
  };
}

/**
 * create: boots the sandbox VM (or joins the one the CRI annotations name),
 * shares the rootfs and bind mounts through 9p, creates the container in the
 * guest, starts the carrier, writes state, and writes the pid file last. Any
 * failure undoes every step: no state, VM, pod process, carrier or mount is left.
 */
export async function createContainer(ctx: RuntimeContext, config: RuntimeConfig, options: CreateOptions): Promise<CreatedContainer> {
  const { store, logger } = ctx;
  const id = StateStore.checkNewId(options.id);
  const bundle = await loadBundle(options.bundle);
  const spec = bundle.spec;
  const terminal = spec.process?.terminal ?? false;
  if (terminal && !options.consoleSocket && !options.foreground) {
    throw new KataError('USAGE', 'process.terminal is true: --console-socket is required (the container would have no one to own its terminal)');
  }
  if (!terminal && options.consoleSocket) throw new KataError('USAGE', '--console-socket was given but process.terminal is false in config.json');
  if (options.consoleSocket) await checkConsoleSocket(options.consoleSocket);
  warnSeccomp(spec, config, logger);
  // Checked before anything exists: a device the VM cannot have fails create with nothing left.
  const { guestDevices, blockDevices } = await splitSpecDevices(spec);
  const hostDisks = await Promise.all(blockDevices.map(async (d) => ({ ...d, host: await checkHostPath(d.hostPath) })));
  const guestSpec: OciRuntimeSpec = blockDevices.length && spec.linux ? { ...spec, linux: { ...spec.linux, devices: guestDevices } } : spec;
  for (const ns of spec.linux?.namespaces ?? []) {
    // Documented (README, Namespaces): logged so that the choice is never silent.
    if (ns.path && ns.type === 'network') logger.info(`network namespace ${ns.path}: the VM gets its interfaces (internetworking_model = "${config.runtime.internetworkingModel}"), and the container the VM's network`);
    else if (ns.path) logger.info(`${ns.type} namespace ${ns.path} is the host's: the container gets a ${ns.type} namespace of its own in the VM`);
  }
  const membership = sandboxMembership(id, spec.annotations);
  const sandboxId = membership.sandboxId;
  // Decided before any state exists: accelerator = "kvm" on a host without KVM leaves nothing behind.
  const accelerator = membership.joins ? undefined : await sandboxAccelerator(config, logger);
  const creator = await identify(process.pid);
  const state: RuntimeContainerState = {
    schemaVersion: 1,
    id,
    bundle: bundle.dir,
    status: 'creating',
    created: new Date().toISOString(),
    annotations: spec.annotations ?? {},
    sandboxId,
    rootfs: bundle.rootfs,
    process: spec.process ?? {},
    hostMounts: [],
    ...(spec.hooks ? { hooks: spec.hooks } : {}),
    ...(creator ? { creator } : {}),
  };
  await store.create(state);
  const undo: Array<() => Promise<unknown>> = [];
  const runPrestart = prestartRunner(spec, state, logger);
  let bootMs = 0;
  // Only a sandbox this create boots is removed on failure: another create's live one never is.
  let ownsSandboxDir = false;
  try {
    // Everything up to the written state happens under the sandbox's lock, a failure's undoing
    // included: another create joining this sandbox never sees a VM that is about to go.
    const carrier = await withSandboxLock(store.root, sandboxId, async (lock) => {
      try {
        const spawned = await createUnderLock();
        // The container's process exists (its pid is the carrier's) and has not run: runtime-spec's
        // createRuntime point, with the state crun (the guest's runtime) gives it. prestart ran before the VM.
        const hookState = { ociVersion, id, status: 'created', pid: spawned.id.pid, bundle: bundle.dir, annotations: state.annotations };
        await runHooks(spec.hooks, 'createRuntime', hookState, logger, true);
        warnGuestHooks(spec.hooks, logger);
        Object.assign(state, { status: 'created', carrier: spawned.id });
        delete state.creator;
        // Under the container's lock: a delete --force racing this create sees either none of it or all.
        await store.withLock(id, () => store.write(state));
        return spawned;
      } catch (err) {
        for (const step of undo.reverse()) {
          await step().catch((e: unknown) => logger.warn(`cleaning up after a failed create: ${messageOf(e)}`));
        }
        if (ownsSandboxDir) {
          await removeSandboxDir(store.root, sandboxId);
          lock.retire();
        } else if (membership.joins) await dropMember(store.root, sandboxId, id, logger);
        throw err;
      }
    });
    if (options.pidFile) await writePidFile(options.pidFile, carrier.id.pid);
    logger.info(`created container ${id} in sandbox ${sandboxId}`, { pid: carrier.id.pid, ...(bootMs ? { vmBootMs: bootMs, accelerator } : {}) });
    return { state, carrier, bootMs };
  } catch (err) {
    await store.remove(id);
    throw err;
  }

  /** The sandbox (booted, or the one joined), the container's files and the container in the guest, and its carrier. */
  async function createUnderLock(): Promise<SpawnedCarrier> {
    let record: SandboxRecord;
    if (membership.joins || accelerator === undefined) {
      record = await readSandboxRecord(store.root, sandboxId).catch((err: unknown) => {
        if (isKataError(err, 'NOT_FOUND')) throw new KataError('NOT_FOUND', `sandbox ${sandboxId} (annotation ${membership.namedBy}) does not exist`);
        throw err;
      });
    } else {
      if (await readSandboxRecord(store.root, sandboxId).then(() => true, () => false)) {
        throw new KataError('ALREADY_EXISTS', `sandbox ${sandboxId} already exists`);
      }
      ownsSandboxDir = true;
      const networkNs = spec.linux?.namespaces?.find((ns) => ns.type === 'network');
      const vmDir = sandboxDir(store.root, sandboxId);
      const vm = await bootSandboxVm({
        config, sandboxId, vmDir, accelerator, logger, log: ctx.log, startPod: ctx.startPod,
        network: {
          wantsNetns: networkNs !== undefined, ...(networkNs?.path ? { netnsPath: networkNs.path } : {}),
          model: config.runtime.internetworkingModel, disableNewNetns: config.runtime.disableNewNetns,
          ...(spec.hooks?.prestart?.length ? { prestart: { netnsName: ownedNetnsName(vmDir), run: runPrestart } } : {}),
        },
        ...(spec.linux?.cgroupsPath ? { cgroup: { path: spec.linux.cgroupsPath, cpu: spec.linux.resources?.cpu ?? {}, sandboxOnly: config.runtime.sandboxCgroupOnly } } : {}),
      });
      bootMs = vm.bootMs;
      undo.push(() => shutdownSandboxVm(vm, logger));
      record = {
        ...vm, schemaVersion: 1, root: store.root, containers: [],
        blockDeviceDriver: config.hypervisor.blockDeviceDriver, bridges: config.hypervisor.defaultBridges,
      };
      if (vm.network?.plan.endpoints.length) {
        const plan = vm.network.plan;
        logger.debug('the agent answers: UpdateInterface, UpdateRoutes', { interfaces: plan.endpoints.length, routes: plan.routes.length });
        await withSandboxAgent(record, (agent) => configureGuestNetwork(agent, plan));
      }
      logger.debug('CreateSandbox', { vmBootMs: bootMs });
      await withSandboxAgent(record, (agent) => agent.createSandbox({ hostname: spec.hostname ?? '', storages: [sharedStorage(config.hypervisor)], sandbox_id: sandboxId, kernel_modules: kernelModules(config) }));
    }
    if ((membership.joins || accelerator === undefined) && spec.hooks?.prestart?.length) await runPrestart(await sandboxNetns(record));
    // The VM grows by what this container asks for (Kata 1.x: vCPUs and memory hot-plugged before CreateContainer).
    state.needs = containerNeeds(spec.linux?.resources);
    const grown = await growSandbox(record, [...(await memberNeeds(store, record, id)), state.needs], logger);
    if (grown) {
      record.resources = grown;
      // Written at once when the sandbox already has one: what was plugged stays plugged even if this create fails.
      if (!ownsSandboxDir) await writeSandboxRecord(record);
    }
    logger.debug('sharing the container files');
    const mounter = shareMounter(record.vm);
    const shared = await shareContainerFiles(record.vm.layout, mounter, id, bundle.rootfs, spec.mounts ?? [], bundle.dir, logger);
    state.hostMounts = shared.hostMounts;
    undo.push(() => unshareContainerFiles(record.vm.layout, mounter, id, shared.hostMounts));
    logger.debug('CreateContainer');
    await withSandboxAgent(record, async (agent) => {
      await agent.createContainer({ container_id: id, exec_id: id, storages: [], OCI: specToAgent(guestSpec, shared.guestRootfs, shared.mounts, { seccomp: !config.runtime.disableGuestSeccomp }) });
      undo.push(() => withSandboxAgent(record, (a) => a.removeContainer(id, 5)));
    });
    if (hostDisks.length) {
      // Kata 1.x: the host's block devices the spec names are hot-plugged, and the agent makes their guest nodes at the spec's paths.
      undo.push(() => detachContainerVolumes(record, state.volumes ?? [], logger));
      const used = await sandboxVolumes(ctx, record);
      const setVolumes = async (change: (volumes: VolumeRecord[]) => VolumeRecord[]): Promise<void> => {
        state.volumes = change(state.volumes ?? []);
        await store.withLock(id, () => store.write(state));
      };
      for (const disk of hostDisks) {
        logger.debug(`hot-plugging ${disk.hostPath} as ${disk.containerPath}`);
        await attachVolume(ctx, record, id, disk.host, disk.containerPath, [...used, ...(state.volumes ?? [])], setVolumes);
      }
    }
    logger.debug('starting the carrier');
    const spawned = await spawnCarrier({
      vmDir: record.vm.layout.dir, containerId: id, execId: id, consoleSocket: options.consoleSocket, tty: terminal,
      detached: !options.foreground, stdio: options.stdio, podCommand: podCommand(record.vm.layout.dir, ctx.log, config.agent.dialTimeoutSeconds * 1000), logFile: ctx.log.file, logFormat: ctx.log.format,
    });
    // Callers read the pid file's process's cgroup for stats and OOM: it is the container's, with its limits.
    const cgroupsPath = spec.linux?.cgroupsPath;
    const cgroup = cgroupsPath ? await placeContainerCarrier(cgroupsPath, spawned.id.pid, spec.linux?.resources ?? {}, logger) : undefined;
    if (cgroup) state.hostCgroup = cgroup;
    undo.push(async () => {
      await stopProcess(spawned.id);
      if (cgroup) await removeContainerCgroup(cgroup, logger);
    });
    state.vm = record.vm.qemu;
    record.containers = [...record.containers.filter((c) => c !== id), id];
    await writeSandboxRecord(record);
    return spawned;
  }
}

/**
 * runtime-spec's prestart hooks, as Kata 1.x runs them: before the VM (or the
 * container in it) exists, inside the sandbox's network namespace, each hook's
 * own pid in the state naming that namespace. Docker's network hook moves the
 * container's veth into the namespace of that pid; the VM then gets what it finds.
 */
function prestartRunner(spec: OciRuntimeSpec, state: RuntimeContainerState, logger: Logger): (netns: string | undefined) => Promise<void> {
  return (netns) => runHooks(spec.hooks, 'prestart', { ociVersion, id: state.id, status: 'creating', bundle: state.bundle, annotations: state.annotations }, logger, true, { ownPid: true, ...(netns ? { netns } : {}) });
}

/** The network namespace a joining container's hooks run in: the pod's (CNI's or kata-ts's own), QEMU's own empty one, or the host's. */
async function sandboxNetns(record: SandboxRecord): Promise<string | undefined> {
  if (record.network?.netns) return record.network.netns;
  if (record.network?.fresh && (await isSameProcessAlive(record.vm.qemu))) return `/proc/${record.vm.qemu.pid}/ns/net`;
  return undefined;
}

/** A failed join leaves the pod's record without it (under the sandbox lock, held); a failure here is said, as a ghost member would keep the VM up. */
async function dropMember(root: string, sandboxId: string, id: string, logger: Logger): Promise<void> {
  try {
    const record = await readSandboxRecord(root, sandboxId).catch((err: unknown) => {
      if (!isKataError(err, 'NOT_FOUND')) throw err;
      return undefined;
    });
    if (record?.containers.includes(id)) await writeSandboxRecord({ ...record, containers: record.containers.filter((c) => c !== id) });
  } catch (err) {
    logger.warn(`sandbox ${sandboxId} may still count container ${id}, which keeps its VM up until the pod is deleted: ${messageOf(err)}`);
  }
}

/** configuration.toml's kernel_modules entries ("name key=value ...") as Kata 1.x sends them. */
export function kernelModules(config: RuntimeConfig): Array<{ name: string; parameters: string[] }> {
  return config.agent.kernelModules.map((entry) => {
    const [name = '', ...parameters] = entry.trim().split(/\s+/);
    return { name, parameters };
  });
}

/** Written last, atomically: callers take its appearance to mean that create finished. */
export async function writePidFile(file: string, pid: number): Promise<void> {
  const target = path.resolve(file);
  try {
    await writeFileAtomic(target, String(pid), 0o644);
  } catch (err) {
    throw new KataError('IO', `cannot write pid file ${target}: ${messageOf(err)}`, { cause: err });
  }
}

/** What of the spec's seccomp profile does not reach the guest: said, never silent. */
function warnSeccomp(spec: OciRuntimeSpec, config: RuntimeConfig, logger: Logger): void {
  const seccomp = spec.linux?.seccomp;
  if (!seccomp) return;
  if (config.runtime.disableGuestSeccomp) {
    logger.warn('config.json has a seccomp profile, and disable_guest_seccomp = true leaves it out of the guest');
  } else if (seccomp.syscalls?.some((s) => s.errnoRet !== undefined)) {
    logger.warn('seccomp: errnoRet is not carried by the agent protocol; those syscalls fail with EPERM in the guest');
  }
}
