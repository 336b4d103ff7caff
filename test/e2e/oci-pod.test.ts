import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { loadNativeAddon } from '../../src/util/native-addon.js';
import type { ProcessIdentity } from '../../src/util/process-identity.js';
import { kataTsBin, tempDir } from '../helpers/fixtures.js';
import { joinSandbox, makeBundle } from '../helpers/oci-bundle.js';
import { assertSandboxGone, kataTs, ociState, sandboxProcesses, waitForStatus, type SandboxLeftovers } from '../helpers/oci-e2e.js';
import { PtySession } from '../helpers/pty-session.js';
import tty from 'node:tty';

const forever = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];
/**
 * The same, forking once at its start: the pids-limit test below fills the
 * container's cgroup, and a shell whose fork fails there exits ("can't fork"),
 * which a loop of sleeps would hit by chance.
 */
const foreverForkingOnce = ['sh', '-c', 'trap "exit 0" TERM; sleep 100000 & wait'];

async function carrierOf(root: string, id: string): Promise<ProcessIdentity> {
  const state = JSON.parse(await readFile(path.join(root, id, 'state.json'), 'utf8')) as { carrier: ProcessIdentity };
  return state.carrier;
}

/**
 * One VM for the whole file: a sandbox container, then containers that join
 * it through CRI annotations, each exercising a part of the OCI lifecycle.
 */
