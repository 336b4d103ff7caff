import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { buildImage } from '../../src/image/build-image.js';
import { removeAllContainers, startContainerd, type ContainerdDaemon } from '../helpers/containerd-daemon.js';
import { kataTsBin, repoRoot, tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, processesMatching, vmDirs } from '../helpers/leaks.js';
import { assertInteractiveShell } from '../helpers/pty-session.js';

const image = 'docker.io/kata-ts/busybox:latest';

/** The task's status and exit status as `ctr task ls` shows them. */
async function taskStatus(ctd: ContainerdDaemon, id: string): Promise<string | undefined> {
  const ls = await ctd.ctr(['task', 'ls']);
  return ls.stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((cols) => cols[0] === id)?.[2];
}

/**
 * containerd 1.6 (Debian's) drives kata-ts through its io.containerd.runc.v2 shim,
 * `ctr run --runc-binary`: the shim calls kata-ts with --root, --log, --log-format json,
 * pid files, console sockets, exec --process files, kill and delete --force.
 */
describe('containerd: ctr with --runc-binary kata-ts', () => {
  let ctd: ContainerdDaemon;
  let work: { dir: string; cleanup: () => Promise<void> };
  let vmDirsBefore: string[];
  const runtime = (): string[] => ['--runc-binary', kataTsBin, '--runc-root', ctd.runcRoot];

  before(async () => {
    await buildImage();
    work = await tempDir('kata-ts-ctr-');
    vmDirsBefore = await vmDirs();
    ctd = await startContainerd();
    const archive = path.join(work.dir, 'busybox.tar');
    await execa('bash', [path.join(repoRoot, 'scripts', 'make-busybox-image.sh'), archive]);
    const imported = await ctd.ctr(['images', 'import', archive]);
    assert.equal(imported.exitCode, 0, imported.stderr);
  });

  afterEach(async () => {
    // Every scenario ends with no VM, no kata-ts process and no containerd shim left.
    assert.deepEqual(await vmDirs(), vmDirsBefore, 'no sandbox VM dir is left');
    assert.deepEqual(await kataTsProcesses(), [], 'no QEMU, pod process, carrier or kata-ts command runs');
    assert.deepEqual((await ctd.ctr(['task', 'ls', '-q'])).stdout, '', 'containerd has no task');
    assert.deepEqual((await ctd.ctr(['containers', 'ls', '-q'])).stdout, '', 'containerd has no container');
  });

  after(async () => {
    try {
      if (ctd) await removeAllContainers(ctd);
      await ctd?.stop();
      assert.deepEqual(await processesMatching(ctd.dir), [], 'neither containerd nor a shim of it runs');
    } finally {
      await work?.cleanup();
    }
  });

  it('ctr run --rm: the container\'s stdout and stderr, and its exit status', { timeout: 240_000 }, async () => {
    const r = await ctd.ctr(['run', '--rm', ...runtime(), image, 'hello', 'sh', '-c', 'echo hello from $(uname -r); echo to stderr >&2; exit 3']);
    assert.equal(r.exitCode, 3, r.stderr);
    assert.match(r.stdout, /^hello from \d+\.\d+\.\d+\S*$/);
    assert.notEqual(r.stdout.replace('hello from ', ''), os.release(), 'the guest kernel answers, not the host\'s');
    assert.equal(r.stderr, 'to stderr');
  });

  it('ctr run -d, then task exec, kill and delete; kata-ts logs JSON where the shim asks', { timeout: 300_000 }, async () => {
    const out = path.join(work.dir, 'web.out');
    const run = await ctd.ctr(['run', '-d', '--log-uri', `file://${out}`, ...runtime(), image, 'web', 'sh', '-c', 'trap "echo got TERM; exit 4" TERM; echo up; while :; do sleep 1; done']);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(await taskStatus(ctd, 'web'), 'RUNNING');

    const exec = await ctd.ctr(['task', 'exec', '--exec-id', 'e1', 'web', 'sh', '-c', 'echo from exec; cat /etc/hostname 2>/dev/null; hostname; exit 5']);
    assert.equal(exec.exitCode, 5, exec.stderr);
    assert.match(exec.stdout, /^from exec\n/);
    const ps = await ctd.ctr(['task', 'ps', 'web']);
    assert.equal(ps.exitCode, 0, ps.stderr);

    // The shim passes --log <bundle>/log.json --log-format json: what kata-ts logs there is JSON lines.
    const bundleLog = path.join(ctd.dir, 'state', 'io.containerd.runtime.v2.task', 'default', 'web', 'log.json');
    const entries = (await readFile(bundleLog, 'utf8')).split('\n').filter(Boolean).map((line) => JSON.parse(line) as { level?: string; msg?: string; time?: string });
    for (const entry of entries) assert.ok(entry.level && entry.msg && entry.time, `a runc-style log entry: ${JSON.stringify(entry)}`);
    assert.ok(entries.some((e) => e.msg === 'created container web in sandbox web'), 'create logged there');

    const kill = await ctd.ctr(['task', 'kill', 'web']);
    assert.equal(kill.exitCode, 0, kill.stderr);
    const deadline = Date.now() + 30_000;
    while ((await taskStatus(ctd, 'web')) !== 'STOPPED' && Date.now() < deadline) await sleep(250);
    assert.equal(await taskStatus(ctd, 'web'), 'STOPPED');
    assert.equal(await readFile(out, 'utf8'), 'up\ngot TERM\n', 'SIGTERM reached the trap in the guest');

    const del = await ctd.ctr(['task', 'delete', 'web']);
    assert.equal(del.exitCode, 0, del.stderr);
    assert.match(del.stderr, /task web exit with non-zero exit code 4/, 'the trap\'s exit status reached containerd');
    assert.equal((await ctd.ctr(['containers', 'rm', 'web'])).exitCode, 0);
  });

  it('ctr run -t: a terminal, its size, input and the exit status', { timeout: 240_000 }, async () => {
    await assertInteractiveShell('ctr', ['--address', ctd.socket, 'run', '-t', '--rm', ...runtime(), image, 'shell', 'sh']);
  });
});
