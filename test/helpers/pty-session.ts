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