describe('OCI lifecycle in one pod (CRI annotations): one VM, several containers', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let root: string;
  let kata: ReturnType<typeof kataTs>;
  let pod: SandboxLeftovers;
  const carriers: ProcessIdentity[] = [];
  const bundle = (name: string): string => path.join(dir, 'bundles', name);

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-pod-'));
    root = path.join(dir, 'root');
    kata = kataTs(root);
    await buildImage();
    await makeBundle(bundle('pod'), { args: forever, annotations: { 'io.kubernetes.cri.container-type': 'sandbox' } });
    const created = await kata(['create', 'pod', '--bundle', bundle('pod')], { outputFile: path.join(dir, 'pod.out') });
    assert.equal(created.exitCode, 0, await readFile(path.join(dir, 'pod.out'), 'utf8'));
    assert.equal((await kata(['start', 'pod'])).exitCode, 0);
    pod = await sandboxProcesses(root, 'pod');
    carriers.push(await carrierOf(root, 'pod'));
  });

  after(async () => {
    for (const id of ['life', 'svc', 'pod']) await kata(['delete', '--force', id]);
    await cleanup();
  });

  it('create, start, state, kill, delete', { timeout: 120_000 }, async () => {
    await makeBundle(bundle('life'), { args: ['sh', '-c', 'trap "echo got TERM; exit 5" TERM; echo ready; while :; do sleep 0.2; done'], annotations: joinSandbox('pod') });
    const out = path.join(dir, 'life.out');
    const pidFile = path.join(dir, 'life.pid');
    const created = await kata(['create', 'life', '--bundle', bundle('life'), '--pid-file', pidFile], { outputFile: out });
    assert.equal(created.exitCode, 0, await readFile(out, 'utf8'));
    const state = await ociState(kata, 'life');
    assert.equal(state.status, 'created');
    assert.equal(state.pid, Number(await readFile(pidFile, 'utf8')), 'the pid file holds the container pid (its carrier)');
    assert.equal(state.annotations['io.kubernetes.cri.sandbox-id'], 'pod');
    carriers.push(await carrierOf(root, 'life'));
    assert.equal((await kata(['start', 'life'])).exitCode, 0);
    assert.equal((await ociState(kata, 'life')).status, 'running');
    assert.match((await kata(['start', 'life'])).stderr, /cannot start container life: it is running/);
    const list = await kata(['list', '--format', 'json']);
    assert.deepEqual((JSON.parse(list.stdout) as Array<{ id: string }>).map((c) => c.id), ['life', 'pod']);
    const deleteRunning = await kata(['delete', 'life']);
    assert.equal(deleteRunning.exitCode, 1);
    assert.match(deleteRunning.stderr, /it is running .*--force/);
    assert.equal((await kata(['kill', 'life', 'TERM'])).exitCode, 0);
    await waitForStatus(kata, 'life', 'stopped');
    const stopped = await ociState(kata, 'life');
    assert.equal(stopped.pid, 0, 'a stopped container has pid 0');
    assert.equal(await readFile(out, 'utf8'), 'ready\ngot TERM\n');
    const killStopped = await kata(['kill', 'life', 'KILL']);
    assert.equal(killStopped.exitCode, 1);
    assert.match(killStopped.stderr, /container not running/);
    assert.equal((await kata(['delete', 'life'])).exitCode, 0);
    assert.match((await kata(['state', 'life'])).stderr, /container life does not exist/);
    assert.equal((await ociState(kata, 'pod')).status, 'running', 'the sandbox outlives its other containers');
  });

  it('run in the pod: stdout, stderr and exit status, 128+signal when killed', { timeout: 120_000 }, async () => {
    await makeBundle(bundle('run7'), { args: ['sh', '-c', 'echo out; echo err >&2; exit 7'], annotations: joinSandbox('pod') });
    const r = await kata(['run', 'run7', '--bundle', bundle('run7')]);
    assert.equal(r.stdout, 'out');
    assert.equal(r.stderr, 'err');
    assert.equal(r.exitCode, 7);
    // Signals from inside do not kill a pid namespace's init: kill it from outside, while run waits.
    await makeBundle(bundle('run-killed'), { args: ['sh', '-c', 'echo up; while :; do sleep 1; done'], annotations: joinSandbox('pod') });
    const out = path.join(dir, 'run-killed.out');
    const running = kata(['run', 'run-killed', '--bundle', bundle('run-killed')], { outputFile: out });
    for (let i = 0; i < 600 && !(await readFile(out, 'utf8').catch(() => '')).includes('up'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal((await kata(['kill', 'run-killed', '9'])).exitCode, 0);
    assert.equal((await running).exitCode, 137, 'exit status 128 + SIGKILL');
    assert.equal((await kata(['list', '-q'])).stdout, 'pod', 'run deletes its container');
  });

  it('exec: stdio relayed, exit status, --env, --cwd, --process; ps; pause and resume', { timeout: 120_000 }, async () => {
    await makeBundle(bundle('svc'), { args: foreverForkingOnce, annotations: joinSandbox('pod') });
    assert.equal((await kata(['create', 'svc', '--bundle', bundle('svc')], { outputFile: path.join(dir, 'svc.out') })).exitCode, 0);
    carriers.push(await carrierOf(root, 'svc'));
    assert.equal((await kata(['start', 'svc'])).exitCode, 0);
    const read = await kata(['exec', 'svc', 'sh', '-c', 'read line; echo got:$line; echo to-stderr >&2; exit 3'], { input: 'abc\n' });
    assert.deepEqual([read.stdout, read.stderr, read.exitCode], ['got:abc', 'to-stderr', 3]);
    const env = await kata(['exec', '--env', 'FOO=bar', '--cwd', '/tmp', 'svc', 'sh', '-c', 'echo $FOO $(pwd) $PATH']);
    assert.equal(env.stdout, 'bar /tmp /bin');
    const processFile = path.join(dir, 'process.json');
    await writeFile(processFile, JSON.stringify({ args: ['sh', '-c', 'echo from-file; id -u'], env: ['PATH=/bin'], cwd: '/', user: { uid: 1000, gid: 1000 } }));
    const fromFile = await kata(['exec', '--process', processFile, 'svc']);
    assert.equal(fromFile.stdout, 'from-file\n1000');
    const ps = await kata(['ps', 'svc']);
    assert.equal(ps.exitCode, 0);
    assert.match(ps.stdout, /^PID\s+UID\s+STAT\s+CMD/);
    assert.match(ps.stdout, /sh -c trap/);
    // JSON is for callers that match host processes (docker top): host pids, the container's carrier among them, never guest pids.
    const pids = JSON.parse((await kata(['ps', '--format', 'json', 'svc'])).stdout) as number[];
    assert.ok(pids.includes((await ociState(kata, 'svc')).pid), `the carrier is listed: ${pids.join(' ')}`);
    for (const pid of pids) assert.match(await readFile(`/proc/${pid}/cmdline`, 'utf8'), /kata-ts-carrier/, `${pid} is a carrier on the host`);
    // runc events: one stats line with --stats, a line per --interval otherwise (the guest's cgroup figures).
    const once = await kata(['events', '--stats', 'svc']);
    assert.equal(once.exitCode, 0, once.stderr);
    const event = JSON.parse(once.stdout) as { type: string; id: string; data: { pids: { current: number }; memory: { usage: { usage: number } }; cpu: { usage: { total: number } } } };
    assert.deepEqual([event.type, event.id], ['stats', 'svc']);
    assert.ok(event.data.pids.current >= 1 && event.data.memory.usage.usage > 0 && event.data.cpu.usage.total > 0, JSON.stringify(event.data));
    const streamed = await kata(['events', '--interval', '300ms', 'svc'], { timeoutMs: 2500 });
    assert.ok(streamed.stdout.trim().split('\n').filter((l) => JSON.parse(l).type === 'stats').length >= 2, streamed.stdout);
    assert.equal((await kata(['pause', 'svc'])).exitCode, 0);
    assert.equal((await ociState(kata, 'svc')).status, 'paused');
    assert.match((await kata(['exec', 'svc', 'true'])).stderr, /it is paused/);
    assert.equal((await kata(['resume', 'svc'])).exitCode, 0);
    assert.equal((await ociState(kata, 'svc')).status, 'running');
    assert.equal((await kata(['exec', 'svc', 'true'])).exitCode, 0);
  });

  it('update: pids and memory limits reach the container\'s cgroup in the guest, and bad input is refused', { timeout: 120_000 }, async () => {
    const forks = ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait; echo forked'];
    assert.equal((await kata(['update', '--pids-limit', '6', 'svc'])).exitCode, 0);
    const limited = await kata(['exec', 'svc', ...forks]);
    assert.match(limited.stderr, /can't fork/, 'the 6-process limit holds');
    assert.equal((await kata(['update', '--resources', '-', 'svc'], { input: JSON.stringify({ pids: { limit: 200 } }) })).exitCode, 0);
    const raised = await kata(['exec', 'svc', ...forks]);
    assert.deepEqual([raised.exitCode, raised.stdout, raised.stderr], [0, 'forked', ''], 'the raised limit from --resources - (stdin, as containerd passes it)');

    assert.equal((await kata(['update', '--memory', '16m', 'svc'])).exitCode, 0);
    // tail buffers /dev/zero (no newline ever) until the memory cgroup kills it.
    const hog = await kata(['exec', 'svc', 'sh', '-c', 'timeout 20 tail /dev/zero; echo status $?']);
    assert.equal(hog.stdout, 'status 137', 'OOM-killed at 16 MiB, not stopped by the timeout');
    const grown = await kata(['update', '--memory', '1g', 'svc']);
    assert.equal(grown.exitCode, 0, grown.stderr);

    // Zero and absent mean "unchanged", as in runc: docker update --restart sends all zeros.
    assert.equal((await kata(['update', '--pids-limit', '6', 'svc'])).exitCode, 0);
    const zeros = await kata(['update', '--resources', '-', 'svc'], { input: JSON.stringify({ memory: { limit: 0, swap: 0 }, cpu: { shares: 0, quota: 0, period: 0 }, pids: { limit: 0 } }) });
    assert.deepEqual([zeros.exitCode, zeros.stderr], [0, ''], 'all zeros: taken');
    assert.equal((await kata(['update', 'svc'])).exitCode, 0, 'no flag at all: the same');
    assert.match((await kata(['exec', 'svc', ...forks])).stderr, /can't fork/, 'the 6-process limit set before stands: nothing was reset');
    assert.equal((await kata(['update', '--pids-limit', '200', 'svc'])).exitCode, 0);
    for (const [args, message] of [
      [['update', '--memory', 'lots', 'svc'], /--memory lots: expected a size/],
      [['update', '--pids-limit', '10', 'no-such'], /container no-such does not exist/],
    ] as const) {
      const r = await kata([...args]);
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    }
    const badJson = await kata(['update', '--resources', '-', 'svc'], { input: '{not json' });
    assert.equal(badJson.exitCode, 1);
    assert.match(badJson.stderr, /cannot read resources from stdin/);
  });

  it('exec --tty through a real pty: a terminal in the guest, window size follows SIGWINCH', { timeout: 120_000 }, async () => {
    const session = new PtySession(kataTsBin, ['--root', root, 'exec', '--tty', 'svc', 'sh'], { rows: 24, columns: 80 });
    try {
      await session.waitFor(/\/ # /);
      session.type('stty size; tty\r');
      await session.waitFor(/24 80\r\n\/dev\/pts\/\d+/);
      session.resize(40, 120);
      await new Promise((r) => setTimeout(r, 1000));
      session.type('stty size\r');
      await session.waitFor(/40 120/);
      session.type('exit 4\r');
      assert.equal(await session.exited, 4);
    } finally {
      session.close();
    }
  });

  it('run with process.terminal and no console socket uses the calling terminal', { timeout: 120_000 }, async () => {
    await makeBundle(bundle('run-tty'), { args: ['sh', '-c', 'stty size; tty; read answer; echo answer:$answer; exit 6'], terminal: true, annotations: joinSandbox('pod') });
    const session = new PtySession(kataTsBin, ['--root', root, 'run', 'run-tty', '--bundle', bundle('run-tty')], { rows: 33, columns: 99 });
    try {
      await session.waitFor(/33 99\r\n\/dev\/pts\/\d+\r\n/);
      session.type('yes\r');
      await session.waitFor(/answer:yes/);
      assert.equal(await session.exited, 6);
    } finally {
      session.close();
    }
    assert.match((await kata(['state', 'run-tty'])).stderr, /does not exist/, 'run deleted it');
  });

  it('create --console-socket: the pty master goes to the socket (as runc does), resizes reach the guest', { timeout: 120_000 }, async () => {
    const native = loadNativeAddon();
    await makeBundle(bundle('console'), { args: ['sh'], terminal: true, annotations: joinSandbox('pod') });
    const socketPath = path.join(dir, 'console.sock');
    const listenFd = native.listenUnix(socketPath);
    const received = native.receiveFd(listenFd, 110_000);
    const created = await kata(['create', 'console', '--bundle', bundle('console'), '--console-socket', socketPath]);
    assert.equal(created.exitCode, 0, created.stderr);
    const master = await received;
    carriers.push(await carrierOf(root, 'console'));
    native.setWindowSize(master, 30, 100);
    const reader = new tty.ReadStream(master);
    let screen = '';
    reader.on('data', (c: Buffer) => (screen += c.toString()));
    reader.on('error', () => undefined);
    const waitFor = async (re: RegExp): Promise<void> => {
      for (let i = 0; i < 600 && !re.test(screen); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(screen, re);
    };
    try {
      assert.equal((await kata(['start', 'console'])).exitCode, 0);
      await waitFor(/# /);
      reader.write('stty size; echo $((6*7))\r');
      await waitFor(/30 100\r\n42/);
      native.setWindowSize(master, 50, 132);
      await new Promise((r) => setTimeout(r, 1000));
      reader.write('stty size; exit 2\r');
      await waitFor(/50 132/);
      await waitForStatus(kata, 'console', 'stopped');
      assert.equal((await kata(['delete', 'console'])).exitCode, 0);
    } finally {
      reader.destroy();
    }
    assert.match((await kata(['create', 'console', '--bundle', bundle('console')])).stderr, /--console-socket is required/);
  });

  it('shares a bind mount from the spec: readable and writable, and read-only when asked', { timeout: 120_000 }, async () => {
    const data = path.join(dir, 'data');
    const readonly = path.join(dir, 'readonly');
    await mkdir(data);
    await mkdir(readonly);
    await writeFile(path.join(data, 'in.txt'), 'from the host\n');
    await writeFile(path.join(readonly, 'ro.txt'), 'read only\n');
    await makeBundle(bundle('binds'), {
      args: ['sh', '-c', 'cat /data/in.txt /ro/ro.txt; echo from the guest > /data/out.txt; echo x > /ro/x 2>/dev/null || echo ro-refused'],
      annotations: joinSandbox('pod'),
      mounts: [
        { destination: '/data', type: 'bind', source: data, options: ['rbind', 'rw'] },
        { destination: '/ro', type: 'bind', source: readonly, options: ['rbind', 'ro'] },
      ],
    });
    const r = await kata(['run', 'binds', '--bundle', bundle('binds')]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'from the host\nread only\nro-refused');
    assert.equal(await readFile(path.join(data, 'out.txt'), 'utf8'), 'from the guest\n');
    assert.deepEqual((await import('node:fs')).readdirSync(readonly), ['ro.txt']);
    // The host files are intact after the container's mounts were undone.
    assert.equal(await readFile(path.join(data, 'in.txt'), 'utf8'), 'from the host\n');
    await rm(path.join(data, 'out.txt'));
  });

  it('the VM stops when the last container is deleted, and nothing of it remains', { timeout: 120_000 }, async () => {
    assert.equal((await kata(['kill', '--all', 'svc', 'SIGKILL'])).exitCode, 0);
    await waitForStatus(kata, 'svc', 'stopped');
    assert.equal((await kata(['delete', 'svc'])).exitCode, 0);
    assert.equal((await ociState(kata, 'pod')).status, 'running');
    assert.equal((await kata(['kill', 'pod', 'KILL'])).exitCode, 0);
    await waitForStatus(kata, 'pod', 'stopped');
    assert.equal((await kata(['delete', 'pod'])).exitCode, 0);
    await assertSandboxGone(pod, carriers);
    assert.equal((await kata(['list', '-q'])).stdout, '');
  });
});
