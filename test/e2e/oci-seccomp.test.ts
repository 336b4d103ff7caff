import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { OciSeccompSpec } from '../../src/runtime/oci-spec-types.js';
import { bundledConfigText, tempDir } from '../helpers/fixtures.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { runCli } from '../helpers/run-cli.js';

/** A profile that allows everything but mkdir. */
const noMkdir: OciSeccompSpec = {
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64'],
  syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
};

async function bundleWithProfile(dir: string): Promise<string> {
  const bundle = await makeBundle(dir, { args: ['sh', '-c', 'mkdir /tmp/x 2>&1; echo status $?'] });
  const configFile = path.join(bundle, 'config.json');
  const spec = JSON.parse(await readFile(configFile, 'utf8')) as { linux: { seccomp?: OciSeccompSpec } };
  spec.linux.seccomp = noMkdir;
  await writeFile(configFile, JSON.stringify(spec));
  return bundle;
}

/** config.json's seccomp profile reaches crun in the guest, or is left out with a warning: never silently dropped. */
describe('seccomp', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('kata-ts-seccomp-')));
  after(() => cleanup());

  it('the profile applies in the guest: mkdir is denied, the rest runs; errnoRet is said to become EPERM', { timeout: 120_000 }, async () => {
    const bundle = await bundleWithProfile(path.join(dir, 'on'));
    const config = path.join(dir, 'default.toml');
    await writeFile(config, await bundledConfigText());
    const run = await runCli(['--root', path.join(dir, 'root'), '--kata-config', config, 'run', '--bundle', bundle, 'sc-on'], { timeoutMs: 120_000 });
    assert.equal(run.exitCode, 0, run.stderr);
    assert.match(run.stdout, /mkdir: can't create directory '\/tmp\/x': Operation not permitted\nstatus 1/);
    assert.match(run.stderr, /seccomp: errnoRet is not carried by the agent protocol; those syscalls fail with EPERM/);
  });

  it('disable_guest_seccomp = true leaves it out, and create says so', { timeout: 120_000 }, async () => {
    const bundle = await bundleWithProfile(path.join(dir, 'off'));
    const config = path.join(dir, 'off.toml');
    await writeFile(config, await bundledConfigText({ disable_guest_seccomp: 'true' }));
    const run = await runCli(['--root', path.join(dir, 'root'), '--kata-config', config, 'run', '--bundle', bundle, 'sc-off'], { timeoutMs: 120_000 });
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stdout, 'status 0');
    assert.match(run.stderr, /config.json has a seccomp profile, and disable_guest_seccomp = true leaves it out of the guest/);
  });
});
