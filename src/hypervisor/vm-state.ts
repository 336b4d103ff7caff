import { setTimeout as sleep } from 'node:timers/promises';
import { KataError } from '../util/errors.js';
import { QmpClient } from './qmp-client.js';

/** RAM that lives in a shared file (a template's) is left out of the saved state: the file is the RAM. */
const ignoreShared = { capabilities: [{ capability: 'x-ignore-shared', state: true }] };

/** QEMU 7.2 has no file: migration URI; exec: runs through /bin/sh, so the path is quoted. */
function execUri(command: string, file: string): string {
  if (file.includes("'")) throw new KataError('VM', `a VM state file path may not hold a quote: ${file}`);
  return `exec:${command} '${file}'`;
}

async function until<T>(what: string, timeoutMs: number, poll: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = await poll();
    if (done !== undefined) return done;
    if (Date.now() > deadline) throw new KataError('TIMEOUT', `${what} did not finish within ${timeoutMs} ms`);
    await sleep(20);
  }
}

interface MigrationStatus {
  status: string;
  'error-desc'?: string;
}

/**
 * Stops the VM and writes its device state to `stateFile`; its RAM, in the
 * template's memory file (share=on), is not copied.
 */
export async function saveVmState(qmpSocket: string, stateFile: string, timeoutMs = 60_000): Promise<void> {
  const qmp = await QmpClient.connect(qmpSocket);
  try {
    await qmp.execute('stop');
    await qmp.execute('migrate-set-capabilities', ignoreShared);
    await qmp.execute('migrate', { uri: execUri('cat >', stateFile) });
    await until('saving the VM state', timeoutMs, async () => {
      const s = await qmp.execute<MigrationStatus>('query-migrate');
      if (s.status === 'failed' || s.status === 'cancelled') throw new KataError('VM', `saving the VM state failed: ${s['error-desc'] ?? s.status}`);
      return s.status === 'completed' ? true : undefined;
    });
  } finally {
    qmp.close();
  }
}

/**
 * Loads `stateFile` into a QEMU started with -incoming defer (its RAM mapped
 * from the template's memory file) and lets the guest run on from where the
 * template stopped.
 */
export async function restoreVmState(qmpSocket: string, stateFile: string, timeoutMs = 30_000): Promise<void> {
  const qmp = await QmpClient.connect(qmpSocket);
  try {
    await qmp.execute('migrate-set-capabilities', ignoreShared);
    await qmp.execute('migrate-incoming', { uri: execUri('cat', stateFile) });
    const status = await until('loading the VM state', timeoutMs, async () => {
      const s = await qmp.execute<{ status: string }>('query-status');
      if (s.status === 'inmigrate') return undefined;
      if (s.status !== 'paused' && s.status !== 'running') throw new KataError('VM', `loading the VM state left QEMU ${s.status}`);
      return s.status;
    });
    // The template was saved stopped, so the clone waits paused for this.
    if (status === 'paused') await qmp.execute('cont');
  } finally {
    qmp.close();
  }
}
