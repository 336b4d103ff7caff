import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { joinSandbox, makeBundle } from '../helpers/oci-bundle.js';
import { kataTs, ociState } from '../helpers/oci-e2e.js';

const forever = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];

/**
 * Commands racing each other: parallel lifecycles in separate sandboxes,
 * containers joining one pod at once, exec/kill/delete on one container, and
 * two creates of one id. Every command ends with a status and at most one
 * line of error, and nothing is left behind.
 */
describe('concurrency', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let kata: ReturnType<typeof kataTs>;
  let vmDirsBefore: string[];
  const figures = { commands: 0 };
  const bundle = (name: string): string => path.join(dir, 'bundles', name);
  const run = async (args: string[], options = {}): Promise<Awaited<ReturnType<typeof kata>>> => {
    figures.commands++;
    return kata(args, { timeoutMs: 300_000, ...options });
  };

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-concurrency-'));
    kata = kataTs(path.join(dir, 'root'));
    await buildImage();
    vmDirsBefore = await vmDirs();
  });
  after(async () => {
    for (const id of ['pod', 'target', 'twin']) await kata(['delete', '--force', id]);
    process.stderr.write(`# concurrency: ${figures.commands} commands raced\n`);
    await cleanup();
  });

  it('4 lifecycles in parallel, each in its own sandbox', { timeout: 400_000 }, async () => {
    const ids = ['p1', 'p2', 'p3', 'p4'];
    for (const id of ids) await makeBundle(bundle(id), { args: ['sh', '-c', `echo hello from ${id}`] });
    const results = await Promise.all(ids.map((id) => run(['run', id, '--bundle', bundle(id)])));
    for (const [i, r] of results.entries()) {
      assert.equal(r.exitCode, 0, `${ids[i]}: ${r.stderr}`);
      assert.equal(r.stdout, `hello from ${ids[i]}`);
    }
    assert.deepEqual(await untilNoneLeft(kataTsProcesses, 15_000), []);
    assert.deepEqual(await vmDirs(), vmDirsBefore);
  });

  it('4 containers join one pod at once', { timeout: 400_000 }, async () => {
    await makeBundle(bundle('pod'), { args: forever, annotations: { 'io.kubernetes.cri.container-type': 'sandbox' } });
    const created = await run(['create', 'pod', '--bundle', bundle('pod')], { outputFile: path.join(dir, 'pod.out') });
    assert.equal(created.exitCode, 0, await readFile(path.join(dir, 'pod.out'), 'utf8'));
    assert.equal((await run(['start', 'pod'])).exitCode, 0);
    const ids = ['j1', 'j2', 'j3', 'j4'];
    for (const id of ids) await makeBundle(bundle(id), { args: ['sh', '-c', `echo joined ${id}; cat /proc/sys/kernel/random/boot_id`], annotations: joinSandbox('pod') });
    const results = await Promise.all(ids.map((id) => run(['run', id, '--bundle', bundle(id)])));
    const bootIds = new Set<string>();
    for (const [i, r] of results.entries()) {
      assert.equal(r.exitCode, 0, `${ids[i]}: ${r.stderr}`);
      const [line, bootId] = r.stdout.split('\n');
      assert.equal(line, `joined ${ids[i]}`);
      bootIds.add(bootId ?? '');
    }
    assert.equal(bootIds.size, 1, 'all four ran in the one VM');
    assert.equal((await run(['list', '-q'])).stdout, 'pod');
    assert.equal((await run(['delete', '--force', 'pod'])).exitCode, 0);
    assert.deepEqual(await untilNoneLeft(kataTsProcesses, 15_000), []);
    assert.deepEqual(await vmDirs(), vmDirsBefore);
  });

  it('exec, kill and delete --force on one container at once: delete wins, every command ends cleanly', { timeout: 400_000 }, async () => {
    await makeBundle(bundle('target'), { args: forever });
    const created = await run(['create', 'target', '--bundle', bundle('target')], { outputFile: path.join(dir, 'target.out') });
    assert.equal(created.exitCode, 0, await readFile(path.join(dir, 'target.out'), 'utf8'));
    assert.equal((await run(['start', 'target'])).exitCode, 0);
    const racers = await Promise.all([
      run(['exec', 'target', 'sh', '-c', 'sleep 1; echo exec1']),
      run(['exec', 'target', 'echo', 'exec2']),
      run(['kill', 'target', 'TERM']),
      run(['delete', '--force', 'target']),
      run(['exec', 'target', 'true']),
      run(['state', 'target']),
      run(['ps', 'target']),
    ]);
    for (const r of racers) {
      assert.ok([0, 1, 137, 143, 255].includes(r.exitCode), `status ${r.exitCode}: ${r.stderr}`);
      assert.ok(r.stderr.trim().split('\n').filter(Boolean).length <= 1, `at most one line of error: ${r.stderr}`);
    }
    assert.equal(racers[3]?.exitCode, 0, `delete --force: ${racers[3]?.stderr}`);
    assert.match((await run(['state', 'target'])).stderr, /container target does not exist/);
    assert.deepEqual(await untilNoneLeft(kataTsProcesses, 15_000), []);
    assert.deepEqual(await vmDirs(), vmDirsBefore);
  });

  it('two creates of one id at once: exactly one wins', { timeout: 400_000 }, async () => {
    await makeBundle(bundle('twin'), { args: forever });
    const [a, b] = await Promise.all([0, 1].map((n) => run(['create', 'twin', '--bundle', bundle('twin')], { outputFile: path.join(dir, `twin-${n}.out`) })));
    const outcomes = [a?.exitCode, b?.exitCode].sort();
    assert.deepEqual(outcomes, [0, 1], `exactly one create wins: ${await readFile(path.join(dir, 'twin-0.out'), 'utf8')} ${await readFile(path.join(dir, 'twin-1.out'), 'utf8')}`);
    const loser = a?.exitCode === 1 ? 0 : 1;
    assert.match(await readFile(path.join(dir, `twin-${loser}.out`), 'utf8'), /already exists/);
    assert.equal((await ociState(kata, 'twin')).status, 'created');
    assert.equal((await run(['delete', '--force', 'twin'])).exitCode, 0);
    assert.deepEqual(await untilNoneLeft(kataTsProcesses, 15_000), []);
    assert.deepEqual(await vmDirs(), vmDirsBefore);
  });
});
