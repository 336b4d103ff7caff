import { mkdir, readFile, stat } from 'node:fs/promises';
import { preparePrivateDir } from '../util/private-dir.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { podAgent, podHypervisor, type SandboxAgent } from '../pod/pod-agent.js';
import { readPodIdentity } from '../pod/pod-layout.js';
import type { RuntimeConfig } from '../config/runtime-config.js';
import { randomBytes, randomInt } from 'node:crypto';
import { hotplugMemoryMiB, maxVcpus, nicSlot, sharedFsHotplugged, type VmSpec } from '../hypervisor/qemu-args.js';
import { copyTemplateMemory } from '../hypervisor/clone-memory.js';
import { plugVirtioFs } from '../hypervisor/virtio-fs-hotplug.js';
import { startVm, stopVm, vmIsRunning, type VmHandle } from '../hypervisor/qemu-vm.js';
import { restoreVmState } from '../hypervisor/vm-state.js';
import { ensureTemplate, templateFits, withTemplate, type VmTemplate } from './vm-factory.js';
import { vmLayout } from '../hypervisor/vm-layout.js';
import { KataError, messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { isSameProcessAlive, type ProcessIdentity } from '../util/process-identity.js';
import { spawnPod } from './pod-spawn.js';
import type { PodStarter, RuntimeContext } from './runtime-context.js';
import { stopProcess } from './stop-process.js';
import { setupPodNetwork, teardownPodNetwork, type PodNetwork, type PodNetworkRequest } from '../network/pod-network.js';
import type { VmNetwork } from '../hypervisor/qemu-args.js';
import { placeSandboxInCgroup, removeCgroupDirs, type HostCgroup, type SandboxCpuLimits } from '../cgroups/host-cgroups.js';
import { writeNetworkFile, writeVmFile } from './vm-file.js';

/** A booted sandbox VM with a live agent: everything needed to reach and stop it. */
export interface SandboxVm {
  sandboxId: string;
  vm: VmHandle;
  /** The sandbox's pod process, as first started (it may have been started again since). */
  pod?: ProcessIdentity;
  agentUrl: string;
  accelerator: 'kvm' | 'tcg';
  /** Milliseconds from QEMU start to the agent's first Health.Check answer. */
  bootMs: number;
  /** The host side of the pod's network (taps and filters in the caller's namespace). */
  network?: PodNetwork;
  /** The host cgroup placement made from the spec's cgroupsPath (sandbox_cgroup_only decides what goes there). */
  hostCgroup?: HostCgroup;
  /** What the VM has now and may grow to by hot-plug (sandbox-resources.ts). */
  resources: VmResources;
}

/** The VM's vCPUs and memory, as booted and hot-plugged since. */
export interface VmResources {
  /** As booted: default_vcpus and default_memory, which containers' needs add to. */
  baseVcpus: number;
  baseMemoryMiB: number;
  vcpus: number;
  maxVcpus: number;
  memoryMiB: number;
  maxMemoryMiB: number;
  /** DIMMs plugged so far, and how many memory_slots allow. */
  dimms: number;
  memorySlots: number;
}

export interface BootOptions {
  config: RuntimeConfig;
  sandboxId: string;
  vmDir: string;
  /** Decided once by the caller (sandboxAccelerator), before anything was created. */
  accelerator: 'kvm' | 'tcg';
  logger: Logger;
  /** Where the pod process logs (the calling command's --log). */
  log?: Partial<RuntimeContext['log']>;
  /** How the pod process starts (RuntimeContext.startPod); a `kata-ts pod` process by default. */
  startPod?: PodStarter;
  /** The spec's network namespace; without it the VM has no network device. */
  network?: PodNetworkRequest;
  /** The spec's cgroupsPath and the sandbox container's CPU limits; sandboxOnly is sandbox_cgroup_only. */
  cgroup?: { path: string; cpu: SandboxCpuLimits; sandboxOnly: boolean };
}

/**
 * Boots QEMU, starts the sandbox's pod process, and waits until the agent
 * answers. Any failure stops what was started: no QEMU, pod process or dir remains.
 */
export async function bootSandboxVm(options: BootOptions): Promise<SandboxVm> {
  const { config, sandboxId, logger } = options;
  const h = config.hypervisor;
  if (h.useVsock && !(await stat('/dev/vhost-vsock').then(() => true, () => false))) {
    throw new KataError('HOST_UNSUPPORTED', 'use_vsock = true but this host has no /dev/vhost-vsock (modprobe vhost_vsock, or set use_vsock = false)');
  }
  const { accelerator } = options;
  const imageBytes = h.image ? await imageSize(h.image) : undefined;
  const layout = vmLayout(options.vmDir);
  await mkdir(layout.dir, { recursive: true, mode: 0o700 });
  const network = options.network ? await setupPodNetwork(options.network, logger, (planned) => writeNetworkFile(options.vmDir, planned)) : undefined;
  const vmNetwork = network && (await vmNetworkOf(network, config, accelerator));
  // A template has no network devices: a VM that would fit one but for its NICs is restored
  // without them, and they are hot-plugged once its agent answers (Kata's factory does the same).
  const nicsLater = vmNetwork && vmNetwork.nics.length > 0 && config.factory.enableTemplate
    && templateFits(vmSpecOf(config, { sandboxId, accelerator, layout, imageBytes, network: { ...vmNetwork, nics: [] } })) === undefined ? vmNetwork.nics : [];
  const bootNetwork = vmNetwork && nicsLater.length ? { ...vmNetwork, nics: [] } : vmNetwork;
  const started = Date.now();
  const host = hostOf(config);
  const resources: VmResources = {
    baseVcpus: h.defaultVcpus, baseMemoryMiB: h.defaultMemoryMiB, vcpus: h.defaultVcpus, maxVcpus: maxVcpus(host), memoryMiB: h.defaultMemoryMiB,
    maxMemoryMiB: h.defaultMemoryMiB + hotplugMemoryMiB(host), dimms: 0, memorySlots: h.memorySlots,
  };
  const specOf = (vsockCid: number | undefined): VmSpec => vmSpecOf(config, { sandboxId, accelerator, layout, vsockCid, imageBytes, network: bootNetwork });
  const dialTimeoutMs = config.agent.dialTimeoutSeconds * 1000;
  // QEMU starts, and a clone loads the template's state, while the template is held: a prune leaves it alone.
  const { vm: startedVm, restored } = await startFromTemplateOrBoot(config, specOf(undefined), logger, dialTimeoutMs, async (template) => {
    // A virtio-fs clone gets its share device after the restore, and maps its own copy of the template's RAM
    // shared (virtiofsd maps it too); QEMU keeps the copy open once started.
    const virtioFsClone = sharedFsHotplugged(h, template !== undefined);
    const copy = template && virtioFsClone ? await copyTemplateMemory(template.memoryFile) : undefined;
    const memoryFile = copy?.path ?? template?.memoryFile;
    const cloneSpec = (vsockCid: number | undefined): VmSpec => ({ ...specOf(vsockCid), ...(memoryFile ? { template: { memoryFile, role: 'restore' as const } } : {}) });
    const fresh = await startVmWithFreeCid(cloneSpec, logger).finally(() => copy?.close());
    if (template) {
      await (async () => {
        await restoreVmState(layout.qmpSocket, template.stateFile);
        if (virtioFsClone) await plugVirtioFs({ layout });
      })().catch(async (err: unknown) => {
        await stopVm(fresh, logger);
        throw err;
      });
    }
    return fresh;
  }).catch(async (err: unknown) => {
    if (network) await teardownPodNetwork(network, logger);
    throw err;
  });
  const vm: VmHandle = restored ? { ...startedVm, restored: true } : startedVm;
  let pod: ProcessIdentity | undefined;
  try {
    const channel = vm.agentChannel;
    const agentUrl = channel.kind === 'vsock' ? `vsock://${channel.cid}:${channel.port}` : `unix://${layout.proxySocket}`;
    // From here on the VM dir says which VM it holds: a pod process (this one or a later one) reads it.
    await writeVmFile({ sandboxId, vm, agentUrl });
    await (async () => {
      const vmGone = async (): Promise<string | undefined> => ((await vmIsRunning(vm)) ? undefined : 'the VM exited while booting');
      pod = options.startPod ? await options.startPod(layout.dir, dialTimeoutMs) : await spawnPod(layout.dir, options.log ?? {}, dialTimeoutMs, true, vmGone);
      const bootingPod = pod;
      const agent = podAgent(layout.dir, async () => {
        throw new KataError('VM', (await vmIsRunning(vm)) && (await isSameProcessAlive(bootingPod)) ? 'the pod process stopped answering' : 'the VM exited while booting');
      });
      await waitForAgent(agent, Math.max(1000, dialTimeoutMs - (Date.now() - started)), vmGone);
      // A clone woke with the template's clock and random state: both are the host's now (Kata's factory does the same).
      if (restored) {
        await agent.reseedRandomDev(randomBytes(512).toString('base64'));
        await agent.setGuestDateTime(Date.now());
      }
    })().catch(async (err: unknown) => {
      // The VM dir goes away with the VM, so the console log is kept for the user.
      const kept = await keepConsoleLog(layout.consoleLog, sandboxId);
      // A KVM the probe passed can still fail a real guest: say which accelerator ran, and the way out.
      const hint = accelerator === 'kvm' ? ' (accelerator kvm: if KVM guests do not boot on this host, set accelerator = "tcg")' : ' (accelerator tcg)';
      throw new KataError('TIMEOUT', `sandbox ${sandboxId}: ${messageOf(err)}${hint}; the guest console log is ${kept}`, { cause: err });
    });
    if (network && nicsLater.length) await plugNics(layout.dir, network, nicsLater, logger);
    const bootMs = Date.now() - started;
    let hostCgroup: HostCgroup | undefined;
    if (options.cgroup) {
      const vcpus = options.cgroup.sandboxOnly ? [] : await podHypervisor(layout.dir, async () => undefined).vcpuThreads().catch((err: unknown) => {
        logger.warn(`cannot read QEMU's vCPU threads for the host cgroup: ${messageOf(err)}`);
        return [];
      });
      const members = { processes: [vm.qemu.pid, ...(pod && pod.pid !== process.pid ? [pod.pid] : [])], vcpuThreads: vcpus };
      hostCgroup = await placeSandboxInCgroup(options.cgroup.path, sandboxId, options.cgroup.sandboxOnly, members, options.cgroup.cpu, logger);
    }
    return { sandboxId, vm, pod, agentUrl, accelerator, bootMs, resources, ...(network ? { network } : {}), ...(hostCgroup ? { hostCgroup } : {}) };
  } catch (err) {
    // Keep the console log's words in the error: the dir goes away with the VM.
    await shutdownSandboxVm({ vm, pod, network }, logger);
    throw err;
  }
}

/**
 * The pod's NICs into a VM that started without them (restored from a template),
 * at the slots a boot would have given them.
 */
async function plugNics(vmDir: string, network: PodNetwork, nics: VmNetwork['nics'], logger: Logger): Promise<void> {
  const hypervisor = podHypervisor(vmDir, async () => undefined);
  for (const [index, nic] of nics.entries()) {
    const slot = nicSlot(index);
    await hypervisor.attachNic({ tap: nic.tap, mac: nic.mac, ...slot, vhost: nic.vhost });
    const endpoint = network.plan.endpoints[index];
    // Its slot is recorded; it stays one of the sandbox's own interfaces, which del-iface leaves alone.
    if (endpoint) network.plan.endpoints[index] = { ...endpoint, slot };
  }
  logger.debug(`hot-plugged ${nics.length} network device(s) into the restored VM`);
}

/** What the host offers a VM: CPUs for default_maxvcpus = 0, memory for hot-plug. */
function hostOf(config: RuntimeConfig): Pick<VmSpec, 'hypervisor' | 'hostCpus' | 'hostMemoryMiB'> {
  return { hypervisor: config.hypervisor, hostCpus: os.cpus().length, hostMemoryMiB: Math.floor(os.totalmem() / (1024 * 1024)) };
}

/**
 * `factory init`: the template of a sandbox VM of this configuration (no pod
 * network), made now unless it exists.
 */
export async function initVmTemplate(config: RuntimeConfig, accelerator: 'kvm' | 'tcg', logger: Logger): Promise<VmTemplate> {
  const h = config.hypervisor;
  const spec = vmSpecOf(config, { sandboxId: 'template', accelerator, layout: vmLayout('/template'), imageBytes: h.image ? await imageSize(h.image) : undefined });
  const misfit = templateFits(spec);
  if (misfit) throw new KataError('CONFIG_INVALID', `this configuration's VMs boot without a template: ${misfit}`);
  return ensureTemplate(config.factory.templatePath, spec, logger, config.agent.dialTimeoutSeconds * 1000);
}

/** A sandbox VM's QEMU spec: create and `factory init` build it alike, so that their template keys agree. */
function vmSpecOf(config: RuntimeConfig, vm: Pick<VmSpec, 'sandboxId' | 'accelerator' | 'layout' | 'imageBytes' | 'vsockCid' | 'network'>): VmSpec {
  return { ...hostOf(config), ...vm, agentDebug: config.agent.enableDebug };
}

/**
 * Starts the VM from the template (made first if need be) when [factory]
 * enable_template is on and the VM fits one, else boots it: `start` gets the
 * template, held for as long as it runs, or undefined.
 */
async function startFromTemplateOrBoot(config: RuntimeConfig, spec: VmSpec, logger: Logger, readyTimeoutMs: number, start: (template: VmTemplate | undefined) => Promise<VmHandle>): Promise<{ vm: VmHandle; restored: boolean }> {
  const misfit = config.factory.enableTemplate ? templateFits(spec) : 'templates are off ([factory] enable_template = false)';
  if (misfit) {
    const vm = await start(undefined);
    logger.info(`VM booted, without a VM template: ${misfit}`);
    return { vm, restored: false };
  }
  const vm = await withTemplate(config.factory.templatePath, spec, logger, readyTimeoutMs, async (template) => {
    const restored = await start(template);
    logger.info(`VM restored from the VM template ${template.dir}`);
    return restored;
  });
  return { vm, restored: true };
}

/** Where failed boots' console logs are kept: root's own directory, never a predictable name in /tmp. */
export const keptConsoleLogDir = '/run/kata-ts-logs';

/** Copies the console log out of the VM dir (written atomically: a planted symlink is replaced, not followed). */
export async function keepConsoleLog(consoleLog: string, sandboxId: string, dir = keptConsoleLogDir): Promise<string> {
  const kept = path.join(dir, `${sandboxId}-console.log`);
  const untrusted = await preparePrivateDir(dir);
  if (untrusted) return `(not kept: ${untrusted})`;
  const text = await readFile(consoleLog, 'utf8').catch(() => '');
  await writeFileAtomic(kept, text, 0o600).catch(() => undefined);
  return kept;
}

/** Polls Health.Check (through the pod process) until the agent answers SERVING or the time is up. */
async function waitForAgent(agent: SandboxAgent, timeoutMs: number, fatal: () => Promise<string | undefined>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const reply = await agent.check(Math.max(100, Math.min(1000, deadline - Date.now())));
      if (reply.status === 'SERVING') return;
    } catch (err) {
      last = messageOf(err);
      const why = await fatal();
      if (why) throw new KataError('VM', why);
    }
    await sleep(100);
  }
  throw new KataError('TIMEOUT', `agent did not answer within ${timeoutMs} ms${last ? ` (last error: ${last})` : ''}`);
}

