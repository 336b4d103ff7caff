import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { VmHandle } from '../hypervisor/qemu-vm.js';
import type { PodNetwork } from '../network/pod-network.js';
import { writeJsonAtomic } from '../store/atomic-file.js';
import { KataError, messageOf } from '../util/errors.js';

/** What a VM dir says about its VM from the moment QEMU runs: enough for a pod process to take it over. */
export interface VmFile {
  sandboxId: string;
  vm: VmHandle;
  agentUrl: string;
}

const vmFileName = 'vm.json';

export async function writeVmFile(file: VmFile): Promise<void> {
  await writeJsonAtomic(path.join(file.vm.layout.dir, vmFileName), file);
}

export async function readVmFile(vmDir: string): Promise<VmFile> {
  const file = path.join(vmDir, vmFileName);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as VmFile;
  } catch (err) {
    throw new KataError('NOT_FOUND', `no VM at ${vmDir} (${messageOf(err)})`, { cause: err });
  }
}

const networkFileName = 'network.json';

/** The pod network's host side, written before a tap exists: undone by whoever finds it (delete, after a killed create). */
export async function writeNetworkFile(vmDir: string, network: PodNetwork): Promise<void> {
  await writeJsonAtomic(path.join(vmDir, networkFileName), network);
}

export async function readNetworkFile(vmDir: string): Promise<PodNetwork | undefined> {
  return readFile(path.join(vmDir, networkFileName), 'utf8').then((t) => JSON.parse(t) as PodNetwork, () => undefined);
}
