import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Loads a kernel module on demand (the guest has no udev to do it). A kernel
 * without loadable modules (the kata-ts kernel) has its drivers built in:
 * nothing to load.
 */
export function loadModule(name: string): Promise<void> {
  if (!existsSync('/proc/modules')) return Promise.resolve();
  return new Promise((resolve, reject) => {
    execFile('modprobe', [name], (err, _stdout, stderr) => (err ? reject(new Error(`modprobe ${name} failed: ${(stderr || err.message).trim()}`)) : resolve()));
  });
}
