import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { podIdentityPath } from '../../src/pod/pod-layout.js';
import { sandboxDir } from '../../src/runtime/sandbox-record.js';
import { isSameProcessAlive, type ProcessIdentity } from '../../src/util/process-identity.js';
import { tempDir } from '../helpers/fixtures.js';
import { processesMatching } from '../helpers/leaks.js';
import { joinSandbox, makeBundle } from '../helpers/oci-bundle.js';
import { assertSandboxGone, kataTs, ociState, sandboxProcesses, waitForStatus } from '../helpers/oci-e2e.js';

const counter = ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo line $i; sleep 0.2; done'];

async function carrierOf(root: string, id: string): Promise<ProcessIdentity> {
  return (JSON.parse(await readFile(path.join(root, id, 'state.json'), 'utf8')) as { carrier: ProcessIdentity }).carrier;
}

async function currentPod(root: string): Promise<ProcessIdentity> {
  return JSON.parse(await readFile(podIdentityPath(sandboxDir(root, 'pod')), 'utf8')) as ProcessIdentity;
}

/** The last "line N" a counting container wrote. */
async function lastLine(file: string): Promise<number> {
  const lines = (await readFile(file, 'utf8')).trim().split('\n').filter((l) => /^line \d+$/.test(l));
  return Number(lines.at(-1)?.split(' ')[1] ?? 0);
}

async function waitUntil(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(200);
  }
}

/** The pod process and the carriers: what survives whose death. One VM for the file. */
describe('one pod process per sandbox, one carrier per process', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let kata: ReturnType<typeof kataTs>;
  const carriers: ProcessIdentity[] = [];
  const pods: ProcessIdentity[] = [];

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-podproc-'));
    root = path.join(dir, 'root');
    const plain = kataTs(root);
    // Every command, the pod process and the carriers log here: the story of a failure.
    kata = (args, options) => plain(['--log', path.join(dir, 'kata.log'), '--debug', ...args], options);
    const bundle = await makeBundle(path.join(dir, 'pod'), { args: counter });
    const created = await kata(['create', 'pod', '--bundle', bundle], { outputFile: path.join(dir, 'pod.out') });
    assert.equal(created.exitCode, 0, await readFile(path.join(dir, 'pod.out'), 'utf8'));
    assert.equal((await kata(['start', 'pod'])).exitCode, 0);
    carriers.push(await carrierOf(root, 'pod'));
  });

  after(async (t) => {
    if (process.env.KATA_TS_TEST_LOG) process.stderr.write(await readFile(path.join(dir, 'kata.log'), 'utf8').catch(() => ''));
    const leftovers = await sandboxProcesses(root, 'pod').catch(() => undefined);
    for (const id of ['member', 'pod']) await kata(['delete', '--force', id]);
    if (leftovers) await assertSandboxGone(leftovers, carriers);
    for (const pod of pods) assert.equal(await isSameProcessAlive(pod), false, `pod process ${pod.pid} is gone`);
    await cleanup();
  });

  it('kill -9 of the pod process while a container streams: it stays running, output resumes, exec works again', { timeout: 120_000 }, async () => {
    const out = path.join(dir, 'pod.out');
    await waitUntil('the container prints', async () => (await lastLine(out)) >= 5);
    const pod = await currentPod(root);
    pods.push(pod);
    process.kill(pod.pid, 'SIGKILL');
    await waitUntil('the pod process is dead', async () => !(await isSameProcessAlive(pod)));
    const state = await ociState(kata, 'pod');
    assert.equal(state.status, 'running', 'nothing observed the process end');
    assert.equal(state.pid, carriers[0]?.pid, 'the carrier is still the pid');
    // The carrier starts a pod process again and attaches; the output goes on where it was.
    const before = await lastLine(out);
    await waitUntil('output resumes', async () => (await lastLine(out)) >= before + 5);
    const exec = await kata(['exec', 'pod', 'sh', '-c', 'echo exec works; exit 4']);
    assert.equal(exec.exitCode, 4, exec.stderr);
    assert.equal(exec.stdout, 'exec works');
    const again = await currentPod(root);
    assert.notEqual(again.pid, pod.pid, 'a new pod process serves the sandbox');
    pods.push(again);
    assert.equal((await ociState(kata, 'pod')).status, 'running');
  });

  it('kill -9 of a carrier: its process dies, and the container is reported stopped', { timeout: 120_000 }, async () => {
    const bundle = await makeBundle(path.join(dir, 'member'), { args: counter, annotations: joinSandbox('pod') });
    const out = path.join(dir, 'member.out');
    assert.equal((await kata(['create', 'member', '--bundle', bundle], { outputFile: out })).exitCode, 0, await readFile(out, 'utf8'));
    assert.equal((await kata(['start', 'member'])).exitCode, 0);
    await waitUntil('the member prints', async () => (await lastLine(out)) >= 3);
    const carrier = await carrierOf(root, 'member');
    process.kill(carrier.pid, 'SIGKILL');
    await waitForStatus(kata, 'member', 'stopped');
    // The process in the guest is gone: its output stops.
    await sleep(1500);
    const stoppedAt = await lastLine(out);
    await sleep(1500);
    assert.equal(await lastLine(out), stoppedAt, 'no output after the carrier died');
    const ps = await kata(['ps', 'member']);
    assert.equal(ps.exitCode, 1);
    assert.match(ps.stderr, /container not running/);
    assert.equal((await ociState(kata, 'pod')).status, 'running', 'the other container lives on');
    assert.equal((await kata(['delete', 'member'])).exitCode, 0);
  });

  it('kill -9 of QEMU: every process of the sandbox is reported lost (255), the container stopped, and delete cleans up', { timeout: 120_000 }, async () => {
    const leftovers = await sandboxProcesses(root, 'pod');
    assert.ok(leftovers.qemu, 'the sandbox records its QEMU');
    // An exec in the foreground: its exit status is what a caller sees.
    const exec = kata(['exec', 'pod', 'sleep', '600']);
    await waitUntil('the exec runs', async () => {
      const ps = await kata(['ps', 'pod']);
      return ps.exitCode === 0 && /sleep 600$/m.test(ps.stdout);
    });
    // The guest runs it before the exec command has its carrier attached: give that a moment.
    await sleep(2000);
    const pod = await currentPod(root);
    pods.push(pod);
    process.kill(leftovers.qemu.pid, 'SIGKILL');
    // Observed at once: state reads that the VM is gone.
    await waitUntil('QEMU is dead', async () => !(await isSameProcessAlive(leftovers.qemu!)));
    const state = await ociState(kata, 'pod');
    assert.equal(state.status, 'stopped');
    assert.equal(state.pid, 0);
    const execResult = await exec;
    assert.equal(execResult.exitCode, 255, `the exec's status is lost: ${execResult.stderr}`);
    await waitUntil('the container\'s carrier exits', async () => !(await isSameProcessAlive(carriers[0]!)), 20_000);
    await waitUntil('the pod process exits', async () => !(await isSameProcessAlive(pod)), 20_000);
    const refused = await kata(['exec', 'pod', 'true']);
    assert.notEqual(refused.exitCode, 0);
    assert.match(refused.stderr, /container not running/);
    const deleted = await kata(['delete', 'pod']);
    assert.equal(deleted.exitCode, 0, deleted.stderr);
    await assertSandboxGone(leftovers, carriers);
  });
});

