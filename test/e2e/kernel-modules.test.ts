import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { bundledConfigText, debianKernelEdits, tempDir, writeConfig } from '../helpers/fixtures.js';
import { kataTsProcesses, vmDirs } from '../helpers/leaks.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { runCli } from '../helpers/run-cli.js';

/** configuration.toml's kernel_modules reach the guest in CreateSandbox, as in Kata 1.x, and a module that cannot load fails create. */
describe('kernel_modules', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let vmDirsBefore: string[];
  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-modules-'));
    await buildImage();
    vmDirsBefore = await vmDirs();
  });
  after(() => cleanup());

  const run = async (name: string, edits: Record<string, string>, args: string[]): Promise<Awaited<ReturnType<typeof runCli>>> => {
    const config = await writeConfig(dir, await bundledConfigText(edits), `${name}.toml`);
    const bundle = await makeBundle(path.join(dir, name), { args });
    return runCli(['--root', path.join(dir, 'root'), '--kata-config', config, 'run', name, '--bundle', bundle], { timeoutMs: 120_000 });
  };

  it('the Debian kernel loads a listed module before the containers start', { timeout: 120_000 }, async () => {
    const r = await run('loaded', { ...debianKernelEdits, kernel_modules: '["vsock_loopback"]' }, ['sh', '-c', 'grep -c "^vsock_loopback " /proc/modules']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, '1');
  });

  it('a module the guest cannot load fails create with one line naming it, and leaves nothing', { timeout: 120_000 }, async () => {
    const missing = await run('missing', { ...debianKernelEdits, kernel_modules: '["kata_ts_no_such_module"]' }, ['true']);
    assert.equal(missing.exitCode, 1);
    assert.match(missing.stderr, /kernel module kata_ts_no_such_module could not be loaded/);
    assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
    const builtIn = await run('built-in', { kernel_modules: '["vsock_loopback"]' }, ['true']);
    assert.equal(builtIn.exitCode, 1);
    assert.match(builtIn.stderr, /kernel module vsock_loopback: this guest kernel has no loadable modules/);
    assert.deepEqual(await vmDirs(), vmDirsBefore);
    assert.deepEqual(await kataTsProcesses(), []);
  });
});
