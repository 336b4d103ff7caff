import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { QmpClient, QmpError } from '../../src/hypervisor/qmp-client.js';
import { isSameProcessAlive, identify } from '../../src/util/process-identity.js';
import { tempDir } from '../helpers/fixtures.js';

describe('QMP client against real QEMU', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let qemuPid = 0;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    const qmpSocket = path.join(dir, 'qmp.sock');
    const pidFile = path.join(dir, 'qemu.pid');
    // A paused VM (-S) with a pci-bridge: enough to exercise real commands, errors and events.
    await execa('qemu-system-x86_64', [
      '-machine', 'pc,accel=tcg', '-m', '64', '-nodefaults', '-display', 'none', '-S', '-daemonize', '-pidfile', pidFile,
      '-qmp', `unix:${qmpSocket},server=on,wait=off`, '-device', 'pci-bridge,bus=pci.0,id=pci-bridge-0,chassis_nr=1,addr=2',
    ]);
    qemuPid = Number((await readFile(pidFile, 'utf8')).trim());
  });
  after(async () => {
    if (qemuPid && (await identify(qemuPid))) process.kill(qemuPid, 'SIGKILL');
    await cleanup();
  });

  it('queries, hot-adds a block device on the bridge, reports errors, and sees events', async () => {
    const qmp = await QmpClient.connect(path.join(dir, 'qmp.sock'));
    const version = await qmp.execute<{ qemu: { major: number } }>('query-version');
    assert.ok(version.qemu.major >= 5);
    assert.equal((await qmp.execute<{ status: string }>('query-status')).status, 'prelaunch');

    await assert.rejects(qmp.execute('no-such-command'), (err: unknown) => err instanceof QmpError && err.errorClass === 'CommandNotFound');

    await execa('qemu-img', ['create', '-f', 'raw', path.join(dir, 'disk.img'), '8M']);
    await qmp.execute('blockdev-add', { 'node-name': 'drive-d1', driver: 'raw', file: { driver: 'file', filename: path.join(dir, 'disk.img') } });
    await qmp.execute('device_add', { driver: 'virtio-blk-pci', id: 'd1', drive: 'drive-d1', bus: 'pci-bridge-0', addr: '0x1' });
    await assert.rejects(
      qmp.execute('device_add', { driver: 'virtio-blk-pci', id: 'd1', drive: 'drive-d1', bus: 'pci-bridge-0', addr: '0x2' }),
      (err: unknown) => err instanceof QmpError && err.errorClass === 'GenericError',
    );
    const peripherals = await qmp.execute<Array<{ name: string }>>('qom-list', { path: '/machine/peripheral' });
    assert.ok(peripherals.some((p) => p.name === 'd1'));
    assert.ok(peripherals.some((p) => p.name === 'pci-bridge-0'));
    const nodes = await qmp.execute<Array<{ 'node-name': string }>>('query-named-block-nodes');
    assert.ok(nodes.some((n) => n['node-name'] === 'drive-d1'));

    const resumed = qmp.waitForEvent('RESUME', () => true, 5000);
    await qmp.execute('cont');
    await resumed;

    const qemu = await identify(qemuPid);
    assert.ok(qemu && (await isSameProcessAlive(qemu)));
    const shutdown = qmp.waitForEvent('SHUTDOWN', () => true, 5000);
    await qmp.execute('quit');
    await shutdown;
    for (let i = 0; i < 50 && (await isSameProcessAlive(qemu)); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await isSameProcessAlive(qemu), false, 'QEMU exited after quit');
    qmp.close();
  });
});