/** QEMU dies while no pod process runs: the pod process a carrier starts again finds the VM gone and says so. */
describe('QEMU and the pod process both killed', () => {
  it('the carriers start a pod process, learn their processes are lost (255), and delete cleans up', { timeout: 120_000 }, async () => {
    const { dir, cleanup } = await tempDir('kata-ts-podgone-');
    const root = path.join(dir, 'root');
    const plain = kataTs(root);
    const log = path.join(dir, 'kata.log');
    const kata: ReturnType<typeof kataTs> = (args, options) => plain(['--log', log, '--debug', ...args], options);
    try {
      const bundle = await makeBundle(path.join(dir, 'pod'), { args: counter });
      assert.equal((await kata(['create', 'pod', '--bundle', bundle], { outputFile: path.join(dir, 'pod.out') })).exitCode, 0);
      assert.equal((await kata(['start', 'pod'])).exitCode, 0);
      const carrier = await carrierOf(root, 'pod');
      const leftovers = await sandboxProcesses(root, 'pod');
      const pod = await currentPod(root);
      // Stopped first, so that it cannot observe QEMU's death before it dies itself.
      process.kill(pod.pid, 'SIGSTOP');
      process.kill(leftovers.qemu!.pid, 'SIGKILL');
      process.kill(pod.pid, 'SIGKILL');
      await waitUntil('the carrier exits', async () => !(await isSameProcessAlive(carrier)), 30_000);
      assert.match(await readFile(log, 'utf8'), /the VM of sandbox pod is gone: its processes are reported lost \(status 255\)/);
      assert.match(await readFile(log, 'utf8'), /the process exited: status 255/);
      assert.equal((await ociState(kata, 'pod')).status, 'stopped');
      const deleted = await kata(['delete', 'pod']);
      assert.equal(deleted.exitCode, 0, deleted.stderr);
      await waitUntil('the restarted pod process exits', async () => (await processesMatching(leftovers.dir)).length === 0, 15_000);
      await assertSandboxGone(leftovers, [carrier, pod]);
    } finally {
      if (process.env.KATA_TS_TEST_LOG) process.stderr.write(await readFile(log, 'utf8').catch(() => ''));
      await kata(['delete', '--force', 'pod']);
      await cleanup();
    }
  });
});

/** The pod lock is a flock in the root-only VM dir; its abstract socket name of old could be taken by anyone. */
describe('a local user cannot lock a sandbox out of its pod process', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('kata-ts-podlock-')));
  after(() => cleanup());

  it('nobody binds the abstract name the pod lock once was; kata-ts run still works', { timeout: 120_000 }, async () => {
    const root = path.join(dir, 'root');
    const squatter = spawn(process.execPath, ['-e', `
      const net = require('net');
      net.createServer().listen(${JSON.stringify(`\0kata-ts-pod:${sandboxDir(root, 'squatted')}`)}, () => console.log('bound'));
    `], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [bound] = await once(squatter.stdout, 'data') as [Buffer];
      assert.equal(bound.toString().trim(), 'bound', 'the name is taken, by uid 65534');
      const bundle = await makeBundle(path.join(dir, 'b'), { args: ['echo', 'still served'] });
      const run = await kataTs(root)(['run', '--bundle', bundle, 'squatted']);
      assert.equal(run.exitCode, 0, run.stderr);
      assert.equal(run.stdout, 'still served');
    } finally {
      squatter.kill('SIGKILL');
    }
  });
});
