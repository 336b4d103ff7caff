import assert from 'node:assert/strict';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { parse } from 'smol-toml';
import { stateSchemaVersion } from '../../src/store/container-state.js';
import { identify } from '../../src/util/process-identity.js';
import { bundledConfigText, configText, repoRoot, tempDir, writeConfig } from '../helpers/fixtures.js';
import { kvmBootsGuest } from '../helpers/kvm-oracle.js';
import { runCli } from '../helpers/run-cli.js';

interface CheckJson {
  config: string;
  accelerator: 'kvm' | 'tcg' | null;
  decision: { accelerator: 'kvm' | 'tcg' | null; reason: string; kvm: { usable: boolean; source: string } };
  canRun: boolean;
  kvmUsable: boolean;
  vsockUsable: boolean;
  results: Array<{ id: string; status: string; detail: string }>;
}

/** The tests' own look at /dev/kvm: a character device this process may open read-write. */
function kvmNodeOpens(): boolean {
  try {
    if (!statSync('/dev/kvm').isCharacterDevice()) return false;
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

describe('kata-ts command line', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let goodConfig: string;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    goodConfig = await writeConfig(dir, configText());
  });
  after(() => cleanup());

  it('prints its version in runc\'s form with --version (as docker and go-runc parse it), and in Kata\'s with version', async () => {
    const version = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')).version as string;
    const commit = (await execa('git', ['-C', repoRoot, 'rev-parse', '--short=12', 'HEAD']).catch(() => ({ stdout: 'unknown' }))).stdout;
    for (const args of [['--version'], ['-v']]) {
      const r = await runCli(args);
      assert.equal(r.exitCode, 0);
      const lines = r.stdout.split('\n');
      assert.equal(lines[0], `kata-ts version ${version}`);
      assert.equal(lines[1], `commit: ${commit}`, 'the commit this build comes from');
      assert.equal(lines[2], 'spec: 1.0.2');
      // moby's parseRuntimeVersion takes any line holding "version" as the version line: only the first may.
      assert.deepEqual(lines.filter((l) => l.includes('version')), [lines[0]]);
    }
    const kata = await runCli(['version']);
    assert.match(kata.stdout, new RegExp(`kata-ts\\s+: ${version.replace(/\./g, '\\.')}`));
    assert.match(kata.stdout, /OCI specs: 1\.0\.2/);
  });

  it('features prints runtime-spec\'s features JSON: what reaches a container in a VM', async () => {
    const r = await runCli(['features']);
    assert.equal(r.exitCode, 0, r.stderr);
    const features = JSON.parse(r.stdout) as { ociVersionMax: string; hooks: string[]; linux: { capabilities: string[]; namespaces: string[]; seccomp: { enabled: boolean }; apparmor: { enabled: boolean } } };
    assert.equal(features.ociVersionMax, '1.0.2');
    assert.deepEqual(features.hooks, ['prestart', 'createRuntime', 'poststart', 'poststop'], 'createContainer and startContainer hooks are not run');
    assert.equal(features.linux.capabilities.length, 41);
    assert.ok(features.linux.capabilities.includes('CAP_CHECKPOINT_RESTORE'));
    assert.ok(features.linux.namespaces.includes('user'));
    assert.deepEqual([features.linux.seccomp.enabled, features.linux.apparmor.enabled], [true, false]);
  });

  it('an unknown command is a one-line error pointing at --help, and exit 1', async () => {
    const r = await runCli(['frobnicate']);
    assert.equal(r.exitCode, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, "kata-ts: unknown command 'frobnicate' (see kata-ts --help)");
  });

  it('a missing argument is a usage error', async () => {
    const r = await runCli(['state']);
    assert.equal(r.exitCode, 1);
    assert.equal(r.stderr, "kata-ts: missing required argument 'container-id' (see kata-ts --help)");
  });

  it('shows the configuration search order', async () => {
    const r = await runCli(['--kata-show-default-config-paths']);
    assert.equal(r.exitCode, 0);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      '/etc/kata-containers/configuration.toml',
      '/usr/share/defaults/kata-containers/configuration.toml',
      path.join(repoRoot, 'configuration.toml'),
    ]);
  });

  it('a malformed configuration is one line naming file:line:column, and exit 1', async () => {
    const bad = await writeConfig(dir, '[hypervisor.qemu]\nkernel = "/k"\ninitrd = \n', 'bad.toml');
    for (const flag of ['--kata-config', '--config']) {
      const r = await runCli([flag, bad, 'check']);
      assert.equal(r.exitCode, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^kata-ts: ${bad.replace(/\./g, '\\.')}:3:\\d+: `));
    }
    const typed = await writeConfig(dir, configText('default_vcpus = "two"'), 'typed.toml');
    const r = await runCli(['env'], { env: { KATA_CONF_FILE: typed } });
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /hypervisor\.qemu\.default_vcpus must be an integer from 1 to 255, got "two"/);
  });

  it('an unknown key is a warning on stderr, not an error', async () => {
    const odd = await writeConfig(dir, configText('enable_iothreads = true'), 'odd.toml');
    const r = await runCli(['--kata-config', odd, 'env', '--json']);
    assert.equal(r.exitCode, 0);
    assert.match(r.stderr, /warning: .*unknown key hypervisor\.qemu\.enable_iothreads is ignored/);
    JSON.parse(r.stdout);
  });

  it("check, env and the tests' own KVM boot agree on the accelerator create will use", { timeout: 120_000 }, async () => {
    // The real guest kernel: the probe boots it, so fixture files would prove nothing.
    const guest = path.join(repoRoot, 'guest');
    const realConfig = await writeConfig(dir, await bundledConfigText(), 'real.toml');
    const kvmWorks = await kvmBootsGuest('/usr/bin/qemu-system-x86_64', `${guest}/vmlinuz`, `${guest}/kata-ts-initrd.img`);
    const expected = kvmWorks ? 'kvm' : 'tcg';

    const r = await runCli(['--kata-config', realConfig, 'check', '--json']);
    const verdict = JSON.parse(r.stdout) as CheckJson;
    assert.equal(verdict.config, realConfig);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(verdict.canRun, true, 'QEMU with TCG and the guest image are enough to run');
    assert.equal(verdict.accelerator, expected, `the tests' own KVM boot says ${expected}; check said: ${verdict.decision.reason}`);
    assert.equal(verdict.kvmUsable, kvmWorks);
    assert.equal(verdict.decision.accelerator, verdict.accelerator);
    assert.equal(verdict.results.find((x) => x.id === 'kvm-usable')?.status, kvmWorks ? 'pass' : 'warn');
    // Independent truth for vsock: the device node exists or not.
    assert.equal(verdict.vsockUsable, existsSync('/dev/vhost-vsock'));
    if (!kvmWorks) assert.match(r.stderr, /KVM is not usable on this host/);

    const text = await runCli(['--kata-config', realConfig, 'check', '--verbose']);
    assert.equal(text.exitCode, 0);
    assert.match(text.stdout, /\[ok\] {3}QEMU runs a guest under TCG \(software emulation\) \(required\): guest firmware ran to completion/);
    assert.match(text.stdout, new RegExp(`^accelerator: ${expected} \\(`, 'm'));
    if (kvmNodeOpens()) {
      assert.match(text.stdout, /^KVM probe: (cached verdict, \/run\/kata-ts-probe\/kvm-\w+\.json|probed now)$/m, 'the evidence behind the verdict');
      assert.match(text.stdout, /^ {2}probed at \S+: reached \S+ in \d+ ms; (usable|not usable)/m);
    } else {
      // No /dev/kvm to open (a host variant of ours): nothing is booted, and check says so.
      assert.match(text.stdout, /^KVM probe: not probed$/m);
      assert.doesNotMatch(text.stdout, /probed at/);
      assert.match(verdict.decision.reason, /not probed: \/dev\/kvm (does not exist|is not a character device|cannot be opened read-write)/);
    }
    assert.match(text.stdout, new RegExp(`with ${kvmWorks ? 'KVM' : 'TCG'}`));

    const env = JSON.parse((await runCli(['--kata-config', realConfig, 'env', '--json'])).stdout) as { Hypervisor: { EffectiveAccelerator: string; AcceleratorReason: string }; Host: { KVMUsable: boolean } };
    assert.equal(env.Hypervisor.EffectiveAccelerator, expected);
    assert.equal(env.Hypervisor.AcceleratorReason, verdict.decision.reason);
    assert.equal(env.Host.KVMUsable, kvmWorks);

    const forced = await writeConfig(dir, await bundledConfigText({ accelerator: '"kvm"' }), 'forced.toml');
    const forcedCheck = await runCli(['--kata-config', forced, 'check', '--json']);
    assert.equal(forcedCheck.exitCode, kvmWorks ? 0 : 1);
    assert.equal((JSON.parse(forcedCheck.stdout) as CheckJson).accelerator, kvmWorks ? 'kvm' : null);
  });

  it('check fails when use_vsock = true and the host has no vhost-vsock', async () => {
    const vsockConfig = await writeConfig(dir, configText('use_vsock = true\naccelerator = "tcg"'), 'vsock.toml');
    const r = await runCli(['--kata-config', vsockConfig, 'kata-check', '--json']);
    const verdict = JSON.parse(r.stdout) as CheckJson;
    const hasVsock = existsSync('/dev/vhost-vsock');
    assert.equal(verdict.results.find((x) => x.id === 'vhost-vsock')?.status, hasVsock ? 'pass' : 'fail');
    assert.equal(r.exitCode, hasVsock ? 0 : 1);
  });

  it('env prints kata-env sections as TOML and as JSON', async () => {
    const r = await runCli(['--kata-config', goodConfig, 'kata-env']);
    assert.equal(r.exitCode, 0, r.stderr);
    const env = parse(r.stdout) as Record<string, Record<string, unknown>>;
    for (const section of ['Meta', 'Runtime', 'Hypervisor', 'Kernel', 'Initrd', 'Proxy', 'Shim', 'Agent', 'Factory', 'Host']) {
      assert.ok(env[section], `section ${section}`);
    }
    assert.deepEqual({ ...env.Factory }, { EnableTemplate: false, TemplatePath: '/run/kata-ts-template', VMCacheNumber: 0, Template: 'off: VMs boot' }, 'off without the key, as in Kata');
    const factoryEnv = async (qemu: string): Promise<unknown> => {
      const config = await writeConfig(dir, configText(qemu, '[factory]\nenable_template = true'), 'factory.toml');
      return (parse((await runCli(['--kata-config', config, 'env'])).stdout) as Record<string, Record<string, unknown>>).Factory?.Template;
    };
    assert.equal(await factoryEnv(''), 'VMs are restored from the template (pod network devices are hot-plugged after)');
    assert.match(String(await factoryEnv('shared_fs = "virtio-fs"')), /^VMs are restored from the template, each from its own copy of its RAM \(the virtio-fs device/);
    assert.equal(await factoryEnv('use_vsock = true'), "not used, VMs boot: use_vsock = true (a restored guest would keep the template's CID)");
    const { stdout: qemuVersion } = await execa('/usr/bin/qemu-system-x86_64', ['--version']);
    assert.ok(qemuVersion.includes(String(env.Hypervisor?.Version)));
    assert.equal((env.Runtime?.Config as Record<string, unknown>).Path, goodConfig);
    assert.equal(typeof env.Host?.VMContainerCapable, 'boolean');
    assert.equal(env.Host?.SupportVSocks, existsSync('/dev/vhost-vsock'));
    assert.ok(env.Host?.Distro && env.Host?.CPU);

    const json = await runCli(['--kata-config', goodConfig, 'env', '--json']);
    assert.deepEqual(Object.keys(JSON.parse(json.stdout)), Object.keys(env));
  });

  it('list and state read whatever the store holds', async () => {
    const root = path.join(dir, 'root');
    const me = await identify(process.pid);
    assert.ok(me);
    const put = async (id: string, carrier: { pid: number; startTime: number }) => {
      await mkdir(path.join(root, id), { recursive: true });
      await writeFile(path.join(root, id, 'state.json'), JSON.stringify({
        schemaVersion: stateSchemaVersion, id, bundle: `/bundles/${id}`, status: 'running',
        created: '2026-11-22T00:00:00.000Z', annotations: { a: 'b' }, sandboxId: id, carrier,
      }));
    };
    await put('alive', me);
    await put('gone', { pid: me.pid, startTime: me.startTime - 1 });

    const state = await runCli(['--root', root, 'state', 'alive']);
    assert.equal(state.exitCode, 0, state.stderr);
    const oci = JSON.parse(state.stdout);
    assert.deepEqual({ id: oci.id, status: oci.status, pid: oci.pid, bundle: oci.bundle, ociVersion: oci.ociVersion },
      { id: 'alive', status: 'running', pid: process.pid, bundle: '/bundles/alive', ociVersion: '1.0.2' });
    assert.deepEqual(oci.annotations, { a: 'b' });

    const gone = JSON.parse((await runCli(['--root', root, 'state', 'gone'])).stdout);
    assert.equal(gone.status, 'stopped');
    assert.equal(gone.pid, 0);

    const quiet = await runCli(['--root', root, 'list', '-q']);
    assert.deepEqual(quiet.stdout.trim().split('\n'), ['alive', 'gone']);
    const json = JSON.parse((await runCli(['--root', root, 'list', '--format', 'json'])).stdout) as Array<{ id: string; status: string }>;
    assert.deepEqual(json.map((c) => [c.id, c.status]), [['alive', 'running'], ['gone', 'stopped']]);
    const table = await runCli(['--root', root, 'list']);
    assert.match(table.stdout, /^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER/);
    assert.match(table.stdout, /alive\s+\d+\s+running\s+\/bundles\/alive/);

    const missing = await runCli(['--root', root, 'state', 'nope']);
    assert.equal(missing.exitCode, 1);
    assert.equal(missing.stderr, 'kata-ts: container nope does not exist');
    const badId = await runCli(['--root', root, 'state', '../etc']);
    assert.equal(badId.exitCode, 1);
    assert.match(badId.stderr, /^kata-ts: invalid container id "\.\.\/etc"/);
  });

  it('writes errors to --log in the requested format, never to stdout, and accepts runc flags', async () => {
    const log = path.join(dir, 'kata.log');
    const r = await runCli(['--root', dir, '--log', log, '--log-format', 'json', '--systemd-cgroup', '--rootless', 'false', 'state', 'ghost']);
    assert.equal(r.exitCode, 1);
    assert.equal(r.stdout, '');
    const entry = JSON.parse((await readFile(log, 'utf8')).trim().split('\n').pop() ?? '{}');
    assert.equal(entry.level, 'error');
    assert.equal(entry.msg, 'container ghost does not exist');
    assert.ok(entry.time);
  });
});
