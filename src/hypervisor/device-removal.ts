import { KataError, messageOf } from '../util/errors.js';
import type { QmpClient } from './qmp-client.js';

/**
 * device_del of `id`, then the guest's release of it: DEVICE_DELETED is what
 * says the device is out (a disk the guest let go of, a vCPU it ejected). A
 * device_del error is thrown as QMP gave it; a guest that does not let go
 * within timeoutMs is a TIMEOUT naming the `kind` of device.
 */
export async function removeDevice(qmp: QmpClient, id: string, kind: string, timeoutMs: number): Promise<void> {
  // Listening first: the event may come before device_del's answer.
  const deleted = qmp.waitForEvent('DEVICE_DELETED', (e) => (e.data as { device?: string } | undefined)?.device === id, timeoutMs);
  deleted.catch(() => undefined);
  await qmp.execute('device_del', { id });
  await deleted.catch((err: unknown) => {
    throw new KataError('TIMEOUT', `the guest did not release ${kind} ${id}: ${messageOf(err)}`, { cause: err });
  });
}
