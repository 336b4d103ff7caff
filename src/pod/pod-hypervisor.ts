import { attachBlockDevice, detachBlockDevice, type BlockAttachment, type BlockSlot } from '../hypervisor/block-devices.js';
import { plugMemory, plugVcpus, unplugVcpus, vcpuThreads } from '../hypervisor/cpu-memory-hotplug.js';
import { QmpClient } from '../hypervisor/qmp-client.js';
import { attachNic, detachNic, type NicAttachment } from '../hypervisor/network-devices.js';
import type { PodHypervisorMethod } from './pod-protocol.js';

/** The hot-plug work of the sandbox's QEMU, as commands ask it of the pod process. */
export interface SandboxHypervisor {
  attachBlockDevice(id: string, hostPath: string, isBlockDevice: boolean, slot: BlockSlot, readonly?: boolean): Promise<BlockAttachment>;
  detachBlockDevice(attachment: BlockAttachment): Promise<void>;
  /** Returns how many vCPUs went in (no more than the free slots). */
  plugVcpus(count: number): Promise<number>;
  /** Returns how many hot-plugged vCPUs went out (never the boot ones). */
  unplugVcpus(count: number): Promise<number>;
  /** A DIMM at an address aligned to alignMiB (the guest's memory block). */
  plugMemory(index: number, sizeMiB: number, alignMiB: number, sharedRam?: boolean): Promise<void>;
  vcpuThreads(): Promise<number[]>;
  attachNic(nic: NicAttachment): Promise<void>;
  detachNic(tap: string): Promise<void>;
}

/**
 * The pod process's side: every QMP command of the sandbox goes through here,
 * one at a time (QEMU serves one QMP client at a time, and two hot-plugs must
 * not interleave their blockdev-add and device_add).
 */
export class PodHypervisor implements SandboxHypervisor, Record<PodHypervisorMethod, (...args: never[]) => Promise<unknown>> {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly qmpSocket: string) {}

  attachBlockDevice(id: string, hostPath: string, isBlockDevice: boolean, slot: BlockSlot, readonly = false): Promise<BlockAttachment> {
    return this.withQmp((qmp) => attachBlockDevice(qmp, id, hostPath, isBlockDevice, slot, readonly));
  }

  detachBlockDevice(attachment: BlockAttachment): Promise<void> {
    return this.withQmp((qmp) => detachBlockDevice(qmp, attachment));
  }

  plugVcpus(count: number): Promise<number> {
    return this.withQmp((qmp) => plugVcpus(qmp, count));
  }

  unplugVcpus(count: number): Promise<number> {
    return this.withQmp((qmp) => unplugVcpus(qmp, count));
  }

  plugMemory(index: number, sizeMiB: number, alignMiB: number, sharedRam = false): Promise<void> {
    return this.withQmp((qmp) => plugMemory(qmp, index, sizeMiB, alignMiB, sharedRam));
  }

  vcpuThreads(): Promise<number[]> {
    return this.withQmp((qmp) => vcpuThreads(qmp));
  }

  attachNic(nic: NicAttachment): Promise<void> {
    return this.withQmp((qmp) => attachNic(qmp, nic));
  }

  detachNic(tap: string): Promise<void> {
    return this.withQmp((qmp) => detachNic(qmp, tap));
  }

  private withQmp<T>(fn: (qmp: QmpClient) => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const qmp = await QmpClient.connect(this.qmpSocket);
      try {
        return await fn(qmp);
      } finally {
        qmp.close();
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}
