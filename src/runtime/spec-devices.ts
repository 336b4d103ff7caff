import { readFile } from 'node:fs/promises';
import { KataError } from '../util/errors.js';
import type { OciRuntimeSpec } from './oci-spec-types.js';

/** A spec's linux.devices entry. */
export type SpecDevice = NonNullable<NonNullable<OciRuntimeSpec['linux']>['devices']>[number];

/**
 * Character devices the guest kernel has, with the same numbers and meaning as
 * on the host: a node of these in the container is the guest's own, and that is
 * what the caller means (`docker run --device /dev/net/tun`, `/dev/fuse`).
 */
const guestCharDevices: ReadonlyMap<string, string> = new Map([
  ['1:3', 'null'], ['1:5', 'zero'], ['1:7', 'full'], ['1:8', 'random'], ['1:9', 'urandom'],
  ['5:0', 'tty'], ['5:2', 'ptmx'], ['10:200', 'net/tun'], ['10:229', 'fuse'],
]);

/** A host block device the spec names by number, to be hot-plugged into the VM (Kata 1.x). */
export interface SpecBlockDevice {
  /** The host's node (/dev/<name> of /sys/dev/block/M:m). */
  hostPath: string;
  /** Where the container sees it. */
  containerPath: string;
}

/**
 * linux.devices as a VM can honour them: block devices are the host's, found by
 * number and hot-plugged (they leave the list crun gets); character devices the
 * guest has stay, for crun to make; any other is refused with one line, since in
 * the VM its numbers would mean another device or none.
 */
export async function splitSpecDevices(spec: OciRuntimeSpec): Promise<{ guestDevices: SpecDevice[]; blockDevices: SpecBlockDevice[] }> {
  const guestDevices: SpecDevice[] = [];
  const blockDevices: SpecBlockDevice[] = [];
  for (const device of spec.linux?.devices ?? []) {
    const number = `${device.major}:${device.minor}`;
    if (device.type === 'b') {
      const hostName = await hostBlockDeviceName(number);
      if (!hostName) throw new KataError('USAGE', `linux.devices: ${device.path} is block device ${number}, which this host does not have`);
      blockDevices.push({ hostPath: `/dev/${hostName}`, containerPath: device.path });
    } else if (device.type === 'p' || guestCharDevices.has(number)) {
      guestDevices.push(device);
    } else {
      throw new KataError('USAGE', `linux.devices: ${device.path} (character device ${number}) cannot be passed to a VM, whose kernel has no such device; kata-ts passes host block devices and the guest's own ${[...guestCharDevices.values()].map((n) => `/dev/${n}`).join(', ')}`);
    }
  }
  return { guestDevices, blockDevices };
}

/** The kernel's name of a host block device by number (DEVNAME in its uevent), or undefined. */
async function hostBlockDeviceName(number: string): Promise<string | undefined> {
  const uevent = await readFile(`/sys/dev/block/${number}/uevent`, 'utf8').catch(() => '');
  const name = /^DEVNAME=(.+)$/m.exec(uevent)?.[1];
  return name && !name.includes('..') ? name : undefined;
}
