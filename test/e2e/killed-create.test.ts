import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { vmLayout } from '../../src/hypervisor/vm-layout.js';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import { mountPointsUnder } from '../../src/util/host-mounts.js';
import { kataTsBin, repoRoot, tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { kataTs, ociState } from '../helpers/oci-e2e.js';

type Phase = { name: string; reached: (ctx: { root: string; id: string; log: string; marker: string }) => Promise<boolean> };

const logHas = (text: string) => async ({ log }: { log: string }): Promise<boolean> => (await readFile(log, 'utf8').catch(() => '')).includes(text);

/** Where a create is cut short by SIGKILL, and how the test knows it got there. */
const phases: Phase[] = [
  { name: 'after QEMU started', reached: async ({ root, id }) => existsSync(vmLayout(sandboxDir(root, id)).pidFile) },
  { name: 'after the agent answered', reached: logHas('msg="CreateSandbox"') },
  { name: 'after CreateContainer', reached: logHas('msg="starting the carrier"') },
  { name: 'before the pid file (in a createRuntime hook)', reached: async ({ marker }) => existsSync(marker) },
];

/**
 * kill -9 of kata-ts create at each phase: afterwards `state` says stopped,
 * `delete --force` leaves no QEMU, pod process, carrier, VM dir or mount, and
 * a new create of the same id works.
 */
describe('faults: create killed at each phase', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let kata: ReturnType<typeof kataTs>;
  let vmDirsBefore: string[];

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-killed-'));
    root = path.join(dir, 'root');
    kata = kataTs(root);
    await buildImage();
    vmDirsBefore = await vmDirs();
  });
  after(async () => {
    await kata(['delete', '--force', 'victim']);
    await cleanup();
  });

  for (const [index, phase] of phases.entries()) {
    it(`killed ${phase.name}: state is stopped, delete --force leaves nothing`, { timeout: 120_000 }, async () => {
      const id = 'victim';
      const bundle = path.join(dir, `b${index}`);
      const marker = path.join(dir, `hook-${index}`);
      const log = path.join(dir, `create-${index}.log`);
      await makeBundle(bundle, {
        args: ['sleep', '1000'],
        hooks: { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${marker}; sleep 10`] }] },
      });
      const create = spawn(kataTsBin, ['--root', root, '--kata-config', path.join(repoRoot, 'configuration.toml'), '--log', log, '--debug', 'create', id, '--bundle', bundle, '--pid-file', path.join(dir, 'pid')], { stdio: 'ignore' });
      const exited = new Promise((resolve) => create.once('exit', resolve));
      const deadline = Date.now() + 90_000;
      while (!(await phase.reached({ root, id, log, marker }))) {
        assert.ok(Date.now() < deadline && create.exitCode === null, `create never got ${phase.name}: ${await readFile(log, 'utf8').catch(() => '')}`);
        await sleep(20);
      }
      create.kill('SIGKILL');
      await exited;

      assert.equal((await ociState(kata, id)).status, 'stopped', 'a create that died leaves a stopped container');
      const deleted = await kata(['delete', '--force', id]);
      assert.equal(deleted.exitCode, 0, deleted.stderr);
      assert.deepEqual(await untilNoneLeft(kataTsProcesses, 10_000), [], 'no QEMU, pod process or carrier is left');
      assert.deepEqual(await vmDirs(), vmDirsBefore, 'no VM dir is left');
      assert.deepEqual(await mountPointsUnder(sandboxDir(root, id)), []);
      assert.equal(existsSync(path.join(dir, 'pid')), false, 'no pid file was written');
      assert.match((await kata(['state', id])).stderr, /does not exist/);
    });
  }

  it('then a new create of the same id works', { timeout: 120_000 }, async () => {
    const bundle = path.join(dir, 'again');
    await makeBundle(bundle, { args: ['sh', '-c', 'echo again'] });
    const r = await kata(['run', 'victim', '--bundle', bundle]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'again');
    assert.deepEqual(await vmDirs(), vmDirsBefore);
  });
});