async function imageSize(image: string): Promise<number> {
  try {
    return (await stat(image)).size;
  } catch (err) {
    throw new KataError('CONFIG_INVALID', `guest image ${image} cannot be read: ${messageOf(err)} (run kata-ts image build)`, { cause: err });
  }
}

/** Guest CIDs 0-2 are reserved; a CID another VM holds makes QEMU fail, so another is tried. */
async function startVmWithFreeCid(spec: (cid: number | undefined) => VmSpec, logger: Logger): Promise<VmHandle> {
  const first = spec(undefined);
  if (!first.hypervisor.useVsock) return startVm(first, logger);
  for (let attempt = 1; ; attempt++) {
    const cid = 3 + randomInt(0x7fff_fff0);
    try {
      return await startVm(spec(cid), logger);
    } catch (err) {
      const inUse = /guest-cid|in use|EADDRINUSE/i.test(messageOf(err));
      if (!inUse || attempt >= 5) throw err;
      logger.debug(`guest CID ${cid} is taken; trying another`);
    }
  }
}

/**
 * Stops the VM (the pod process ends with it) and removes the VM dir; safe to
 * call on a dead VM. The pod process first recorded is stopped by pid too.
 * `quitGraceMs`: how long QEMU may take over QMP quit before it is killed;
 * `containerCgroupDirs`: the last container's host cgroup dirs, removed with the sandbox's.
 */
