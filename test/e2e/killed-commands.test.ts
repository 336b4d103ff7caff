import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { buildImage } from '../../src/image/build-image.js';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import { mountPointsUnder } from '../../src/util/host-mounts.js';
import type { FaultPoint } from '../../src/util/fault-point.js';
import { kataTsBin, tempDir } from '../helpers/fixtures.js';
import { runUntil } from '../helpers/fault-point.js';
import { kataTsProcesses, processesMatching, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { kataTs, ociState } from '../helpers/oci-e2e.js';

/** Runs one kata-ts command that stops itself at `point`, then SIGKILLs it there. */
async function killAt(root: string, point: FaultPoint, args: string[]): Promise<void> {
  const { child, exited } = await runUntil(root, point, args);
  child.kill('SIGKILL');
  await exited;
}

/**
 * kill -9 of kata-ts in the middle of start, exec, delete and hot-plug: then
 * `state` tells the truth, `delete --force` leaves no QEMU, pod process,
 * carrier, VM dir or mount, and a new create of the same id works (each case
 * creates `victim` again).
 */
describe('faults: start, exec, delete and hot-plug killed half way', () => {
  const id = 'victim';
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let kata: ReturnType<typeof kataTs>;
  let vmDirsBefore: string[];
  let disk: string;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-killed-cmd-'));
    root = path.join(dir, 'root');
    kata = kataTs(root);
    await buildImage();
    vmDirsBefore = await vmDirs();
    disk = path.join(dir, 'disk.img');
    await writeFile(disk, '');
    await truncate(disk, 8 * 1024 * 1024);
  });
  after(async () => {
    await kata(['delete', '--force', id]);
    await cleanup();
  });

  /** A running `victim` whose process writes /up in its rootfs. */
  async function runningVictim(name: string): Promise<string> {
    const bundle = path.join(dir, name);
    await makeBundle(bundle, { args: ['sh', '-c', 'echo up > /up; exec sleep 1000'] });
    const created = await kata(['create', id, '--bundle', bundle], { outputFile: path.join(dir, `${name}.out`) });
    assert.equal(created.exitCode, 0, created.stderr);
    return bundle;
  }

  async function start(): Promise<void> {
    const started = await kata(['start', id]);
    assert.equal(started.exitCode, 0, started.stderr);
  }

  async function deleteLeavesNothing(): Promise<void> {
    const deleted = await kata(['delete', '--force', id]);
    assert.equal(deleted.exitCode, 0, deleted.stderr);
    assert.deepEqual(await untilNoneLeft(kataTsProcesses, 10_000), [], 'no QEMU, pod process or carrier is left');
    assert.deepEqual(await vmDirs(), vmDirsBefore, 'no VM dir is left');
    assert.deepEqual(await mountPointsUnder(sandboxDir(root, id)), []);
    assert.match((await kata(['state', id])).stderr, /does not exist/);
  }

  const hotPlug = ['block-volume', 'hot-plug', '--sandbox', id, '--container', id, '--block-volume', '', '--device-path', '/dev/vdz'];
  const withDisk = (): string[] => hotPlug.map((a) => (a === '' ? disk : a));

  it('start killed after the agent started the container: state says running, as it is', { timeout: 120_000 }, async () => {
    const bundle = await runningVictim('start');
    await killAt(root, 'start:after-agent', ['start', id]);
    assert.equal((await ociState(kata, id)).status, 'running');
    for (let i = 0; i < 100 && !existsSync(path.join(bundle, 'rootfs', 'up')); i++) await sleep(100);
    assert.equal(await readFile(path.join(bundle, 'rootfs', 'up'), 'utf8'), 'up\n', 'the process runs');
    assert.match((await kata(['start', id])).stderr, /cannot start container victim: it is running/);
    await deleteLeavesNothing();
  });

  it('exec killed after the agent started its process: the container runs on, delete --force ends it all', { timeout: 120_000 }, async () => {
    await runningVictim('exec');
    await start();
    await killAt(root, 'exec:after-agent', ['exec', id, 'sleep', '1000']);
    assert.equal((await ociState(kata, id)).status, 'running');
    const exec = await kata(['exec', id, 'echo', 'still here']);
    assert.equal(exec.stdout, 'still here', exec.stderr);
    await deleteLeavesNothing();
  });

  it('run killed by timeout with its process group, in a private mount namespace, while its container runs: one pod process, a quiet console, and delete --force there leaves nothing', { timeout: 120_000 }, async () => {
    const bundle = path.join(dir, 'killed-caller');
    await makeBundle(bundle, { args: ['sh', '-c', 'echo up; exec sleep 1000'] });
    // timeout signals its whole process group: kata-ts run and the container's carrier.
    const killed = await execa('unshare', ['-m', '--propagation', 'private', 'timeout', '-s', 'KILL', '10', kataTsBin, '--root', root, 'run', id, '--bundle', bundle], { reject: false });
    assert.equal(killed.signal, 'SIGKILL', `timeout's group kill took timeout too: ${killed.stderr}`);
    assert.equal(killed.stdout, 'up', 'the container ran');
    const vmDir = sandboxDir(root, id);
    const sessions = async (): Promise<number> => (await readFile(path.join(vmDir, 'console.log'), 'utf8')).split('the host started a new session').length - 1;
    const before = await sessions();
    await sleep(10_000);
    assert.equal(await sessions(), before, 'no host session started again in 10 s: the console stays quiet');
    assert.equal((await processesMatching(`pod --vm-dir ${vmDir}`)).length, 1, 'one pod process serves the VM');
    assert.equal((await ociState(kata, id)).status, 'stopped', 'the carrier\'s death ended the process');
    const deleted = await execa('unshare', ['-m', '--propagation', 'private', kataTsBin, '--root', root, 'delete', '--force', id], { reject: false });
    assert.equal(deleted.exitCode, 0, deleted.stderr);
    assert.equal(existsSync(vmDir), false, 'delete --force leaves no VM dir');
    assert.deepEqual(await untilNoneLeft(kataTsProcesses, 10_000), [], 'no QEMU, virtiofsd, pod process or carrier is left');
    assert.deepEqual(await vmDirs(), vmDirsBefore);
    assert.match((await kata(['state', id])).stderr, /does not exist/);
  });

  for (const [point, phase] of [['delete:after-guest', 'the guest removed the container'], ['delete:after-vm', 'the VM stopped']] as const) {
    it(`delete killed after ${phase}: it is stopped, and delete --force finishes`, { timeout: 120_000 }, async () => {
      await runningVictim(point.replace(':', '-'));
      await start();
      await killAt(root, point, ['delete', '--force', id]);
      assert.equal((await ociState(kata, id)).status, 'stopped');
      await deleteLeavesNothing();
    });
  }

  for (const point of ['hot-plug:after-qmp', 'hot-plug:after-agent'] as const) {
    it(`${point.replace(':', ' killed ').replace('-', ' ')}: the volume is recorded, hot-unplug and a new hot-plug work, delete --force leaves nothing`, { timeout: 120_000 }, async () => {
      await runningVictim(point.replace(':', '-'));
      await start();
      await killAt(root, point, withDisk());
      assert.equal((await ociState(kata, id)).status, 'running');
      const listed = JSON.parse((await kata(['block-volume', 'list', '--sandbox', id, '--format', 'json'])).stdout) as Array<{ devicePath: string }>;
      assert.deepEqual(listed.map((v) => v.devicePath), ['/dev/vdz'], 'the interrupted hot-plug is recorded');
      const refused = await kata(withDisk());
      assert.match(refused.stderr, /already attached/, 'the same disk is not plugged twice');
      const unplugged = await kata(['block-volume', 'hot-unplug', '--sandbox', id, '--container', id, '--device-path', '/dev/vdz']);
      assert.equal(unplugged.exitCode, 0, unplugged.stderr);
      const plugged = await kata(withDisk());
      assert.equal(plugged.exitCode, 0, plugged.stderr);
      const seen = await kata(['exec', id, 'sh', '-c', 'test -b /dev/vdz && echo block']);
      assert.equal(seen.stdout, 'block', seen.stderr);
      await deleteLeavesNothing();
    });
  }
});
