import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BlockDeviceDriver } from '../config/runtime-config.js';
import { writeJsonAtomic } from '../store/atomic-file.js';
import { withDirLock, type HeldLock, type LockOptions } from '../store/state-lock.js';
import { errnoCode, KataError, messageOf } from '../util/errors.js';
import { unmountAllUnder } from '../util/host-mounts.js';
import type { SandboxVm } from './sandbox-vm.js';

/**
 * VM dirs live apart from --root: QEMU's unix socket paths must stay under 108
 * bytes, and callers pass long roots and 64-character ids.
 */
export const vmRoot = '/run/kata-ts-vm';
const recordFile = 'sandbox.json';
const recordSchemaVersion = 1;

/** What <vm dir>/sandbox.json holds: the VM and the containers that live in it. */
export interface SandboxRecord extends Omit<SandboxVm, 'bootMs'> {
  schemaVersion: number;
  /** The --root whose containers use this sandbox. */
  root: string;
  /** Ids of the containers in the sandbox; the VM stops when the last one is deleted. */
  containers: string[];
  /** How the VM was booted for hot-plug: the disk driver and the number of pci-bridges. */
  blockDeviceDriver: BlockDeviceDriver;
  bridges: number;
}

/** The VM dir of a sandbox: short, and distinct per (root, sandbox id). */
export function sandboxDir(root: string, sandboxId: string): string {
  const hash = createHash('sha256').update(`${path.resolve(root)}\0${sandboxId}`).digest('hex').slice(0, 12);
  return path.join(vmRoot, `${sandboxId.slice(0, 12)}-${hash}`);
}

export async function readSandboxRecord(root: string, sandboxId: string): Promise<SandboxRecord> {
  const file = path.join(sandboxDir(root, sandboxId), recordFile);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new KataError('NOT_FOUND', `sandbox ${sandboxId} does not exist`);
    throw new KataError('IO', `cannot read ${file}: ${messageOf(err)}`, { cause: err });
  }
  try {
    const record = JSON.parse(text) as SandboxRecord;
    if (record.schemaVersion !== recordSchemaVersion || record.sandboxId !== sandboxId) throw new Error('unexpected content');
    return record;
  } catch (err) {
    throw new KataError('STATE_CORRUPT', `sandbox record ${file} is corrupt: ${messageOf(err)}`, { cause: err });
  }
}

export async function writeSandboxRecord(record: SandboxRecord): Promise<void> {
  await writeJsonAtomic(path.join(record.vm.layout.dir, recordFile), { ...record, schemaVersion: recordSchemaVersion });
}

/** Removes a sandbox dir that has no VM (a failed first create, a record lost): its mounts first, so rm never reaches a bind source. */
export async function removeSandboxDir(root: string, sandboxId: string): Promise<void> {
  const dir = sandboxDir(root, sandboxId);
  await unmountAllUnder(dir);
  await rm(dir, { recursive: true, force: true });
}

/**
 * Where sandbox locks live: a root-only directory that is never removed, apart
 * from the VM dirs, which go while their lock is held (a lock file removed with
 * its directory would let a waiter and a newcomer both in).
 */
export const sandboxLockDir = '/run/kata-ts-locks';

/**
 * The per-sandbox lock: held while a command changes the sandbox's VM or its
 * container list. Whoever removes the sandbox retires the lock (its file goes
 * as it is let go), so lock files do not pile up.
 */
export async function withSandboxLock<T>(root: string, sandboxId: string, fn: (lock: HeldLock) => Promise<T>, options?: LockOptions): Promise<T> {
  const dir = sandboxDir(root, sandboxId);
  await mkdir(sandboxLockDir, { recursive: true, mode: 0o700 });
  return withDirLock(dir, path.join(sandboxLockDir, `${path.basename(dir)}.lock`), fn, options);
}
