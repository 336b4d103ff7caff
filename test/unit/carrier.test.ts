import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, readSync, writeSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeMessage, LineReader } from '../../src/pod/pod-protocol.js';
import { carrierPath } from '../../src/runtime/carrier-process.js';
import { loadNativeAddon } from '../../src/util/native-addon.js';
import { tempDir } from '../helpers/fixtures.js';

/** A scripted pod socket: takes attach messages with their fds, as the pod process does. */
interface Attached {
  socket: net.Socket;
  message: { type: string; container: string; exec: string; tty: boolean; pid: number };
  fds: number[];
  lines: unknown[];
}

function scriptedPod(socketPath: string): { server: net.Server; attaches: Attached[]; next(): Promise<Attached> } {
  const attaches: Attached[] = [];
  const waiters: Array<(a: Attached) => void> = [];
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
    void loadNativeAddon().receiveMessage(fd, 5000).then(({ data, fds }) => {
      const text = data.toString();
      const nl = text.indexOf('\n');
      const attached: Attached = { socket, message: JSON.parse(text.slice(0, nl)), fds, lines: [] };
      const reader = new LineReader();
      reader.hold(text.slice(nl + 1));
      reader.push('', (m) => attached.lines.push(m));
      socket.on('data', (chunk: Buffer) => reader.push(chunk, (m) => attached.lines.push(m)));
      socket.on('error', () => undefined);
      socket.resume();
      attaches.push(attached);
      waiters.shift()?.(attached);
    });
  });
  server.listen(socketPath);
  return {
    server,
    attaches,
    next: () => new Promise((resolve) => {
      const seen = attaches.length;
      const check = (): void => {
        if (attaches.length > seen) resolve(attaches[seen] as Attached);
        else waiters.push(resolve);
      };
      check();
    }),
  };
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('timed out');
    await sleep(20);
  }
}

describe('the carrier (native/carrier.c) against a scripted pod socket', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const children: ChildProcess[] = [];
  before(async () => ({ dir, cleanup } = await tempDir('kata-ts-carrier-')));
  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await cleanup();
  });

  const carrier = (socket: string, extra: string[] = [], podCommand: string[] = []): ChildProcess => {
    const child = spawn(carrierPath, ['--socket', socket, '--container', 'c1', '--exec', 'e1', '--ready-fd', '3', ...extra, '--', ...podCommand], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    children.push(child);
    return child;
  };

  it('passes its stdio, reports ready once attached, forwards signals, and exits with the status it is told', async () => {
    const socket = path.join(dir, 'pod1.sock');
    const pod = scriptedPod(socket);
    const child = carrier(socket);
    const attached = await pod.next();
    assert.deepEqual({ ...attached.message, pid: 0 }, { type: 'attach', container: 'c1', exec: 'e1', tty: false, pid: 0 });
    assert.equal(attached.message.pid, child.pid);
    assert.equal(attached.fds.length, 3);
    let ready = '';
    child.stdio[3]?.on('data', (c: Buffer) => (ready += c.toString()));
    attached.socket.write(encodeMessage({ type: 'attached' }));
    await until(() => ready === 'ready\n');

    // The pod writes the process's output into the passed stdout; the caller reads it from the carrier's.
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    writeSync(attached.fds[1] as number, 'hello from the process\n');
    await until(() => out === 'hello from the process\n');
    // And reads its input from the passed stdin.
    child.stdin?.write('typed');
    const buffer = Buffer.alloc(16);
    const n = readSync(attached.fds[0] as number, buffer);
    assert.equal(buffer.subarray(0, n).toString(), 'typed');

    child.kill('SIGTERM');
    await until(() => attached.lines.length === 1);
    child.kill('SIGUSR1');
    await until(() => attached.lines.length === 2);
    assert.deepEqual(attached.lines, [{ type: 'signal', signal: 15 }, { type: 'signal', signal: 10 }]);
    assert.equal(child.exitCode, null, 'signals are forwarded, not obeyed');

    attached.socket.write(encodeMessage({ type: 'exit', status: 137 }));
    const [code] = await once(child, 'exit');
    assert.equal(code, 137);
    for (const fd of attached.fds) closeSync(fd);
    pod.server.close();
  });

  for (const length of [230, 255, 1024]) {
    it(`attaches with ids of ${length} characters: the whole line, parsed as sent`, async () => {
      const socket = path.join(dir, `long-${length}.sock`);
      const pod = scriptedPod(socket);
      const id = `${'c'.repeat(length - 3)}+.-`;
      const execId = `${'e'.repeat(length - 1)}_`;
      const child = spawn(carrierPath, ['--socket', socket, '--container', id, '--exec', execId, '--ready-fd', '3', '--'], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
      children.push(child);
      const attached = await pod.next();
      assert.deepEqual([attached.message.container, attached.message.exec, attached.message.pid], [id, execId, child.pid]);
      assert.equal(attached.fds.length, 3);
      attached.socket.write(encodeMessage({ type: 'exit', status: 0 }));
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
      for (const fd of attached.fds) closeSync(fd);
      pod.server.close();
    });
  }

  it('SIGKILLed, it closes its connection (the pod kills the process)', async () => {
    const socket = path.join(dir, 'pod2.sock');
    const pod = scriptedPod(socket);
    const child = carrier(socket);
    const attached = await pod.next();
    attached.socket.write(encodeMessage({ type: 'attached' }));
    const closed = new Promise((resolve) => attached.socket.once('close', resolve));
    child.kill('SIGKILL');
    await closed;
    for (const fd of attached.fds) closeSync(fd);
    pod.server.close();
  });

  it('when the pod process goes away it starts it again with its command and attaches anew', async () => {
    const socket = path.join(dir, 'pod3.sock');
    const marker = path.join(dir, 'restarted');
    const restart = path.join(dir, 'restart-pod.sh');
    await writeFile(restart, `#!/bin/sh\necho restarted > ${marker}\n`);
    await chmod(restart, 0o755);
    const first = scriptedPod(socket);
    const child = carrier(socket, [], [restart]);
    const attached = await first.next();
    attached.socket.write(encodeMessage({ type: 'attached' }));
    // The pod dies: its socket is gone; the carrier runs the restart command, then finds a new pod.
    for (const fd of attached.fds) closeSync(fd);
    first.server.close();
    attached.socket.destroy();
    await until(() => existsSync(marker), 10_000);
    const second = scriptedPod(socket);
    const again = await second.next();
    assert.equal(again.message.pid, child.pid, 'the same carrier attaches again');
    again.socket.write(encodeMessage({ type: 'exit', status: 3 }));
    const [code] = await once(child, 'exit');
    assert.equal(code, 3);
    for (const fd of again.fds) closeSync(fd);
    second.server.close();
  });

  it('fails to start when no pod answers: reports on the ready fd and exits 255', async () => {
    const child = spawn(carrierPath, ['--socket', path.join(dir, 'nobody.sock'), '--container', 'c', '--exec', 'e', '--ready-fd', '3', '--attach-timeout', '1000', '--', '/bin/false'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
    children.push(child);
    let report = '';
    child.stdio[3]?.on('data', (c: Buffer) => (report += c.toString()));
    const [code] = await once(child, 'exit');
    assert.equal(code, 255);
    assert.match(report, /cannot reach the pod process/);
  });
});
