import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import { mountPointsUnder } from '../../src/util/host-mounts.js';
import { isSameProcessAlive, type ProcessIdentity } from '../../src/util/process-identity.js';
import { repoRoot } from './fixtures.js';
import { processesMatching } from './leaks.js';
import { runCli, type CliOptions, type CliResult } from './run-cli.js';

/** kata-ts with a private --root and the bundled configuration. */
export function kataTs(root: string): (args: string[], options?: CliOptions) => Promise<CliResult> {
  const config = path.join(repoRoot, 'configuration.toml');
  return (args, options = {}) => runCli(['--root', root, '--kata-config', config, ...args], { timeoutMs: 120_000, ...options });
}

export async function ociState(kata: ReturnType<typeof kataTs>, id: string): Promise<{ status: string; pid: number; annotations: Record<string, string> }> {
  const r = await kata(['state', id]);
  assert.equal(r.exitCode, 0, r.stderr);
  return JSON.parse(r.stdout) as { status: string; pid: number; annotations: Record<string, string> };
}

export async function waitForStatus(kata: ReturnType<typeof kataTs>, id: string, status: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = (await ociState(kata, id)).status;
    if (last === status) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`container ${id} stayed ${last}, expected ${status}`);
}

export interface SandboxLeftovers {
  dir: string;
  qemu?: ProcessIdentity;
  pod?: ProcessIdentity;
}

/** What a sandbox has running, from its record: to check later that it is all gone. */
export async function sandboxProcesses(root: string, sandboxId: string): Promise<SandboxLeftovers> {
  const dir = sandboxDir(root, sandboxId);
  const record = JSON.parse(await readFile(path.join(dir, 'sandbox.json'), 'utf8')) as { vm: { qemu: ProcessIdentity }; pod?: ProcessIdentity };
  return { dir, qemu: record.vm.qemu, pod: record.pod };
}

/** No QEMU, pod process, carrier, dir or mount of the sandbox remains. */
export async function assertSandboxGone(leftovers: SandboxLeftovers, carriers: ProcessIdentity[] = []): Promise<void> {
  if (leftovers.qemu) assert.equal(await isSameProcessAlive(leftovers.qemu), false, 'QEMU is gone');
  if (leftovers.pod) assert.equal(await isSameProcessAlive(leftovers.pod), false, 'the pod process is gone');
  for (const carrier of carriers) assert.equal(await isSameProcessAlive(carrier), false, `carrier ${carrier.pid} is gone`);
  assert.equal(existsSync(leftovers.dir), false, `${leftovers.dir} is removed`);
  assert.deepEqual(await mountPointsUnder(leftovers.dir), [], 'no mount remains');
  assert.deepEqual(await processesMatching(leftovers.dir), [], 'no process mentions the VM dir');
}
