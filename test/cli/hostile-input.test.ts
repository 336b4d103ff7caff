import assert from 'node:assert/strict';
import { readdir, readFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot, tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, vmDirs } from '../helpers/leaks.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { runCli } from '../helpers/run-cli.js';

/** config.json as the cases edit it: they put wrong types in on purpose, so no spec type can describe it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type LooseJson = Record<string, any>;

interface HostileCase {
  name: string;
  /** Sets up the input; returns kata-ts's arguments (after --root and --kata-config). */
  args: () => Promise<string[]>;
  /** A configuration file other than the bundled one. */
  config?: string;
  expect: RegExp;
}

/**
 * Hostile input: each case is refused with exit status 1 and one line on
 * stderr naming the problem, and changes nothing on the host: no state, no VM
 * dir, no process, no mount. None of them gets as far as booting a VM.
 */
describe('bad input: hostile config.json, configuration.toml, process.json, ids, flags, paths', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let good: string;
  let tty: string;
  const cases: HostileCase[] = [];
  const figures = { tried: 0, refused: 0 };

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-hostile-'));
    root = path.join(dir, 'root');
    good = await makeBundle(path.join(dir, 'good'), { args: ['true'] });
    tty = await makeBundle(path.join(dir, 'tty'), { args: ['sh'], terminal: true });
  });
  after(async () => {
    process.stderr.write(`# hostile inputs: ${figures.tried} tried, ${figures.refused} refused with one line and nothing changed\n`);
    await cleanup();
  });

  /** A bundle whose config.json is the good one with `edit` applied (or raw text). */
  const bundleWith = (name: string, edit: (spec: LooseJson) => unknown): (() => Promise<string[]>) => async () => {
    const bundle = path.join(dir, 'bundles', name);
    await mkdir(path.join(bundle, 'rootfs'), { recursive: true });
    const spec = JSON.parse(await readFile(path.join(good, 'config.json'), 'utf8')) as LooseJson;
    spec.root = { path: path.join(good, 'rootfs') };
    const edited = edit(spec);
    await writeFile(path.join(bundle, 'config.json'), typeof edited === 'string' ? edited : JSON.stringify(edited ?? spec));
    return ['create', name.replace(/[^\w-]/g, '-').slice(0, 60), '--bundle', bundle];
  };
  const spec = (name: string, expect: RegExp, edit: (s: LooseJson) => unknown): void => {
    cases.push({ name: `config.json: ${name}`, args: bundleWith(name, edit), expect });
  };
  const deep = (levels: number): unknown => {
    let v: unknown = 'x';
    for (let i = 0; i < levels; i++) v = { n: v };
    return v;
  };

  spec('args is a string', /process\.args must be an array/, (s) => void (s.process.args = 'sh'));
  spec('args holds a number', /process\.args\[1\] must be a string/, (s) => void (s.process.args = ['sh', 1]));
  spec('args with a NUL byte', /process\.args\[0\] contains a NUL byte/, (s) => void (s.process.args = ['sh\u0000-c']));
  spec('env is an object', /process\.env must be an array/, (s) => void (s.process.env = { PATH: '/bin' }));
  spec('env with a NUL byte', /contains a NUL byte/, (s) => void (s.process.env = ['A=b\u0000c']));
  spec('relative cwd', /process\.cwd must be an absolute path/, (s) => void (s.process.cwd = 'tmp'));
  spec('terminal is a string', /process\.terminal must be true or false/, (s) => void (s.process.terminal = 'yes'));
  spec('negative uid', /process\.user\.uid must be a non-negative integer/, (s) => void (s.process.user = { uid: -1, gid: 0 }));
  spec('uid as a string', /process\.user\.uid must be a non-negative integer/, (s) => void (s.process.user = { uid: '0', gid: 0 }));
  spec('fractional gid', /process\.user\.gid must be a non-negative integer/, (s) => void (s.process.user = { uid: 0, gid: 0.5 }));
  spec('additionalGids of strings', /additionalGids\[0\] must be a non-negative integer/, (s) => void (s.process.user = { uid: 0, gid: 0, additionalGids: ['wheel'] }));
  spec('capabilities as a string', /capabilities\.bounding must be an array/, (s) => void (s.process.capabilities = { bounding: 'CAP_SYS_ADMIN' }));
  spec('unknown capability', /process\.capabilities\.effective\[1\] "CAP_BOGUS" is not a known capability/, (s) => void (s.process.capabilities = { bounding: ['CAP_KILL'], effective: ['CAP_KILL', 'CAP_BOGUS'] }));
  spec('capability without its CAP_ prefix', /process\.capabilities\.bounding\[0\] "KILL" is not a known capability/, (s) => void (s.process.capabilities = { bounding: ['KILL'] }));
  spec('unknown rlimit type', /process\.rlimits\[0\]\.type "RLIMIT_BOGUS" is not a known rlimit type/, (s) => void (s.process.rlimits = [{ type: 'RLIMIT_BOGUS', hard: 1, soft: 1 }]));
  spec('rlimit soft above hard', /process\.rlimits\[0\]: soft 5000 is above hard 4000/, (s) => void (s.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 4000, soft: 5000 }]));
  spec('rlimit without numbers', /rlimits\[0\]\.hard must be a non-negative integer/, (s) => void (s.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 'lots', soft: 1 }]));
  spec('hostname is a number', /hostname must be a string/, (s) => void (s.hostname = 42));
  spec('mounts is an object', /mounts must be an array/, (s) => void (s.mounts = { '/x': '/y' }));
  spec('relative mount destination', /mounts\[0\]\.destination must be an absolute path/, (s) => void (s.mounts = [{ destination: 'etc', type: 'tmpfs', source: 'tmpfs' }]));
  spec('mount options as a string', /mounts\[0\]\.options must be an array/, (s) => void (s.mounts = [{ destination: '/x', type: 'tmpfs', source: 'tmpfs', options: 'ro' }]));
  spec('mount destination climbing out with ..', /mounts\[0\]\.destination must not contain "\.\."/, (s) => void (s.mounts = [{ destination: '/../../etc', type: 'bind', source: '/tmp', options: ['rbind'] }]));
  spec('mount destination with .. in the middle', /mounts\[0\]\.destination must not contain "\.\."/, (s) => void (s.mounts = [{ destination: '/proc/../../../root', type: 'tmpfs', source: 'tmpfs' }]));
  spec('mount destination with a NUL byte', /contains a NUL byte/, (s) => void (s.mounts = [{ destination: '/x\u0000/../../etc', type: 'tmpfs', source: 'tmpfs' }]));
  spec('annotation value not a string', /annotations\.a must be a string/, (s) => void (s.annotations = { a: 1 }));
  spec('unknown namespace type', /namespaces\[0\]\.type must be one of/, (s) => void (s.linux.namespaces = [{ type: 'bogus' }]));
  spec('relative namespace path', /namespaces\[0\]\.path must be an absolute path/, (s) => void (s.linux.namespaces = [{ type: 'network', path: 'netns/x' }]));
  spec('negative id mapping', /uidMappings\[0\]\.containerID must be a non-negative integer/, (s) => void (s.linux.uidMappings = [{ containerID: -1, hostID: 0, size: 1 }]));
  spec('sysctl value not a string', /sysctl\.net\.ipv4\.ip_forward must be a string/, (s) => void (s.linux.sysctl = { 'net.ipv4.ip_forward': 1 }));
  spec('memory limit as text', /resources\.memory\.limit must be an integer/, (s) => void (s.linux.resources = { memory: { limit: '1G' } }));
  spec('negative cpu shares', /resources\.cpu\.shares must be a non-negative integer/, (s) => void (s.linux.resources = { cpu: { shares: -5 } }));
  spec('seccomp as a string', /linux\.seccomp must be an object/, (s) => void (s.linux.seccomp = 'unconfined'));
  spec('70000 arguments', /process\.args has 70000 elements/, (s) => void (s.process.args = Array.from({ length: 70_000 }, () => 'x')));
  spec('objects nested 100 deep', /nested more than 64 levels deep/, (s) => void (s.annotations = deep(100)));
  spec('arrays nested 200000 deep', /config\.json is not valid JSON|nested more than/, () => `{"process":${'['.repeat(200_000)}${']'.repeat(200_000)}}`);
  spec('17 MB config.json', /config\.json is \d+ bytes \(at most 16777216\)/, (s) => JSON.stringify({ ...s, annotations: { big: 'x'.repeat(17 * 1024 * 1024) } }));
  spec('a JSON array', /config\.json is not a JSON object/, () => '[1,2,3]');
  spec('a JSON string', /config\.json is not a JSON object/, () => '"hello"');
  spec('truncated JSON', /config\.json is not valid JSON/, () => '{"process": {"args": ["sh"');
  spec('root.path a number', /config\.json has no root\.path|root\.path must be a string/, (s) => void (s.root = { path: 7 }));
  spec('no process', /config\.json has no process/, (s) => void delete s.process);
  spec('hook path relative', /has no absolute path/, (s) => void (s.hooks = { prestart: [{ path: 'bin/sh' }] }));
  spec('key with a NUL byte', /a key with a NUL byte/, (s) => void (s.annotations = { 'a\u0000b': 'c' }));

  // process.json for exec: checked before the container is looked up.
  const processFile = (name: string, text: string, expect: RegExp): void => {
    cases.push({
      name: `process.json: ${name}`,
      expect,
      args: async () => {
        const file = path.join(dir, `process-${name.replace(/\W/g, '-')}.json`);
        await writeFile(file, text);
        return ['exec', '--process', file, 'some-container'];
      },
    });
  };
  processFile('not JSON', '{args:', /cannot read process file/);
  processFile('args a string', JSON.stringify({ args: 'sh' }), /\.args must be an array/);
  processFile('args with a NUL byte', JSON.stringify({ args: ['sh', '\u0000'] }), /contains a NUL byte/);
  processFile('uid as text', JSON.stringify({ args: ['sh'], user: { uid: 'root' } }), /user\.uid must be a non-negative integer/);
  processFile('empty args', JSON.stringify({ args: [] }), /has no args/);
  processFile('unknown capability', JSON.stringify({ args: ['sh'], capabilities: { bounding: ['CAP_NOPE'] } }), /capabilities\.bounding\[0\] "CAP_NOPE" is not a known capability/);
  processFile('unknown rlimit type', JSON.stringify({ args: ['sh'], rlimits: [{ type: 'RLIMIT_NOPE', hard: 1, soft: 1 }] }), /rlimits\[0\]\.type "RLIMIT_NOPE" is not a known rlimit type/);
  processFile('relative cwd', JSON.stringify({ args: ['sh'], cwd: '.' }), /cwd must be an absolute path/);

  // configuration.toml
  const toml = (name: string, text: string, expect: RegExp): void => {
    const file = (): string => path.join(dir, `config-${name.replace(/\W/g, '-')}.toml`);
    cases.push({ name: `configuration.toml: ${name}`, expect, config: name, args: async () => (await writeFile(file(), text), ['create', 'c', '--bundle', good]) });
  };
  const base = '[hypervisor.qemu]\npath = "/usr/bin/qemu-system-x86_64"\nkernel = "/k"\ninitrd = "/i"\n';
  toml('binary garbage', '\u0000\u0001\u0002\u00ff[[[', /configuration|TOML|:\d+:\d+/);
  toml('no hypervisor section', '[runtime]\nenable_debug = true\n', /missing section \[hypervisor\.qemu\]/);
  toml('negative memory', `${base}default_memory = -1\n`, /default_memory must be an integer/);
  toml('kernel is a number', '[hypervisor.qemu]\nkernel = 42\ninitrd = "/i"\n', /kernel must be a string/);
  toml('path with a NUL byte', `${base.replace('qemu-system-x86_64"', 'qemu-system-x86_64\\u0000-evil"')}`, /path must be a string without NUL bytes/);
  toml('seccompsandbox smuggling options', `${base}seccompsandbox = "on -device evil"\n`, /seccompsandbox must be/);
  toml('unknown internetworking model', `${base}[runtime]\ninternetworking_model = "bridged"\n`, /internetworking_model must be one of/);
  toml('disable_new_netns with tcfilter', `${base}[runtime]\ndisable_new_netns = true\n`, /disable_new_netns = true works only with internetworking_model = "none"/);
  toml('duplicate key', `${base}kernel = "/k2"\n`, /:\d+:\d+/);
  toml('kernel_params as a table', `${base}[hypervisor.qemu.kernel_params]\nx = 1\n`, /kernel_params must be a string/);

  // ids and flags
  const cli = (name: string, args: string[], expect: RegExp): void => void cases.push({ name: `CLI: ${name}`, args: async () => args, expect });
  cli('id with a slash', ['create', 'a/../../b', '--bundle', '/nonexistent'], /invalid container id/);
  cli('id ..', ['create', '..', '--bundle', '/nonexistent'], /invalid container id/);
  cli('id .', ['state', '.'], /invalid container id/);
  cli('id with a newline', ['state', 'a\nb'], /invalid container id/);
  cli('id of 1025 characters', ['state', 'a'.repeat(1025)], /invalid container id|longer than 1024 characters/);
  cli('id of 300 characters at create', ['create', 'a'.repeat(300), '--bundle', '/nonexistent'], /^kata-ts: container id is 300 bytes long: the state directory holds names of at most 255 bytes$/);
  cli('unknown command', ['frobnicate'], /unknown command/);
  cli('--preserve-fds 2 (a VM cannot take host fds)', ['create', '--preserve-fds', '2', 'x'], /--preserve-fds .*the container runs in a VM, which cannot receive the host's file descriptors \(2 asked; only 0 works\)/);
  cli('exec --preserve-fds 1', ['exec', '--preserve-fds', '1', 'x', 'true'], /cannot receive the host's file descriptors/);
  cli('--preserve-fds 0 is taken (the bundle is what fails)', ['create', '--preserve-fds', '0', '--bundle', '/nonexistent/bundle', 'x'], /config\.json not found/);
  cli('checkpoint --help (podman probes support with it)', ['checkpoint', '--help'], /^kata-ts: checkpoint is not supported by kata-ts: a container's processes and memory live in its VM/);
  cli('checkpoint', ['checkpoint', '--image-path', '/tmp/x', 'c1'], /checkpoint is not supported/);
  cli('restore --help', ['restore', '--help'], /^kata-ts: restore is not supported/);
  cli('unknown flag', ['create', '--bogus', 'x'], /unknown option/);
  cli('signal 999', ['kill', 'x', '999'], /unknown signal|does not exist/);
  cli('missing bundle', ['create', 'x', '--bundle', '/nonexistent/bundle'], /config\.json not found/);
  cli('exec --user with a name', ['exec', '--user', 'root', 'x', 'true'], /does not exist|--user root/);

  // console sockets
  const consoleSocket = (name: string, make: (p: string) => Promise<void>, expect: RegExp): void => {
    cases.push({ name: `console socket: ${name}`, expect, args: async () => {
      const p = path.join(dir, `console-${name.replace(/\W/g, '-')}`);
      await make(p);
      return ['create', 'c', '--bundle', tty, '--console-socket', p];
    } });
  };
  consoleSocket('missing', async () => undefined, /--console-socket .* does not exist/);
  consoleSocket('a regular file', (p) => writeFile(p, ''), /is not a unix socket/);
  consoleSocket('a directory', (p) => mkdir(p), /is not a unix socket/);
  consoleSocket('a symlink to a socket path that is not one', (p) => symlink('/etc/passwd', p), /is not a unix socket/);

  // block volumes
  const hotplug = (name: string, volume: () => Promise<string>, device: string, expect: RegExp): void => {
    cases.push({ name: `hot-plug: ${name}`, expect, args: async () => ['block-volume', 'hot-plug', '--sandbox', 'x', '--container', 'x', '--block-volume', await volume(), '--device-path', device] });
  };
  const hostDisk = async (): Promise<string> => {
    // The device the host's root file system is on (mounted, so never to be handed out).
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
    const rootDev = mountinfo.split('\n').map((l) => l.split(' ')).find((f) => f[4] === '/')?.[2] ?? '';
    const byDev = await readdir('/sys/dev/block').catch(() => [] as string[]);
    return byDev.includes(rootDev) ? `/dev/${(await readFile(`/sys/dev/block/${rootDev}/uevent`, 'utf8')).match(/DEVNAME=(\S+)/)?.[1] ?? 'vda'}` : '/dev/vda';
  };
  hotplug('a symlink to the host disk', async () => {
    const link = path.join(dir, 'disk-link');
    await symlink(await hostDisk(), link).catch(() => undefined);
    return link;
  }, '/dev/xvdb', /is a symbolic link .*name the device or file itself/);
  hotplug('the host\'s mounted root disk', hostDisk, '/dev/xvdb', /is in use on the host \(mounted at \/\)|does not exist/);
  hotplug('a device path escaping /dev', async () => path.join(dir, 'disk.img'), '/dev/../etc/passwd', /--device-path .*must be an absolute, normalized path under \/dev/);
  hotplug('a relative device path', async () => path.join(dir, 'disk.img'), 'xvdb', /must be an absolute, normalized path under \/dev/);
  hotplug('a missing volume', async () => '/nonexistent/disk.img', '/dev/xvdb', /block volume \/nonexistent\/disk\.img does not exist/);
  hotplug('a directory', async () => dir, '/dev/xvdb', /is neither a block device nor a regular file/);

  it('refuses every one with exit 1 and one line, and changes nothing', { timeout: 600_000 }, async () => {
    assert.ok(cases.length >= 50, `${cases.length} cases`);
    const mountsBefore = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').length;
    const vmDirsBefore = await vmDirs();
    for (const c of cases) {
      figures.tried++;
      const args = await c.args();
      const config = c.config ? path.join(dir, `config-${c.config.replace(/\W/g, '-')}.toml`) : path.join(repoRoot, 'configuration.toml');
      const r = await runCli(['--root', root, '--kata-config', config, ...args], { timeoutMs: 60_000 });
      assert.equal(r.exitCode, 1, `${c.name}: exit ${r.exitCode}\n${r.stderr}`);
      assert.equal(r.stdout, '', `${c.name}: nothing on stdout`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${c.name}: one line, got\n${r.stderr.slice(0, 2000)}`);
      assert.match(lines[0] ?? '', c.expect, c.name);
      assert.deepEqual(await readdir(root).catch(() => []), [], `${c.name}: no state`);
      figures.refused++;
    }
    assert.deepEqual(await vmDirs(), vmDirsBefore, 'no VM dir');
    assert.deepEqual(await kataTsProcesses(), [], 'no process');
    assert.equal((await readFile('/proc/self/mountinfo', 'utf8')).split('\n').length, mountsBefore, 'no mount');
  });
});
