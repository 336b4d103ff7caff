import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitSpecDevices } from '../../src/runtime/spec-devices.js';
import type { OciRuntimeSpec } from '../../src/runtime/oci-spec-types.js';

const specWith = (devices: NonNullable<NonNullable<OciRuntimeSpec['linux']>['devices']>): OciRuntimeSpec => ({ ociVersion: '1.0.2', linux: { devices } }) as OciRuntimeSpec;

/** linux.devices as a VM can honour them (docker and podman --device). */
describe('splitSpecDevices', () => {
  it('keeps the guest\'s own character devices and fifos for crun', async () => {
    const devices = [
      { path: '/dev/net/tun', type: 'c', major: 10, minor: 200 },
      { path: '/dev/fuse', type: 'c', major: 10, minor: 229 },
      { path: '/dev/null2', type: 'c', major: 1, minor: 3 },
      { path: '/dev/myfifo', type: 'p', major: 0, minor: 0 },
    ];
    assert.deepEqual(await splitSpecDevices(specWith(devices)), { guestDevices: devices, blockDevices: [] });
  });

  it('refuses a host character device the guest has no counterpart of, naming it', async () => {
    await assert.rejects(splitSpecDevices(specWith([{ path: '/dev/kvm', type: 'c', major: 10, minor: 232 }])), /^KataError: linux\.devices: \/dev\/kvm \(character device 10:232\) cannot be passed to a VM/);
    await assert.rejects(splitSpecDevices(specWith([{ path: '/dev/mem', type: 'u', major: 1, minor: 1 }])), /\/dev\/mem \(character device 1:1\)/);
  });

  it('refuses a block device number this host does not have', async () => {
    await assert.rejects(splitSpecDevices(specWith([{ path: '/dev/xvdz', type: 'b', major: 4095, minor: 1048575 }])), /linux\.devices: \/dev\/xvdz is block device 4095:1048575, which this host does not have/);
  });

  it('finds a host block device by its number, to be hot-plugged at the spec\'s path', async (t) => {
    const { readdir, readFile } = await import('node:fs/promises');
    const numbers = await readdir('/sys/dev/block').catch(() => [] as string[]);
    const number = numbers[0];
    if (!number) return t.skip('this host has no block device');
    const name = /^DEVNAME=(.+)$/m.exec(await readFile(`/sys/dev/block/${number}/uevent`, 'utf8'))?.[1];
    const [major, minor] = number.split(':').map(Number);
    const split = await splitSpecDevices(specWith([{ path: '/dev/xvdc', type: 'b', major: major!, minor: minor! }]));
    assert.deepEqual(split, { guestDevices: [], blockDevices: [{ hostPath: `/dev/${name}`, containerPath: '/dev/xvdc' }] });
  });
});
