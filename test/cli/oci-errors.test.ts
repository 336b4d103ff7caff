import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import { bundledConfigText, repoRoot, tempDir } from '../helpers/fixtures.js';
import { kvmBootsGuest } from '../helpers/kvm-oracle.js';
import { processesMatching } from '../helpers/leaks.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { kataTs } from '../helpers/oci-e2e.js';
import { runCli } from '../helpers/run-cli.js';

/** Bad input fails at once with one line, exit 1, and leaves no state, VM dir or process (no VM is booted). */
describe('OCI commands: bad bundle, bad config, bad id', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let kata: ReturnType<typeof kataTs>;
  let good: string;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-oci-errors-'));
    root = path.join(dir, 'root');
    kata = kataTs(root);
    good = await makeBundle(path.join(dir, 'good'), { args: ['true'] });
  });
  after(() => cleanup());

  async function assertFails(args: string[], pattern: RegExp): Promise<void> {
    const r = await kata(args);
    assert.equal(r.exitCode, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line: ${r.stderr}`);
    assert.match(lines[0] ?? '', pattern);
    assert.equal((await kata(['list', '-q'])).stdout, '', 'no state left');
  }

  it('rejects bad container ids before doing anything', async () => {
    await assertFails(['create', '../evil', '--bundle', good], /invalid container id "..\/evil"/);
    await assertFails(['create', 'a/b', '--bundle', good], /invalid container id/);
    await assertFails(['run', '', '--bundle', good], /container id must not be empty/);
  });

  it('names what is wrong with a bundle', async () => {
    await assertFails(['create', 'c1', '--bundle', path.join(dir, 'missing')], /bundle .*missing: config.json not found/);
    const broken = path.join(dir, 'broken');
    await mkdir(path.join(broken, 'rootfs'), { recursive: true });
    await writeFile(path.join(broken, 'config.json'), '{ "process": ');
    await assertFails(['create', 'c1', '--bundle', broken], /config.json is not valid JSON/);
    await writeFile(path.join(broken, 'config.json'), JSON.stringify({ root: { path: 'rootfs' }, process: { args: [] } }));
    await assertFails(['create', 'c1', '--bundle', broken], /config.json process has no args/);
    const withHooks = (hooks: unknown): string => JSON.stringify({ root: { path: 'rootfs' }, process: { args: ['true'] }, hooks });
    await writeFile(path.join(broken, 'config.json'), withHooks({ prestart: [{ path: 'relative/hook' }] }));
    await assertFails(['create', 'c1', '--bundle', broken], /a hooks.prestart entry has no absolute path/);
    await writeFile(path.join(broken, 'config.json'), withHooks({ poststop: [{ path: '/bin/true', timeout: -1 }] }));
    await assertFails(['create', 'c1', '--bundle', broken], /hooks.poststop \/bin\/true: timeout must be a positive integer/);
    await writeFile(path.join(broken, 'config.json'), withHooks({ createRuntime: {} }));
    await assertFails(['create', 'c1', '--bundle', broken], /hooks.createRuntime is not an array/);
    await writeFile(path.join(broken, 'config.json'), JSON.stringify({ root: { path: 'nowhere' }, process: { args: ['true'] } }));
    await assertFails(['create', 'c1', '--bundle', broken], /root.path .*nowhere is not a directory/);
    await writeFile(path.join(broken, 'config.json'), JSON.stringify({ root: { path: 'rootfs' }, process: { args: ['true'] }, mounts: [{ destination: '/x', type: 'bind', source: path.join(dir, 'no-such-source'), options: ['rbind'] }] }));
    await assertFails(['create', 'c1', '--bundle', broken], /mount source .*no-such-source \(for \/x\) does not exist/);
    assert.equal(existsSync(sandboxDir(root, 'c1')), false, 'no VM dir left');
  });

  it('refuses a malformed configuration file', async () => {
    const config = path.join(dir, 'bad.toml');
    await writeFile(config, '[hypervisor.qemu]\npath = "/usr/bin/qemu-system-x86_64"\ndefault_vcpus = "two"\n');
    const r = await runCli(['--root', root, '--kata-config', config, 'create', 'c2', '--bundle', good]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /default_vcpus/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.equal((await kata(['list', '-q'])).stdout, '');
  });

  it('answers commands on unknown containers with "does not exist"', async () => {
    for (const args of [['start', 'nope'], ['state', 'nope'], ['kill', 'nope'], ['delete', 'nope'], ['exec', 'nope', 'true'], ['ps', 'nope'], ['pause', 'nope'], ['resume', 'nope']]) {
      await assertFails(args, /container nope does not exist/);
    }
  });

  it('rejects bad flags: unknown signal, console socket without a terminal', async () => {
    await assertFails(['kill', 'nope', 'SIGNOPE'], /unknown signal "SIGNOPE"|does not exist/);
    await assertFails(['create', 'c3', '--bundle', good, '--console-socket', path.join(dir, 'x.sock')], /--console-socket was given but process.terminal is false/);
  });

  it('accelerator = "kvm" on a host where KVM does not boot the guest: create fails at once, saying why, and creates nothing', { timeout: 120_000 }, async (t) => {
    const guest = path.join(repoRoot, 'guest');
    if (await kvmBootsGuest('/usr/bin/qemu-system-x86_64', `${guest}/vmlinuz`, `${guest}/kata-ts-initrd.img`)) {
      t.skip('KVM boots the guest on this host: accelerator = "kvm" is no error here');
      return;
    }
    const config = path.join(dir, 'kvm.toml');
    await writeFile(config, await bundledConfigText({ accelerator: '"kvm"' }));
    const started = Date.now();
    const r = await runCli(['--root', root, '--kata-config', config, 'create', 'forced', '--bundle', good], { timeoutMs: 60_000 });
    assert.equal(r.exitCode, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^kata-ts: accelerator = "kvm" but KVM cannot run the guest on this host: .*\(set accelerator = "tcg" or "auto"\)$/);
    assert.ok(Date.now() - started < 30_000, 'decided by the (cached) probe, not by a boot timing out');
    assert.equal((await kata(['list', '-q'])).stdout, '', 'no state left');
    assert.equal(existsSync(sandboxDir(root, 'forced')), false, 'no VM dir');
    assert.deepEqual(await processesMatching(sandboxDir(root, 'forced')), [], 'no QEMU');
  });
});
