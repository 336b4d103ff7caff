import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readNetworkFile } from '../runtime/vm-file.js';
import { kataTsArgv } from '../runtime/kata-ts-argv.js';
import type { RuntimeContext } from '../runtime/runtime-context.js';
import { messageOf } from '../util/errors.js';
import { netnsExecBinaryPath } from '../util/package-root.js';
import type { Logger } from '../util/logger.js';

/** How long the namespace must be quiet before a sync: docker adds the link, then its address, then routes. */
const settleMs = 1000;

/**
 * Kata 1.x's netmon, for a sandbox whose namespace kata-ts made (docker's):
 * `ip monitor` in that namespace wakes it (no polling), and once the namespace
 * has settled it runs `kata-ts kata-network sync-ifaces`, which hot-plugs the
 * links docker connected since and unplugs the ones it disconnected.
 */
export async function watchPodNetns(vmDir: string, sandboxId: string, log: Partial<RuntimeContext['log']>, logger: Logger): Promise<{ stop: () => void } | undefined> {
  const network = await readNetworkFile(vmDir).catch(() => undefined);
  if (!network?.ownedNetns || !network.netns) return undefined;
  // Dies with this process, even one killed with -9: it would otherwise keep the namespace alive.
  const monitor: ChildProcess = spawn(netnsExecBinaryPath, ['--die-with-parent', network.netns, '/usr/bin/ip', 'ip', '-o', 'monitor', 'link', 'address'], { stdio: ['ignore', 'pipe', 'ignore'] });
  monitor.once('error', (err) => logger.warn(`netmon: cannot watch ${network.netns}: ${err.message}`));
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  let stopped = false;
  const sync = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const { root } = JSON.parse(await readFile(path.join(vmDir, 'sandbox.json'), 'utf8')) as { root: string };
      const [script = '', ...args] = kataTsArgv(log, ['--root', root, 'kata-network', 'sync-ifaces', sandboxId]);
      const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      logger.debug(`netmon: sync-ifaces exited with ${code}: ${output.trim()}`);
    } catch (err) {
      logger.debug(`netmon: ${messageOf(err)}`);
    } finally {
      running = false;
      if (again && !stopped) {
        again = false;
        void sync();
      }
    }
  };
  monitor.stdout?.on('data', () => {
    clearTimeout(timer);
    timer = setTimeout(() => void sync(), settleMs);
  });
  logger.debug(`netmon: watching ${network.netns} (pid ${monitor.pid})`);
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      if (monitor.exitCode === null && monitor.signalCode === null) monitor.kill('SIGKILL');
    },
  };
}
