import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { startedMarkerPath } from '../pod/pod-layout.js';
import { faultPoint } from '../util/fault-point.js';
import type { SandboxAgent } from '../pod/pod-agent.js';
import { vmIsRunning } from '../hypervisor/qemu-vm.js';
import { vmLayout } from '../hypervisor/vm-layout.js';
import { shareMounter } from '../hypervisor/vm-mounts.js';
import { isKataError, KataError, messageOf } from '../util/errors.js';
import { isSameProcessAlive } from '../util/process-identity.js';
import { detachContainerVolumes } from './block-volumes.js';
import { loadContainer } from './container-record.js';
import { ociVersion } from './describe-container.js';
import { runHooks } from './oci-hooks.js';
import { unshareContainerFiles } from '../share/container-files.js';
import type { RuntimeContext } from './runtime-context.js';
import { withSandboxAgent } from './sandbox-agent.js';
import { readSandboxRecord, removeSandboxDir, sandboxDir, withSandboxLock, writeSandboxRecord, type SandboxRecord } from './sandbox-record.js';
import { memberNeeds, shrinkSandbox } from './sandbox-resources.js';
import { shutdownSandboxVm } from './sandbox-vm.js';
import { reapUnrecordedSandbox } from './unrecorded-sandbox.js';
import { removeContainerCgroup } from '../cgroups/container-cgroup.js';

export interface DeleteOptions {
  /**
   * The VM of a last container is stopped without a word to the guest: no pod
   * process is started and no RPC is made. containerd's cleanup after a dead
   * shim (the shim was the pod process) wants this: it kills `delete` after 5 s,
   * and a guest that hangs must not keep the VM alive.
   */
  vmGoesWithoutGuest?: boolean;
}

/**
 * delete: removes a stopped container (any container with force): its
 * process in the guest, its carrier, its shared files and its state. The VM
 * stops with its last container. A dead VM is cleaned up all the same.
 */
export async function deleteContainer(ctx: RuntimeContext, id: string, force: boolean, options: DeleteOptions = {}): Promise<void> {
  const { store, logger } = ctx;
  const { state: found } = await loadContainer(store, id);
  // Lock order: the sandbox's, then the container's; the status is read under both.
  let state = found;
  await withSandboxLock(store.root, found.sandboxId, (sandboxLock) => store.withLock(id, async () => {
    const loaded = await loadContainer(store, id);
    state = loaded.state;
    const status = loaded.status;
    if ((status === 'running' || status === 'paused') && !force) {
      throw new KataError('USAGE', `cannot delete container ${id}: it is ${status} (stop it first, or use --force)`);
    }
    const record = await readSandboxRecord(store.root, state.sandboxId).catch((err: unknown) => {
      if (isKataError(err, 'NOT_FOUND')) return undefined;
      throw err;
    });
    const vmAlive = record !== undefined && (await vmIsRunning(record.vm));
    const containers = record?.containers.filter((c) => c !== id) ?? [];
    const guestless = options.vmGoesWithoutGuest === true && containers.length === 0;
    if (record && vmAlive && !guestless) {
      await withSandboxAgent(record, (agent) => removeFromGuest(agent, id, status !== 'stopped', containers.length === 0, logger.warn.bind(logger)));
      await detachContainerVolumes(record, state.volumes ?? [], logger);
    }
    faultPoint('delete:after-guest');
    if (state.carrier) await stopCarrier(state.carrier);
    const layout = record?.vm.layout ?? vmLayout(sandboxDir(store.root, state.sandboxId));
    await unshareContainerFiles(layout, shareMounter(record?.vm), id, state.hostMounts);
    await rm(startedMarkerPath(layout.dir, id), { force: true });
    if (record) {
      if (containers.length === 0) {
        await destroySandbox(record, vmAlive, guestless, ctx, state.hostCgroup?.created ?? []);
        sandboxLock.retire();
      } else {
        if (state.hostCgroup) await removeContainerCgroup(state.hostCgroup, logger);
        // The VM gives back the vCPUs only this container needed (Kata 1.x does so at delete).
        const resources = vmAlive ? await shrinkSandbox(record, await memberNeeds(store, record, id), logger) : record.resources;
        await writeSandboxRecord({ ...record, containers, ...(resources ? { resources } : {}) });
      }
      faultPoint('delete:after-vm');
    } else {
      // No record: a create was killed while booting; whatever it started goes too.
      await reapUnrecordedSandbox(sandboxDir(store.root, state.sandboxId), logger);
      await removeSandboxDir(store.root, state.sandboxId);
      if (state.hostCgroup) await removeContainerCgroup(state.hostCgroup, logger);
      sandboxLock.retire();
    }
    await store.remove(id);
  }));
  await runHooks(state.hooks, 'poststop', { ociVersion, id, status: 'stopped', bundle: state.bundle, annotations: state.annotations }, logger, false);
}

/**
 * A container the guest could not remove may still have processes there: its
 * record is kept (delete fails, and may be tried again) unless the VM goes
 * with it, which ends them all.
 */
async function removeFromGuest(agent: SandboxAgent, id: string, kill: boolean, vmGoes: boolean, warn: (msg: string) => void): Promise<void> {
  if (kill) await agent.signalProcess(id, '', 9).catch(() => undefined);
  const deadline = Date.now() + killedStopsWithinMs;
  for (;;) {
    try {
      await agent.removeContainer(id, 10);
      return;
    } catch (err) {
      if (/not found/i.test(messageOf(err))) return;
      // Kata 1.x's agent refuses a container whose init has not exited yet (libcontainer's
      // "container is not destroyed"); Kata's runtime waits for the killed init, so do we.
      if (kill && /not destroyed/i.test(messageOf(err)) && Date.now() < deadline) {
        await sleep(200);
        continue;
      }
      if (!vmGoes) throw new KataError('VM', `cannot delete container ${id}: the guest could not remove it, so it is kept: ${messageOf(err)}`);
      warn(`removing container ${id} from the guest: ${messageOf(err)} (its VM stops now)`);
      return;
    }
  }
}

/** How long a SIGKILLed container's init may take to exit before its removal counts as failed. */
const killedStopsWithinMs = 10_000;

/** The carrier ends on its own once its process is gone; one that does not is stopped by pid. */
async function stopCarrier(carrier: { pid: number; startTime: number }): Promise<void> {
  for (let i = 0; i < 40 && (await isSameProcessAlive(carrier)); i++) await sleep(50);
  // SIGKILL: a SIGTERM would be forwarded to a container process that no longer exists.
  if (await isSameProcessAlive(carrier)) process.kill(carrier.pid, 'SIGKILL');
}

async function destroySandbox(record: SandboxRecord, vmAlive: boolean, guestless: boolean, ctx: RuntimeContext, containerCgroupDirs: string[]): Promise<void> {
  if (vmAlive && !guestless) {
    await withSandboxAgent(record, (agent) => agent.destroySandbox()).catch((err: unknown) => ctx.logger.debug(`DestroySandbox: ${messageOf(err)}`));
  }
  // Without the guest's goodbye QEMU gets a short grace: a hung guest is killed in time.
  await shutdownSandboxVm(record, ctx.logger, guestless ? guestlessQuitGraceMs : undefined, containerCgroupDirs);
}

/** QMP quit's grace when the guest was not asked to stop first (DeleteOptions.vmGoesWithoutGuest). */
const guestlessQuitGraceMs = 500;
