import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { OciHook } from '../../src/runtime/oci-spec-types.js';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import { tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses } from '../helpers/leaks.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { kataTs, ociState, sandboxProcesses, waitForStatus } from '../helpers/oci-e2e.js';
import { ownedNetnsName } from '../../src/network/pod-network.js';

/** A hook that appends its name and the state it got on stdin to a log: `<name> <state JSON>`. */
function recorder(log: string, name: string, extra = ''): OciHook {
  return { path: '/bin/sh', args: ['sh', '-c', `printf '%s %s\\n' "${name}" "$(cat)" >> ${log}${extra}`] };
}

interface Recorded {
  name: string;
  state: { id: string; status: string; pid?: number; bundle: string };
}

async function recorded(log: string): Promise<Recorded[]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((line) => {
    const space = line.indexOf(' ');
    return { name: line.slice(0, space), state: JSON.parse(line.slice(space + 1)) as Recorded['state'] };
  });
}

/** runtime-spec's lifecycle hooks, run on the host with the state on stdin. */
describe('OCI hooks', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let kata: ReturnType<typeof kataTs>;

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-hooks-'));
    root = path.join(dir, 'root');
    kata = kataTs(root);
  });
  after(async () => {
    for (const id of ['ok', 'badpre', 'slowpre']) await kata(['delete', '--force', id]);
    await cleanup();
  });

  it('prestart, createRuntime, poststart and poststop run in order with the state; poststart finds the first output; a failing poststart only warns', { timeout: 120_000 }, async () => {
    const log = path.join(dir, 'ok.log');
    // The carrier keeps create's stdout and stderr: a file, not a pipe the test would wait on.
    const output = path.join(dir, 'ok.out');
    const bundle = await makeBundle(path.join(dir, 'ok'), {
      args: ['sh', '-c', 'echo first words; sleep 1; exit 0'],
      hooks: {
        createRuntime: [recorder(log, 'createRuntime')],
        // Its own pid ($$: the helper execs it), and the namespace it runs in.
        prestart: [recorder(log, 'prestart', `; echo "$$ $(readlink /proc/self/ns/net)" >> ${log}.netns`)],
        poststart: [recorder(log, 'poststart', '; exit 7'), recorder(log, 'poststart2', `; grep -c "first words" ${output} >> ${log}.found`)],
        poststop: [recorder(log, 'poststop')],
        createContainer: [recorder(log, 'createContainer')],
      },
    });
    const createLog = path.join(dir, 'ok.create.log');
    const created = await kata(['--log', createLog, 'create', 'ok', '--bundle', bundle], { outputFile: output });
    assert.equal(created.exitCode, 0, await readFile(output, 'utf8'));
    const warning = /createContainer hooks run in the container's namespaces, which are inside the VM; kata-ts does not run them/;
    assert.match(await readFile(createLog, 'utf8'), warning, 'the warning is in --log');
    // create's stderr is the container's (the carrier keeps it): callers log it as the container's output.
    assert.doesNotMatch(await readFile(output, 'utf8'), /kata-ts/, 'and not in the container\'s output');
    const pid = (await ociState(kata, 'ok')).pid;
    const { qemu, dir: vmDir } = await sandboxProcesses(root, 'ok');
    const qemuNetns = await readlink(`/proc/${qemu!.pid}/ns/net`);
    const ownNetns = `/run/netns/${ownedNetnsName(vmDir)}`;
    assert.ok(existsSync(ownNetns), 'a network namespace was made for the prestart hooks');
    const started = await kata(['start', 'ok']);
    assert.equal(started.exitCode, 0, started.stderr);
    assert.match(started.stderr, /warning: poststart hook failed: \/bin\/sh exited with 7/);
    await waitForStatus(kata, 'ok', 'stopped');
    assert.equal((await kata(['delete', 'ok'])).exitCode, 0);
    const hooks = await recorded(log);
    assert.deepEqual(hooks.map((h) => h.name), ['prestart', 'createRuntime', 'poststart', 'poststart2', 'poststop'], 'in order (runc\'s and crun\'s); the failed poststart did not stop the next');
    assert.equal(await readFile(`${log}.found`, 'utf8'), '1\n', 'poststart ran after the process had started and its first output had arrived');
    for (const h of hooks) {
      assert.equal(h.state.id, 'ok');
      assert.equal(h.state.bundle, bundle);
    }
    assert.deepEqual(hooks.map((h) => h.state.status), ['creating', 'created', 'running', 'running', 'stopped'], 'prestart before the VM (Kata 1.x), the others as crun gives them');
    assert.equal(hooks[1]?.state.pid, pid, 'createRuntime: the container\'s pid');
    // Kata 1.x: prestart runs in the sandbox's network namespace, before the VM exists, and its pid names that namespace.
    const [hookPid, hookNetns] = (await readFile(`${log}.netns`, 'utf8')).trim().split(' ');
    assert.equal(hooks[0]?.state.pid, Number(hookPid), 'prestart: its own pid');
    assert.equal(hookNetns, qemuNetns, 'prestart ran in the namespace QEMU runs in');
    assert.notEqual(hookNetns, await readlink('/proc/self/ns/net'), 'which is not the host\'s');
    assert.equal(existsSync(ownNetns), false, 'the namespace kata-ts made is gone with the sandbox');
  });

  it('a failing prestart hook fails create with its reason, and nothing is left', { timeout: 120_000 }, async () => {
    const bundle = await makeBundle(path.join(dir, 'badpre'), { args: ['true'], hooks: { prestart: [{ path: '/bin/sh', args: ['sh', '-c', 'echo no network for you >&2; exit 3'] }] } });
    const created = await kata(['create', 'badpre', '--bundle', bundle]);
    assert.equal(created.exitCode, 1);
    assert.equal(created.stderr, 'kata-ts: prestart hook failed: /bin/sh exited with 3: no network for you');
    assert.equal((await kata(['state', 'badpre'])).exitCode, 1, 'no state');
    assert.equal(existsSync(sandboxDir(root, 'badpre')), false, 'no VM dir');
    assert.equal(existsSync(`/run/netns/${ownedNetnsName(sandboxDir(root, 'badpre'))}`), false, 'no network namespace');
    assert.deepEqual(await kataTsProcesses(), [], 'no QEMU, pod process or carrier');
  });

  it('a createRuntime hook past its timeout fails create, and nothing is left', { timeout: 120_000 }, async () => {
    const bundle = await makeBundle(path.join(dir, 'slowpre'), { args: ['true'], hooks: { createRuntime: [{ path: '/bin/sleep', args: ['sleep', '30'], timeout: 1 }] } });
    const started = Date.now();
    const created = await kata(['create', 'slowpre', '--bundle', bundle]);
    assert.equal(created.exitCode, 1);
    assert.equal(created.stderr, 'kata-ts: createRuntime hook failed: /bin/sleep timed out after 1 s');
    assert.ok(Date.now() - started < 25_000, 'the hook was not waited for');
    assert.equal(existsSync(sandboxDir(root, 'slowpre')), false, 'no VM dir');
    assert.deepEqual(await kataTsProcesses(), [], 'no QEMU, pod process or carrier');
  });
});
