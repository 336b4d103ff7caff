import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateId } from '../../src/store/container-id.js';
import { stateSchemaVersion, type ContainerState } from '../../src/store/container-state.js';
import { StateStore } from '../../src/store/state-store.js';
import { sandboxDir, sandboxLockDir, withSandboxLock } from '../../src/runtime/sandbox-record.js';
import { identify, isSameProcessAlive, parseStartTime } from '../../src/util/process-identity.js';
import { safeJoin } from '../../src/util/safe-path.js';
import { repoRoot, tempDir } from '../helpers/fixtures.js';

const sample = (id: string, extra: Partial<ContainerState> = {}): ContainerState => ({
  schemaVersion: stateSchemaVersion,
  id,
  bundle: '/bundles/' + id,
  status: 'created',
  created: new Date().toISOString(),
  annotations: {},
  sandboxId: id,
  ...extra,
});

describe('state store', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir: root, cleanup } = await tempDir()));
  after(() => cleanup());

  it('creates, reads, updates, lists and removes a container', async () => {
    const store = new StateStore(root);
    await store.create(sample('c1'));
    assert.equal((await store.read('c1')).status, 'created');
    await store.update('c1', (s) => ({ ...s, status: 'running' }));
    assert.equal((await store.read('c1')).status, 'running');
    assert.deepEqual((await store.list()).map((e) => e.id), ['c1']);
    await store.remove('c1');
    await assert.rejects(store.read('c1'), { code: 'NOT_FOUND', message: 'container c1 does not exist' });
  });

  it('refuses a second create of the same id and leaves the first intact', async () => {
    const store = new StateStore(root);
    await store.create(sample('dup', { bundle: '/first' }));
    await assert.rejects(store.create(sample('dup', { bundle: '/second' })), { code: 'ALREADY_EXISTS' });
    assert.equal((await store.read('dup')).bundle, '/first');
    await store.remove('dup');
  });

  it('never shows a reader half a state: writes go through a temp file and rename', async () => {
    const store = new StateStore(root);
    const big = 'x'.repeat(256 * 1024);
    await store.create(sample('atomic', { annotations: { v: '0', big } }));
    let reads = 0;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const state = await store.read('atomic'); // throws STATE_CORRUPT on a torn file
        assert.equal(state.annotations.big, big);
        reads += 1;
      }
    })();
    for (let i = 1; i <= 60; i++) await store.write(sample('atomic', { annotations: { v: String(i), big } }));
    writing = false;
    await reader;
    assert.ok(reads > 0);
    assert.equal((await store.read('atomic')).annotations.v, '60');
    const leftovers = (await readdir(store.dirOf('atomic'))).filter((f) => f.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
  });

  it('serializes concurrent writers in separate processes through the lock', async () => {
    const store = new StateStore(root);
    await store.create(sample('counter', { annotations: { count: '0' } }));
    const script = `
      import { StateStore } from ${JSON.stringify(path.join(repoRoot, 'src/store/state-store.ts'))};
      const store = new StateStore(process.argv[1]);
      for (let i = 0; i < 15; i++) {
        await store.update('counter', (s) => ({ ...s, annotations: { count: String(Number(s.annotations.count) + 1) } }));
      }`;
    const writers = Array.from({ length: 4 }, () =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, root], { stdio: 'inherit', cwd: repoRoot });
        child.on('exit', resolve);
      }),
    );
    assert.deepEqual(await Promise.all(writers), [0, 0, 0, 0]);
    assert.equal((await store.read('counter')).annotations.count, String(4 * 15));
  });

  it('a lock dies with its holder: SIGKILL frees it at once; a live holder makes others wait, then fail', { timeout: 30_000 }, async () => {
    const { withDirLock } = await import('../../src/store/state-lock.js');
    const lockDir = path.join(root, 'lock-test');
    await mkdir(lockDir, { recursive: true });
    const lockPath = path.join(lockDir, '.lock');
    const script = `
      import { withDirLock } from ${JSON.stringify(path.join(repoRoot, 'src/store/state-lock.ts'))};
      await withDirLock(process.argv[1], process.argv[2], async () => { process.stdout.write('held\\n'); await new Promise(() => setInterval(() => {}, 1000)); });`;
    const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, lockDir, lockPath], { stdio: ['ignore', 'pipe', 'inherit'], cwd: repoRoot });
    await new Promise<void>((resolve) => holder.stdout?.once('data', () => resolve()));
    await assert.rejects(withDirLock(lockDir, lockPath, async () => 'no', { waitMs: 300 }), { code: 'LOCKED', message: /locked by another kata-ts command/ });
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    const started = Date.now();
    assert.equal(await withDirLock(lockDir, lockPath, async () => 'mine', { waitMs: 5000 }), 'mine');
    assert.ok(Date.now() - started < 1000, 'no stale period to wait out');
  });

  /** A holds the lock and removes what it guards; B waits from before, C comes after: never both inside at once. */
  async function holderRemoves(lock: (name: string, fn: () => Promise<void>) => Promise<void>, remove: () => Promise<void>): Promise<string[]> {
    const events: string[] = [];
    let inside = 0;
    const enter = (name: string) => async (): Promise<void> => {
      inside++;
      events.push(`${name} in${inside > 1 ? ' WITH ANOTHER' : ''}`);
      await new Promise((resolve) => setTimeout(resolve, 150));
      inside--;
      events.push(`${name} out`);
    };
    let releaseA!: () => void;
    const aHolds = new Promise<void>((resolve) => (releaseA = resolve));
    let aIn!: () => void;
    const aEntered = new Promise<void>((resolve) => (aIn = resolve));
    const a = lock('A', async () => {
      events.push('A in');
      aIn();
      await aHolds;
      await remove();
      events.push('A out');
    });
    await aEntered;
    const b = lock('B', enter('B')).catch((err: Error) => void events.push(`B: ${err.message}`));
    await new Promise((resolve) => setTimeout(resolve, 100));
    releaseA();
    // C starts once A has removed it and is letting go.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const c = lock('C', enter('C')).catch((err: Error) => void events.push(`C: ${err.message}`));
    await Promise.all([a, b, c]);
    return events;
  }

  it('a sandbox lock whose holder removes the sandbox: a waiter and a newcomer never hold it together', async () => {
    const sandboxRoot = path.join(root, 'sandbox-root');
    for (let round = 0; round < 5; round++) {
      const sandbox = `sb${round}-${process.pid}`;
      const events = await holderRemoves(
        (_name, fn) => withSandboxLock(sandboxRoot, sandbox, fn, { waitMs: 10_000 }),
        () => rm(sandboxDir(sandboxRoot, sandbox), { recursive: true, force: true }),
      );
      assert.ok(!events.some((e) => e.includes('WITH ANOTHER')), events.join(', '));
      assert.deepEqual(events.filter((e) => e.endsWith(' in')).sort(), ['A in', 'B in', 'C in'], events.join(', '));
      await withSandboxLock(sandboxRoot, sandbox, async (lock) => lock.retire());
    }
    // Retired by the last holder, the lock files do not pile up.
    await withSandboxLock(sandboxRoot, 'retiring', async (lock) => lock.retire());
    assert.equal((await readdir(sandboxLockDir)).some((f) => f.startsWith(path.basename(sandboxDir(sandboxRoot, 'retiring')))), false);
  });

  it('a sandbox lock retired while others wait (the sandbox was deleted): still one holder at a time', async () => {
    const sandboxRoot = path.join(root, 'sandbox-root');
    for (let round = 0; round < 5; round++) {
      const sandbox = `retired${round}-${process.pid}`;
      let retire: (() => void) | undefined;
      const events = await holderRemoves(
        (name, fn) => withSandboxLock(sandboxRoot, sandbox, async (lock) => {
          if (name === 'A') retire = () => lock.retire();
          await fn();
        }, { waitMs: 10_000 }),
        async () => retire?.(),
      );
      assert.ok(!events.some((e) => e.includes('WITH ANOTHER')), events.join(', '));
      await withSandboxLock(sandboxRoot, sandbox, async (lock) => lock.retire());
    }
  });

  it('a container lock whose holder removes the container: the waiter and the newcomer find it gone', async () => {
    const store = new StateStore(root);
    await store.create(sample('doomed'));
    const events = await holderRemoves((_name, fn) => store.withLock('doomed', fn, { waitMs: 10_000 }), () => store.remove('doomed'));
    assert.deepEqual(events.filter((e) => !e.startsWith('A')).sort(), ['B: container doomed does not exist', 'C: container doomed does not exist']);
  });

  it('reports corrupt or foreign state clearly and lists it as an error', async () => {
    const store = new StateStore(root);
    await mkdir(path.join(root, 'broken'));
    await writeFile(path.join(root, 'broken', 'state.json'), '{"schemaVersion": 1, "id": "br');
    await assert.rejects(store.read('broken'), { code: 'STATE_CORRUPT', message: /not valid JSON/ });
    await mkdir(path.join(root, 'future'));
    await writeFile(path.join(root, 'future', 'state.json'), JSON.stringify({ ...sample('future'), schemaVersion: 99 }));
    await assert.rejects(store.read('future'), { code: 'STATE_CORRUPT', message: /schema version 99/ });
    const listed = await store.list();
    assert.ok(listed.find((e) => e.id === 'broken')?.error);
    await store.remove('broken');
    await store.remove('future');
  });

  it('rejects bad ids before touching the file system', async () => {
    const store = new StateStore(root);
    for (const bad of ['', '.', '..', '../etc', 'a/b', 'with space', 'semi;colon', 'ü']) {
      await assert.rejects(store.read(bad), { code: 'INVALID_ID' }, bad);
      await assert.rejects(store.create(sample(bad)), { code: 'INVALID_ID' }, bad);
    }
    for (const good of ['abc', 'A-b_c.d+e', '..x', '0123456789abcdef']) assert.equal(validateId(good), good);
  });

  it('joins paths safely', () => {
    assert.equal(safeJoin('/run/kata-ts', 'c1', 'state.json'), '/run/kata-ts/c1/state.json');
    assert.equal(safeJoin('/run/kata-ts', '/abs'), '/run/kata-ts/abs');
    assert.throws(() => safeJoin('/run/kata-ts', '..', 'etc'), { code: 'INVALID_ID' });
    assert.throws(() => safeJoin('/run/kata-ts', 'a/../../b'), { code: 'INVALID_ID' });
  });
});

describe('process identity', () => {
  it('parses the start time even when the command name holds spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = 'S';
    const stat = `1234 (evil) name (x)) ${fields.join(' ')}`;
    assert.equal(parseStartTime(stat), 22);
  });

  it('tells a live process from a dead one and from a recycled pid', async () => {
    const me = await identify(process.pid);
    assert.ok(me);
    assert.equal(await isSameProcessAlive(me), true);
    assert.equal(await isSameProcessAlive({ pid: me.pid, startTime: me.startTime + 1 }), false, 'same pid, other start time');
    const child = spawn('sleep', ['5']);
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const childId = await identify(child.pid as number);
    assert.ok(childId);
    assert.equal(await isSameProcessAlive(childId), true);
    child.kill('SIGKILL');
    await exited;
    assert.equal(await isSameProcessAlive(childId), false);
  });
});
