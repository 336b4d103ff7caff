import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { InitrdTree } from '../../src/image/initrd-builder.js';
import { readPodIdentity } from '../../src/pod/pod-layout.js';
import { sandboxDir, vmRoot } from '../../src/runtime/sandbox-record.js';
import { bundledConfigText, debianKernelEdits, kataTsBin, repoRoot, tempDir, writeConfig } from '../helpers/fixtures.js';
import { runCli, type CliOptions, type CliResult } from '../helpers/run-cli.js';
import { kataTsProcesses, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { joinSandbox, makeBundle } from '../helpers/oci-bundle.js';
import { assertSandboxGone, kataTs, ociState, sandboxProcesses } from '../helpers/oci-e2e.js';
import { execa } from 'execa';

/** A container that is root with every capability in its VM. */
const allCapabilities = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE'];

async function rssKb(pid: number): Promise<number> {
  return Number(/^VmRSS:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''))?.[1] ?? 0);
}

/**
 * The agent replaced by a hostile /init: garbage on the agent's port, a yamux
 * frame header announcing 4 GiB, or silence. create fails within its dial
 * timeout with one line, the pod process's memory stays bounded, and nothing
 * is left.
 */
describe('hostile guest: a replaced agent', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let initrd: string;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-fake-agent-'));
    await buildImage();
    const tree = new InitrdTree(path.join(dir, 'tree'));
    await tree.reset();
    await tree.addBusybox('/bin/busybox');
    await tree.writeFile('/init', `#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mode=silent
for p in $(cat /proc/cmdline); do case $p in fake.mode=*) mode=\${p#fake.mode=} ;; esac; done
for d in /sys/class/virtio-ports/*; do [ "$(cat $d/name)" = agent.channel.0 ] && port=/dev/$(basename $d); done
echo "fake agent: $mode on $port" > /dev/kmsg
case $mode in
  garbage) while :; do head -c 65536 /dev/urandom; done > $port ;;
  bigframe) { printf '\\000\\000\\000\\001\\000\\000\\000\\001\\377\\377\\377\\377'; head -c 1048576 /dev/zero; sleep 3600; } > $port ;;
  badgrpc)
    # Good yamux, bad gRPC: every stream the host opens is accepted, then answered with random bytes
    # where HTTP/2 belongs.
    exec 3<>$port
    byte() { printf "\\\\$(printf %03o $1)"; }
    u32() { byte $(($1 >> 24 & 255)); byte $(($1 >> 16 & 255)); byte $(($1 >> 8 & 255)); byte $(($1 & 255)); }
    while :; do
      set -- $(dd bs=1 count=12 <&3 2>/dev/null | od -An -tu1)
      [ $# -eq 12 ] || continue
      type=$2; flags=$(($3 * 256 + $4)); sid=$(($5 * 16777216 + $6 * 65536 + $7 * 256 + $8)); len=$(($9 * 16777216 + \${10} * 65536 + \${11} * 256 + \${12}))
      [ $type -eq 0 ] && [ $len -gt 0 ] && dd bs=1 count=$len <&3 >/dev/null 2>&1
      if [ $sid -gt 0 ] && [ $((flags & 1)) -eq 1 ]; then
        { printf '\\000\\001\\000\\002'; u32 $sid; u32 0; printf '\\000\\000\\000\\000'; u32 $sid; u32 64; head -c 64 /dev/urandom; } >&3
      fi
    done ;;
  *) sleep 3600 ;;
esac
`, 0o755);
    initrd = path.join(dir, 'fake-agent.img');
    await tree.pack(initrd, '/bin/busybox');
  });
  after(() => cleanup());

  for (const mode of ['garbage', 'bigframe', 'badgrpc', 'silent']) {
    it(`${mode}: create fails in time with one line, the pod process stays small, nothing is left`, { timeout: 120_000 }, async () => {
      const config = await writeConfig(dir, await bundledConfigText({
        kernel: `"${path.join(repoRoot, 'guest', 'vmlinux')}"`, initrd: `"${initrd}"`, image: '""',
        kernel_params: `"fake.mode=${mode}"`, dial_timeout: '8', enable_template: 'false',
      }), `${mode}.toml`);
      const root = path.join(dir, `root-${mode}`);
      const bundle = await makeBundle(path.join(dir, `b-${mode}`), { args: ['true'] });
      const vmDirsBefore = await vmDirs();
      const create = spawn(kataTsBin, ['--root', root, '--kata-config', config, 'create', 'victim', '--bundle', bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      create.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => create.once('exit', resolve));
      const vmDir = sandboxDir(root, 'victim');
      let maxRssKb = 0;
      const started = Date.now();
      while (create.exitCode === null && Date.now() - started < 60_000) {
        const pod = await readPodIdentity(vmDir);
        if (pod) maxRssKb = Math.max(maxRssKb, await rssKb(pod.pid));
        await sleep(200);
      }
      const status = await exited;
      const elapsed = Date.now() - started;
      process.stderr.write(`# fake agent ${mode}: create failed after ${elapsed} ms, pod process RSS at most ${Math.round(maxRssKb / 1024)} MB\n`);
      assert.equal(status, 1, stderr);
      const lines = stderr.trim().split('\n').filter((l) => !l.includes(': info:'));
      assert.equal(lines.length, 1, stderr);
      assert.match(lines[0] ?? '', /sandbox victim: .*(did not answer|protocol error|closed|exited)/);
      assert.ok(elapsed < 40_000, `failed within the dial timeout and cleanup (${elapsed} ms)`);
      assert.ok(maxRssKb < 150 * 1024, `the pod process stayed under 150 MB (${maxRssKb} kB)`);
      assert.deepEqual(await untilNoneLeft(kataTsProcesses, 10_000), []);
      assert.deepEqual(await vmDirs(), vmDirsBefore);
    });
  }

  it('garbage while a VM template is made: create fails with one line, and no template or QEMU is left', { timeout: 120_000 }, async () => {
    const templates = path.join(dir, 'templates');
    const config = await writeConfig(dir, await bundledConfigText({
      kernel: `"${path.join(repoRoot, 'guest', 'vmlinux')}"`, initrd: `"${initrd}"`, image: '""',
      kernel_params: '"fake.mode=garbage"', dial_timeout: '8', enable_template: 'true', template_path: `"${templates}"`,
    }), 'template-garbage.toml');
    const bundle = await makeBundle(path.join(dir, 'b-template'), { args: ['true'] });
    const vmDirsBefore = await vmDirs();
    const started = Date.now();
    const r = await runCli(['--root', path.join(dir, 'root-template'), '--kata-config', config, 'create', 'victim', '--bundle', bundle], { timeoutMs: 90_000 });
    assert.equal(r.exitCode, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? '', /cannot make the VM template: .*(no answer|did not answer|protocol error|closed)/);
    assert.ok(Date.now() - started < 40_000, `failed within the dial timeout and cleanup (${Date.now() - started} ms)`);
    assert.deepEqual(await untilNoneLeft(kataTsProcesses, 10_000), [], 'the template QEMU is gone');
    assert.deepEqual((await readdir(templates)).filter((name) => !name.endsWith('.lock')), [], 'no template is left');
    assert.deepEqual(await vmDirs(), vmDirsBefore);
  });
});

