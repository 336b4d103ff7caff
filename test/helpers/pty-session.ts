import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import path from 'node:path';
import tty from 'node:tty';
import { loadNativeAddon } from '../../src/util/native-addon.js';
import { repoRoot } from './fixtures.js';

/**
 * A command running on a real pty that the test drives from the master side,
 * as a terminal emulator would: type, read the screen, resize the window.
 */
export class PtySession {
  output = '';
  readonly exited: Promise<number>;
  private readonly child: ChildProcess;
  private readonly master: number;
  private readonly reader: tty.ReadStream;

  constructor(command: string, args: string[], size = { rows: 24, columns: 80 }, env: Record<string, string> = {}) {
    const native = loadNativeAddon();
    const pty = native.openPty();
    this.master = pty.master;
    native.setWindowSize(pty.master, size.rows, size.columns);
    const wrapper = path.join(repoRoot, 'test', 'helpers', 'with-controlling-tty.ts');
    this.child = spawn(process.execPath, ['--import', 'tsx', wrapper, command, ...args], {
      stdio: [pty.slave, pty.slave, pty.slave],
      detached: true,
      cwd: repoRoot,
      env: { ...process.env, ...env },
    });
    closeSync(pty.slave);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code ?? -1)));
    this.reader = new tty.ReadStream(pty.master);
    this.reader.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.reader.on('error', () => undefined); // EIO once the last slave closes
  }

  type(text: string): void {
    writeSync(this.master, text);
  }

  resize(rows: number, columns: number): void {
    loadNativeAddon().setWindowSize(this.master, rows, columns);
  }

  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.output.match(pattern);
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; output so far: ${JSON.stringify(this.output)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  close(): void {
    this.reader.destroy();
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * Runs `command` (which starts busybox `sh` in a container with a terminal) on a
 * 30x101 pty and checks what a user at that terminal sees: a tty, its size,
 * typed input answered, and `exit 9` becoming the command's exit status.
 */
export async function assertInteractiveShell(command: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  const session = new PtySession(command, args, { rows: 30, columns: 101 }, env);
  try {
    await session.waitFor(/\/ # /, 180_000);
    session.type('tty; stty size; echo answer-$((6*7))\r');
    await session.waitFor(/answer-42/);
    assert.match(session.output, /\/dev\/pts\/\d+/);
    assert.match(session.output, /30 101/);
    session.type('exit 9\r');
    assert.equal(await session.exited, 9);
  } finally {
    session.close();
  }
}
