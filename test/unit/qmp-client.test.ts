import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { QmpClient, QmpError } from '../../src/hypervisor/qmp-client.js';
import { PodHypervisor } from '../../src/pod/pod-hypervisor.js';
import { tempDir } from '../helpers/fixtures.js';

type Script = (command: { execute: string; arguments?: Record<string, unknown>; id?: string }, reply: (obj: unknown) => void) => void;

/** A scripted QMP peer: greets, then answers each command through `script`. */
async function fakeQmp(socketPath: string, script: Script, greet = true): Promise<{ server: net.Server; received: string[] }> {
  const received: string[] = [];
  const server = net.createServer((conn) => {
    const reply = (obj: unknown): void => void conn.write(JSON.stringify(obj) + '\r\n');
    if (greet) reply({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } });
    let buffer = '';
    conn.on('data', (chunk) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const command = JSON.parse(line) as { execute: string; id?: string };
        received.push(command.execute);
        if (command.execute === 'qmp_capabilities') reply({ return: {}, id: command.id });
        else script(command, reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { server, received };
}

describe('QMP client against a scripted peer', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir()));
  after(() => cleanup());

  it('negotiates capabilities, matches replies by id and runs commands one at a time', async () => {
    const sock = path.join(dir, 'a.sock');
    let inFlight = 0;
    let maxInFlight = 0;
    const { server, received } = await fakeQmp(sock, (cmd, reply) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      // Answer later, out of band events in between, to prove matching.
      setTimeout(() => {
        reply({ event: 'NOISE', data: {} });
        inFlight -= 1;
        reply({ return: { echo: cmd.execute, args: cmd.arguments ?? null }, id: cmd.id });
      }, 20);
    });
    const qmp = await QmpClient.connect(sock);
    assert.deepEqual(qmp.greeting?.version, { qemu: { major: 7, minor: 2, micro: 0 } });
    const results = await Promise.all([
      qmp.execute<{ echo: string }>('query-status'),
      qmp.execute<{ echo: string; args: unknown }>('device_add', { driver: 'virtio-blk-pci', id: 'd1' }),
      qmp.execute<{ echo: string }>('query-pci'),
    ]);
    assert.deepEqual(results.map((r) => r.echo), ['query-status', 'device_add', 'query-pci']);
    assert.deepEqual((results[1] as { args: unknown }).args, { driver: 'virtio-blk-pci', id: 'd1' });
    assert.equal(maxInFlight, 1, 'one command at a time');
    assert.deepEqual(received, ['qmp_capabilities', 'query-status', 'device_add', 'query-pci']);
    qmp.close();
    server.close();
  });

  it('turns error replies into QmpError with class and desc', async () => {
    const sock = path.join(dir, 'b.sock');
    const { server } = await fakeQmp(sock, (cmd, reply) => reply({ error: { class: 'GenericError', desc: `Duplicate ID 'd1' for device` }, id: cmd.id }));
    const qmp = await QmpClient.connect(sock);
    await assert.rejects(qmp.execute('device_add', { id: 'd1' }), (err: unknown) => {
      assert.ok(err instanceof QmpError);
      assert.equal(err.errorClass, 'GenericError');
      assert.equal(err.desc, "Duplicate ID 'd1' for device");
      assert.equal(err.code, 'QMP');
      return true;
    });
    qmp.close();
    server.close();
  });

  it('delivers events to listeners and to waitForEvent', async () => {
    const sock = path.join(dir, 'c.sock');
    const { server } = await fakeQmp(sock, (cmd, reply) => {
      reply({ return: {}, id: cmd.id });
      setTimeout(() => {
        reply({ event: 'DEVICE_DELETED', data: { device: 'other' } });
        reply({ event: 'DEVICE_DELETED', data: { device: 'blk0', path: '/machine/peripheral/blk0' } });
      }, 10);
    });
    const qmp = await QmpClient.connect(sock);
    const seen: string[] = [];
    qmp.on('event', (e: { event: string }) => seen.push(e.event));
    const deleted = qmp.waitForEvent('DEVICE_DELETED', (e) => e.data?.device === 'blk0', 2000);
    await qmp.execute('device_del', { id: 'blk0' });
    assert.equal((await deleted).data?.path, '/machine/peripheral/blk0');
    assert.deepEqual(seen, ['DEVICE_DELETED', 'DEVICE_DELETED']);
    await assert.rejects(qmp.waitForEvent('NEVER', () => true, 50), { code: 'TIMEOUT' });
    qmp.close();
    server.close();
  });

  it('times out a command with no reply, and then keeps working', async () => {
    const sock = path.join(dir, 'd.sock');
    const { server } = await fakeQmp(sock, (cmd, reply) => {
      if (cmd.execute !== 'hang') reply({ return: 'ok', id: cmd.id });
    });
    const qmp = await QmpClient.connect(sock);
    await assert.rejects(qmp.execute('hang', undefined, 100), { code: 'TIMEOUT', message: /QMP hang got no reply within 100 ms/ });
    assert.equal(await qmp.execute('query-status'), 'ok');
    qmp.close();
    server.close();
  });

  it('fails pending and queued commands when the peer goes away', async () => {
    const sock = path.join(dir, 'e.sock');
    const conns: net.Socket[] = [];
    const { server } = await fakeQmp(sock, () => conns.forEach((c) => c.destroy()));
    server.on('connection', (c) => conns.push(c));
    const qmp = await QmpClient.connect(sock);
    const first = qmp.execute('quit');
    const second = qmp.execute('query-status');
    await assert.rejects(first, { code: 'QMP' });
    await assert.rejects(second, { code: 'QMP' });
    server.close();
  });

  it('gives up on a peer that never greets, and on a missing socket', async () => {
    const sock = path.join(dir, 'f.sock');
    const { server } = await fakeQmp(sock, () => undefined, false);
    await assert.rejects(QmpClient.connect(sock, 100), { code: 'TIMEOUT', message: /no QMP greeting/ });
    server.close();
    await assert.rejects(QmpClient.connect(path.join(dir, 'missing.sock'), 100), { code: 'QMP', message: /cannot connect to QMP socket/ });
  });

  it('the pod process hot-plugs one disk at a time: concurrent requests never interleave, and a failure does not block the next', async () => {
    const sock = path.join(dir, 'g.sock');
    const order: string[] = [];
    const { server } = await fakeQmp(sock, (cmd, reply) => {
      const id = String((cmd.arguments as { id?: string; 'node-name'?: string } | undefined)?.id ?? (cmd.arguments as { 'node-name'?: string })['node-name']);
      order.push(`${cmd.execute} ${id}`);
      // The second disk's device_add fails: its block node is removed, and the third still goes through.
      const fail = cmd.execute === 'device_add' && id === 'b';
      setTimeout(() => reply(fail ? { error: { class: 'GenericError', desc: 'no slot' }, id: cmd.id } : { return: {}, id: cmd.id }), 15);
    });
    const hypervisor = new PodHypervisor(sock);
    const slot = { driver: 'virtio-blk' as const, bridge: 0, slot: 1 };
    const results = await Promise.allSettled(['a', 'b', 'c'].map((id) => hypervisor.attachBlockDevice(id, `/dev/loop-${id}`, true, slot)));
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.deepEqual(order, [
      'blockdev-add drive-a', 'device_add a',
      'blockdev-add drive-b', 'device_add b', 'blockdev-del drive-b',
      'blockdev-add drive-c', 'device_add c',
    ]);
    server.close();
  });
});