/**
 * A container that is root with CAP_SYS_ADMIN in its VM: links out of its
 * rootfs and bind mount, FIFOs and device nodes in the share, a full rootfs,
 * and a stdout flood nobody reads. The host's cleanup touches nothing outside
 * the share, and the host's memory stays bounded.
 */
describe('hostile guest: a hostile container', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let kata: ReturnType<typeof kataTs>;
  let root: string;
  let vmDirsBefore: string[];

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-hostile-ctr-'));
    vmDirsBefore = await vmDirs();
    root = path.join(dir, 'root');
    kata = kataTs(root);
    await buildImage();
  });
  after(async () => {
    for (const id of ['flood', 'filler', 'hider', 'hider-pod']) await kata(['delete', '--force', id]);
    // The share cases' leftovers, whichever file system they ran on (with its own configuration).
    for (const tag of ['9p', 'vfs']) {
      const config = path.join(dir, `share-${tag}.toml`);
      if (!existsSync(config)) continue;
      for (const name of ['share-attacker', 'joiner0', 'joiner1', 'joiner2', 'share-pod', 'linker']) await runCli(['--root', root, '--kata-config', config, 'delete', '--force', `${name}-${tag}`]);
    }
    await cleanup();
  });

  for (const fs of ['virtio-fs', 'virtio-9p'] as const) {
    it(`${fs}: links, FIFOs and device nodes it leaves in its rootfs and bind mount: delete touches nothing outside the share`, { timeout: 120_000 }, async () => {
      const tag = fs === 'virtio-9p' ? '9p' : 'vfs';
      const config = await writeConfig(dir, await bundledConfigText({ shared_fs: `"${fs}"` }), `linker-${tag}.toml`);
      const outside = path.join(dir, `outside-${tag}`);
      await mkdir(outside);
      await writeFile(path.join(outside, 'canary'), 'still here\n');
      const data = path.join(dir, `data-${tag}`);
      await mkdir(data);
      const bundle = await makeBundle(path.join(dir, `linker-${tag}`), {
        args: ['sh', '-c', [
          `ln -s ${outside} /to-outside`, `ln -s ${outside}/canary /canary-link`, `ln -s ${outside} /data/to-outside`,
          'ln /bin/busybox /data/hardlink 2>/dev/null',
          // No device node reaches the host (9p refuses them; virtiofsd runs without CAP_MKNOD); 9p takes no FIFO either.
          'mkfifo /fifo 2>/dev/null || echo no-fifo', 'mknod /data/null-dev c 1 3 2>/dev/null || echo no-char-device', 'mknod /sda b 8 0 2>/dev/null || echo no-block-device',
          'echo done',
        ].join('; ')],
        capabilities: ['CAP_MKNOD', 'CAP_SYS_ADMIN'],
        mounts: [{ destination: '/data', source: data, type: 'bind', options: ['rbind', 'rw'] }],
      });
      const r = await runCli(['--root', root, '--kata-config', config, 'run', `linker-${tag}`, '--bundle', bundle], { timeoutMs: 120_000 });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, fs === 'virtio-9p' ? 'no-fifo\nno-char-device\nno-block-device\ndone' : 'no-char-device\nno-block-device\ndone');
      // The links the guest made are on the host, in the bundle's rootfs and the bind source...
      assert.equal((await readlink(path.join(bundle, 'rootfs', 'to-outside'))), outside);
      assert.equal((await readlink(path.join(data, 'to-outside'))), outside);
      for (const node of [path.join(bundle, 'rootfs', 'sda'), path.join(data, 'null-dev')]) assert.equal(existsSync(node), false, node);
      const fifo = await lstat(path.join(bundle, 'rootfs', 'fifo')).catch(() => undefined);
      if (fs === 'virtio-9p') assert.equal(fifo, undefined);
      else assert.ok(fifo?.isFIFO(), 'virtio-fs keeps POSIX FIFOs');
      // ...and the host's cleanup (run deletes) followed none of it.
      assert.equal(await readFile(path.join(outside, 'canary'), 'utf8'), 'still here\n');
      assert.deepEqual((await readdir(outside)).sort(), ['canary']);
      assert.deepEqual(await vmDirs(), vmDirsBefore);
      assert.deepEqual(await kataTsProcesses(), []);
    });
  }

  it('a stdout flood nobody reads: the pod process stays small; read later, every byte arrives', { timeout: 240_000 }, async () => {
    const mib = 48;
    const bundle = await makeBundle(path.join(dir, 'flood'), { args: ['sh', '-c', `head -c ${mib * 1024 * 1024} /dev/zero`] });
    const run = spawn(kataTsBin, ['--root', root, '--kata-config', path.join(repoRoot, 'configuration.toml'), 'run', 'flood', '--bundle', bundle], { stdio: ['ignore', 'pipe', 'pipe'] });
    run.stdout?.pause();
    const exited = new Promise<number | null>((resolve) => run.once('exit', resolve));
    let pod: Awaited<ReturnType<typeof sandboxProcesses>> | undefined;
    for (let i = 0; i < 600 && !pod?.pod; i++) {
      pod = await sandboxProcesses(root, 'flood').catch(() => undefined);
      await sleep(100);
    }
    assert.ok(pod?.pod, 'the pod came up');
    await sleep(3000);
    const baseline = await rssKb(pod.pod.pid);
    // Nobody reads for 15 s while the container writes as fast as it can.
    let peak = baseline;
    for (let i = 0; i < 30; i++) {
      peak = Math.max(peak, await rssKb(pod.pod.pid));
      await sleep(500);
    }
    let received = 0;
    run.stdout?.on('data', (c: Buffer) => (received += c.length));
    run.stdout?.resume();
    assert.equal(await exited, 0);
    process.stderr.write(`# stdout flood: pod process RSS ${Math.round(baseline / 1024)} MB, at most ${Math.round(peak / 1024)} MB while unread; ${received} bytes delivered\n`);
    assert.ok(peak - baseline < 16 * 1024, `the pod process grew ${peak - baseline} kB while nobody read`);
    assert.equal(received, mib * 1024 * 1024, 'every byte arrived once read');
    await assertSandboxGone(pod);
    assert.equal(existsSync(path.join(vmRoot, path.basename(pod.dir))), false);
  });

  it('a container that fills its rootfs: ENOSPC inside, and the host deletes it all the same', { timeout: 120_000 }, async () => {
    // The rootfs on a small tmpfs of the test's own, so that only it fills.
    const small = path.join(dir, 'small');
    await mkdir(small);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', small]);
    try {
      const bundle = await makeBundle(small, { args: ['sh', '-c', 'dd if=/dev/zero of=/fill bs=1M 2>&1; echo exit=$?'] });
      const r = await kata(['run', 'filler', '--bundle', bundle]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, /No space left on device/);
      assert.deepEqual(await vmDirs(), vmDirsBefore);
      assert.deepEqual(await kataTsProcesses(), []);
    } finally {
      await execa('umount', [small]);
    }
  });
  for (const fs of ['virtio-9p', 'virtio-fs'] as const) {
  it(`${fs}: a container that turns the share against the host: nothing can be planted or renamed there, and joins and deletes beside it touch nothing outside`, { timeout: 300_000 }, async () => {
    const tag = fs === 'virtio-9p' ? '9p' : 'vfs';
    const config = await writeConfig(dir, await bundledConfigText({ shared_fs: `"${fs}"` }), `share-${tag}.toml`);
    const kata = (args: string[], options: CliOptions = {}): Promise<CliResult> => runCli(['--root', root, '--kata-config', config, ...args], { timeoutMs: 120_000, ...options });
    const id = (name: string): string => `${name}-${tag}`;
    // A tree the host must not change, with a canary the old share let the guest truncate (CVE-2020-2026's class).
    const watched = path.join(dir, id('watched'));
    await mkdir(path.join(watched, 'sub'), { recursive: true });
    const canary = path.join(watched, 'canary');
    await writeFile(canary, 'still here\n');
    for (let i = 0; i < 20; i++) await writeFile(path.join(watched, 'sub', `f${i}`), `file ${i}\n`);
    const snapshot = async (): Promise<string> => {
      const entries: string[] = [];
      const walk = async (d: string): Promise<void> => {
        for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
          const p = path.join(d, e.name);
          if (e.isDirectory()) await walk(p);
          else entries.push(`${p} ${createHash('sha256').update(await readFile(p)).digest('hex')}`);
        }
      };
      await walk(watched);
      return entries.join('\n');
    };
    const before = await snapshot();
    const podBundle = await makeBundle(path.join(dir, id('share-pod')), { args: ['sleep', '1000'], annotations: { 'io.kubernetes.cri.container-type': 'sandbox' } });
    assert.equal((await kata(['run', '--detach', id('share-pod'), '--bundle', podBundle], { outputFile: path.join(dir, `${id('share-pod')}.out`) })).exitCode, 0);
    const sandbox = await sandboxProcesses(root, id('share-pod'));
    // Root with every capability and the VM's pid namespace reaches the agent's view of the share through /proc/1/root.
    const share = '/proc/1/root/run/kata-containers/shared/containers';
    const bundle = await makeBundle(path.join(dir, id('share-attacker')), {
      args: ['sh', '-c', [
        `S=${share}`,
        `{ touch $S/planted 2>/dev/null && echo top-writable || echo top-read-only; mkdir $S/${id('joiner0')} 2>/dev/null && echo made-a-dir; } > /report`,
        'while [ ! -e /stop ]; do',
        '  for d in $S/*; do',
        `    ln -s ${canary} $d/mounts 2>/dev/null; ln -s ${canary} $d/mounts/0 2>/dev/null; ln -s ${canary} $d/mounts/9 2>/dev/null;`,
        '    mv $d $d.moved 2>/dev/null && echo renamed >> /report; mv $d.moved $d 2>/dev/null;',
        `    ln -s ${watched} $d/rootfs/to-watched 2>/dev/null;`,
        '  done',
        `  for n in ${[0, 1, 2].map((i) => id(`joiner${i}`)).join(' ')}; do ln -s ${watched} $S/$n 2>/dev/null && echo planted-$n >> /report; done`,
        'done',
        'echo stopped >> /report',
      ].join('\n')],
      capabilities: allCapabilities, vmPidNamespace: true, annotations: joinSandbox(id('share-pod')),
    });
    const report = path.join(bundle, 'rootfs', 'report');
    assert.equal((await kata(['run', '--detach', id('share-attacker'), '--bundle', bundle], { outputFile: path.join(dir, `${id('share-attacker')}.out`) })).exitCode, 0);
    for (let i = 0; i < 300 && !existsSync(report); i++) await sleep(100);
    // Containers join and go while it plants and renames: each with a file bind (as CRI's /etc/hosts) and a directory bind.
    const hosts = path.join(dir, id('hosts'));
    await writeFile(hosts, '127.0.0.1 localhost\n');
    for (let i = 0; i < 3; i++) {
      const joiner = await makeBundle(path.join(dir, id(`joiner${i}`)), {
        args: ['sh', '-c', 'cat /etc/hosts; ls /data | wc -l'], annotations: joinSandbox(id('share-pod')),
        mounts: [{ destination: '/etc/hosts', source: hosts, type: 'bind', options: ['rbind', 'rw'] }, { destination: '/data', source: path.join(watched, 'sub'), type: 'bind', options: ['rbind', 'ro'] }],
      });
      const r = await kata(['run', id(`joiner${i}`), '--bundle', joiner]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, '127.0.0.1 localhost\n20', `joiner${i} saw its own binds`);
    }
    await writeFile(path.join(bundle, 'rootfs', 'stop'), '');
    for (let i = 0; i < 100 && !(await readFile(report, 'utf8')).includes('stopped'); i++) await sleep(100);
    const said = (await readFile(report, 'utf8')).trim().split('\n');
    assert.deepEqual(said, ['top-read-only', 'stopped'], 'it could not write at the top, make a container dir, rename one, or plant a name');
    for (const name of ['share-attacker', 'share-pod']) assert.equal((await kata(['delete', '--force', id(name)])).exitCode, 0);
    await assertSandboxGone(sandbox);
    assert.equal(await readFile(canary, 'utf8'), 'still here\n');
    assert.equal(await snapshot(), before, 'nothing in the watched tree changed');
    assert.deepEqual(await vmDirs(), vmDirsBefore);
  });
  }

  it('a container that hides its crun state: delete fails and keeps it while it runs, and works once it is back', { timeout: 180_000 }, async () => {
    // No pid namespace and every capability: it reaches the agent's /run/crun through /proc/1/root.
    const podBundle = await makeBundle(path.join(dir, 'hider-pod'), { args: ['sleep', '1000'], annotations: { 'io.kubernetes.cri.container-type': 'sandbox' } });
    assert.equal((await kata(['run', '--detach', 'hider-pod', '--bundle', podBundle], { outputFile: path.join(dir, 'hider-pod.out') })).exitCode, 0);
    const crunState = '/proc/1/root/run/crun';
    const bundle = await makeBundle(path.join(dir, 'hider'), {
      args: ['sh', '-c', `mv ${crunState}/hider ${crunState}/.hidden && touch /hidden; while [ ! -e /restore ]; do sleep 0.2; done; mv ${crunState}/.hidden ${crunState}/hider; touch /restored; exec sleep 1000`],
      capabilities: allCapabilities, vmPidNamespace: true, annotations: joinSandbox('hider-pod'),
    });
    const sandbox = await sandboxProcesses(root, 'hider-pod');
    assert.equal((await kata(['run', '--detach', 'hider', '--bundle', bundle], { outputFile: path.join(dir, 'hider.out') })).exitCode, 0);
    const rootfs = path.join(bundle, 'rootfs');
    for (let i = 0; i < 300 && !existsSync(path.join(rootfs, 'hidden')); i++) await sleep(100);
    assert.ok(existsSync(path.join(rootfs, 'hidden')), 'the container moved its crun state away');

    const refused = await kata(['delete', '--force', 'hider']);
    assert.equal(refused.exitCode, 1, 'delete fails: the guest could not remove the container');
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /cannot delete container hider: the guest could not remove it, so it is kept: .*did not stop/);
    assert.equal((await ociState(kata, 'hider')).status, 'running', 'its record is kept: its process still runs in the VM');

    await writeFile(path.join(rootfs, 'restore'), '');
    for (let i = 0; i < 100 && !existsSync(path.join(rootfs, 'restored')); i++) await sleep(100);
    assert.ok(existsSync(path.join(rootfs, 'restored')), 'the process was still running: it put the state back');
    for (const id of ['hider', 'hider-pod']) {
      const deleted = await kata(['delete', '--force', id]);
      assert.equal(deleted.exitCode, 0, deleted.stderr);
    }
    await assertSandboxGone(sandbox);
  });
});