export async function shutdownSandboxVm(sandbox: Pick<SandboxVm, 'vm' | 'pod' | 'network' | 'hostCgroup'>, logger: Logger, quitGraceMs?: number, containerCgroupDirs: string[] = []): Promise<void> {
  const current = await readPodIdentity(sandbox.vm.layout.dir);
  await stopVm(sandbox.vm, logger, quitGraceMs);
  // A pod served inside this very process (the containerd shim) ends with the VM on its own.
  for (const pod of [sandbox.pod, current]) if (pod && pod.pid !== process.pid) await stopProcess(pod);
  // The taps go once QEMU has let go of them, and the host cgroup once it is empty.
  if (sandbox.network) await teardownPodNetwork(sandbox.network, logger);
  // With the last container's cgroup dirs, in one pass: each may be the other's parent.
  await removeCgroupDirs([...(sandbox.hostCgroup?.created ?? []), ...containerCgroupDirs], logger);
}

/** QEMU's side of the pod network: where it runs and one NIC per tap, vhost-net where it can work. */
async function vmNetworkOf(network: PodNetwork, config: RuntimeConfig, accelerator: 'kvm' | 'tcg'): Promise<VmNetwork> {
  const vhost = accelerator === 'kvm' && !config.hypervisor.disableVhostNet && (await stat('/dev/vhost-net').then(() => true, () => false));
  return {
    ...(network.netns ? { netns: network.netns } : {}),
    ...(network.fresh ? { fresh: true } : {}),
    nics: network.plan.endpoints.map((e) => ({ tap: e.tap, mac: e.interface.hwAddr, vhost })),
  };
}
