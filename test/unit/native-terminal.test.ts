import assert from 'node:assert/strict';
import { closeSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadNativeAddon } from '../../src/util/native-addon.js';
import { tempDir } from '../helpers/fixtures.js';

describe('native addon: terminals and console sockets', () => {
  const native = loadNativeAddon();

  it('opens a pty pair whose window size can be set and read back', () => {
    const pty = native.openPty();
    try {
      assert.match(pty.name, /^\/dev\/pts\/\d+$/);
      native.setWindowSize(pty.master, 33, 101);
      assert.deepEqual(native.getWindowSize(pty.slave), { rows: 33, columns: 101 });
      writeSync(pty.master, 'x\n');
      const buffer = Buffer.alloc(16);
      const n = readSync(pty.slave, buffer);
      assert.equal(buffer.subarray(0, n).toString(), 'x\n');
    } finally {
      closeSync(pty.master);
      closeSync(pty.slave);
    }
  });

  it('passes a pty master over a console socket with SCM_RIGHTS', async () => {
    const { dir, cleanup } = await tempDir('kata-ts-console-');
    const socketPath = path.join(dir, 'console.sock');
    const listenFd = native.listenUnix(socketPath);
    const pty = native.openPty();
    try {
      const received = native.receiveFd(listenFd, 5000);
      native.sendFd(socketPath, pty.master, pty.name);
      const master = await received;
      assert.notEqual(master, pty.master, 'a new descriptor for the same pty');
      native.setWindowSize(master, 7, 9);
      assert.deepEqual(native.getWindowSize(pty.slave), { rows: 7, columns: 9 });
      closeSync(master);
    } finally {
      closeSync(pty.master);
      closeSync(pty.slave);
      closeSync(listenFd);
      await cleanup();
    }
  });

  it('gives up waiting for a console connection after the timeout', async () => {
    const { dir, cleanup } = await tempDir('kata-ts-console-');
    const listenFd = native.listenUnix(path.join(dir, 'c.sock'));
    await assert.rejects(native.receiveFd(listenFd, 50), /timed out/i);
    closeSync(listenFd);
    await cleanup();
  });

  it('rejects a console socket path nobody listens on', () => {
    assert.throws(() => native.sendFd('/nonexistent/console.sock', 0, ''), /ENOENT|No such file/);
  });
});