/** A guest kernel panic (here: sysrq from a privileged container) ends the VM: QEMU does not reboot into an empty agent. */
describe('hostile guest: a guest panic', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let kata: ReturnType<typeof kataTs>;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-panic-'));
    // The Debian kernel has sysrq (the kata-ts kernel leaves it out).
    const config = await writeConfig(dir, await bundledConfigText(debianKernelEdits), 'debian.toml');
    kata = (args, options = {}) => runCli(['--root', path.join(dir, 'root'), '--kata-config', config, ...args], { timeoutMs: 120_000, ...options });
    await buildImage();
  });
  after(async () => {
    for (const id of ['panic-pod', 'panicker']) await kata(['delete', '--force', id]);
    await cleanup();
  });

  it('the VM ends, the pod\'s containers are stopped, and delete --force leaves nothing', { timeout: 120_000 }, async () => {
    await makeBundle(path.join(dir, 'pod'), { args: ['sh', '-c', 'while :; do sleep 1; done'], annotations: { 'io.kubernetes.cri.container-type': 'sandbox' } });
    const created = await kata(['create', 'panic-pod', '--bundle', path.join(dir, 'pod')], { outputFile: path.join(dir, 'pod.out') });
    assert.equal(created.exitCode, 0, await readFile(path.join(dir, 'pod.out'), 'utf8'));
    assert.equal((await kata(['start', 'panic-pod'])).exitCode, 0);
    const pod = await sandboxProcesses(path.join(dir, 'root'), 'panic-pod');
    const bundle = await makeBundle(path.join(dir, 'panicker'), { args: ['sh', '-c', 'echo c > /proc/sysrq-trigger'], capabilities: ['CAP_SYS_ADMIN'], annotations: joinSandbox('panic-pod') });
    // The default spec makes /proc/sysrq-trigger read-only: this container is given it.
    const spec = JSON.parse(await readFile(path.join(bundle, 'config.json'), 'utf8')) as { linux: { readonlyPaths?: string[] } };
    spec.linux.readonlyPaths = [];
    await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    const r = await kata(['run', 'panicker', '--bundle', bundle]);
    assert.notEqual(r.exitCode, 0, 'the panicking container does not report success');
    assert.ok(pod.qemu);
    const { isSameProcessAlive } = await import('../../src/util/process-identity.js');
    for (let i = 0; i < 100 && (await isSameProcessAlive(pod.qemu)); i++) await sleep(100);
    assert.equal(await isSameProcessAlive(pod.qemu), false, 'QEMU exited instead of rebooting the guest');
    const state = JSON.parse((await kata(['state', 'panic-pod'])).stdout) as { status: string };
    assert.equal(state.status, 'stopped');
    assert.equal((await kata(['delete', '--force', 'panic-pod'])).exitCode, 0);
    await kata(['delete', '--force', 'panicker']);
    await assertSandboxGone(pod);
  });
});
