import { killFromPidFile, stopVm } from '../hypervisor/qemu-vm.js';
import { vmLayout } from '../hypervisor/vm-layout.js';
import { stopVirtiofsd } from '../hypervisor/virtiofsd.js';
import { teardownPodNetwork } from '../network/pod-network.js';
import { readPodIdentity } from '../pod/pod-layout.js';
import type { Logger } from '../util/logger.js';
import { readNetworkFile, readVmFile } from './vm-file.js';
import { stopProcess } from './stop-process.js';

/**
 * A sandbox dir without sandbox.json: a create killed while it booted. What
 * it started is found from what it wrote first: QEMU by vm.json or, earlier,
 * by QEMU's own pid file; the pod process by pod.json; the taps by
 * network.json. All of it is stopped and undone (the dir itself is the caller's).
 */
export async function reapUnrecordedSandbox(dir: string, logger: Logger): Promise<void> {
  const layout = vmLayout(dir);
  const vmFile = await readVmFile(dir).catch(() => undefined);
  const pod = await readPodIdentity(dir);
  if (vmFile) await stopVm(vmFile.vm, logger, 1000);
  else if (await killFromPidFile(layout.pidFile)) logger.info(`stopped the QEMU of an interrupted create (${dir})`);
  // A clone's virtiofsd waits for the connection of a share device not plugged yet: QEMU's end does not end it.
  if (!vmFile) await stopVirtiofsd(layout);
  if (pod && pod.pid !== process.pid) await stopProcess(pod);
  const network = await readNetworkFile(dir);
  if (network) await teardownPodNetwork(network, logger);
}
