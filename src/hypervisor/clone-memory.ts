import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { KataError, messageOf } from '../util/errors.js';
import { preparePrivateDir } from '../util/private-dir.js';
import { runCommand } from '../util/run-command.js';

/**
 * Where virtio-fs clones' copies of a template's RAM are made: tmpfs, so that
 * guest RAM is never written back to a disk, in root's own directory.
 */
export const cloneMemoryDir = '/dev/shm/kata-ts-ram';

/** A clone's copy, already unlinked: QEMU opens it by `path` while `close` has not been called. */
export interface CloneMemory {
  path: string;
  close: () => Promise<void>;
}

/**
 * Copies a template's memory file for one clone, holes kept (cp finds them):
 * only what the template's guest touched takes memory. A clone that shares
 * its RAM with a vhost-user daemon (virtiofsd) maps this copy shared, where
 * other clones map the template itself privately. The copy is unlinked at
 * once and reached through this process's fd: nothing is left behind however
 * this process or QEMU ends, and its pages go with the last user.
 */
export async function copyTemplateMemory(templateMemory: string, dir = cloneMemoryDir): Promise<CloneMemory> {
  const untrusted = await preparePrivateDir(dir);
  if (untrusted) throw new KataError('IO', `cannot copy the VM template's memory: ${untrusted}`);
  const copy = path.join(dir, randomBytes(12).toString('hex'));
  try {
    await runCommand('cp', ['--sparse=always', '--', templateMemory, copy], { timeoutMs: 60_000 });
    const file = await open(copy, 'r+');
    return { path: `/proc/${process.pid}/fd/${file.fd}`, close: () => file.close() };
  } catch (err) {
    throw new KataError('IO', `cannot copy the VM template's memory to ${dir}: ${messageOf(err)}`, { cause: err });
  } finally {
    await rm(copy, { force: true });
  }
}
