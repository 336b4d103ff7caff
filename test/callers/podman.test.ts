import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { buildImage } from '../../src/image/build-image.js';
import { kataTsBin, repoRoot, tempDir } from '../helpers/fixtures.js';
import { kataTsProcesses, processesMatching, untilNoneLeft, vmDirs } from '../helpers/leaks.js';
import { makePodmanEnv, type PodmanEnv } from '../helpers/podman-env.js';
import { assertInteractiveShell } from '../helpers/pty-session.js';
import { readmeSnippet } from '../helpers/readme-snippet.js';

const image = 'docker.io/kata-ts/busybox:latest';

/**
 * Podman 4.3 with conmon runs kata-ts as its OCI runtime: conmon calls create
 * with a pid file (and a console socket for -t), podman polls state, exec goes
 * through `exec --process FILE --detach`, stop through kill, rm through delete --force.
 */
describe('podman with kata-ts as the OCI runtime', () => {
  let work: { dir: string; cleanup: () => Promise<void> };
  let pm: PodmanEnv;
  let vmDirsBefore: string[];

  before(async () => {
    await buildImage();
    work = await tempDir('kata-ts-pm-');
    vmDirsBefore = await vmDirs();
    // README's containers.conf: kata-ts is podman's runtime unless --runtime says otherwise.
    pm = await makePodmanEnv(readmeSnippet('podman-containers-conf'));
    const archive = path.join(work.dir, 'busybox.tar');
    await execa('bash', [path.join(repoRoot, 'scripts', 'make-busybox-image.sh'), archive]);
    const loaded = await pm.podman(['load', '-i', archive]);
    assert.equal(loaded.exitCode, 0, loaded.stderr);
  });

  afterEach(async () => {
    // conmon and podman's exit command clean up after the container asynchronously.
    assert.deepEqual(await untilNoneLeft(kataTsProcesses), [], 'no QEMU, pod process, carrier or kata-ts command runs');
    assert.deepEqual(await untilNoneLeft(() => processesMatching(pm.dir)), [], 'no conmon or podman process runs');
    assert.deepEqual(await vmDirs(), vmDirsBefore, 'no sandbox VM dir is left');
    assert.equal((await pm.podman(['ps', '--all', '--quiet'])).stdout, '', 'podman has no container');
  });

  after(async () => {
    try {
      await pm?.remove();
    } finally {
      await work?.cleanup();
    }
  });

  it('podman --runtime kata-ts run --rm: stdout, stderr and the exit status', { timeout: 240_000 }, async () => {
    const r = await pm.podman(['--runtime', kataTsBin, 'run', '--rm', '--network', 'none', image, 'sh', '-c', 'echo hello from $(uname -r); echo to stderr >&2; exit 5']);
    assert.equal(r.exitCode, 5, r.stderr);
    assert.match(r.stdout, /^hello from \d+\.\d+\.\d+\S*$/);
    assert.notEqual(r.stdout.replace('hello from ', ''), os.release(), 'the guest kernel answers, not the host\'s');
    assert.equal(r.stderr, 'to stderr');
  });

  it('a command that does not exist: podman\'s 127 and the guest\'s reason, nothing left', { timeout: 240_000 }, async () => {
    const r = await pm.podman(['--runtime', kataTsBin, 'run', '--rm', '--network', 'none', image, '/no/such/thing']);
    assert.equal(r.exitCode, 127, r.stderr);
    assert.match(r.stderr, /executable file `\/no\/such\/thing` not found/);
  });

  it('run -d, exec, stop, rm with kata-ts from containers.conf', { timeout: 300_000 }, async () => {
    const run = await pm.podman(['run', '-d', '--name', 'web', '--network', 'none', image, 'sh', '-c', 'trap "echo got TERM; exit 4" TERM; echo up; while :; do sleep 1; done']);
    assert.equal(run.exitCode, 0, run.stderr);
    const inspect = async (format: string): Promise<string> => (await pm.podman(['inspect', 'web', '--format', format])).stdout;
    assert.equal(await inspect('{{.OCIRuntime}}'), 'kata-ts', 'containers.conf picked the runtime');
    assert.equal(await inspect('{{.State.Status}}'), 'running');

    const exec = await pm.podman(['exec', 'web', 'sh', '-c', 'echo from exec; echo exec err >&2; exit 6']);
    assert.equal(exec.exitCode, 6, exec.stderr);
    assert.equal(exec.stdout, 'from exec');
    assert.equal(exec.stderr, 'exec err');
    const top = await pm.podman(['exec', 'web', 'ps']);
    assert.match(top.stdout, /while :; do sleep 1; done/, 'exec runs beside the container\'s process');

    const stop = await pm.podman(['stop', '--time', '20', 'web']);
    assert.equal(stop.exitCode, 0, stop.stderr);
    assert.equal(await inspect('{{.State.Status}} {{.State.ExitCode}}'), 'exited 4', 'SIGTERM reached the trap, its status reached podman');
    assert.equal((await pm.podman(['logs', 'web'])).stdout, 'up\ngot TERM');
    const rm = await pm.podman(['rm', 'web']);
    assert.equal(rm.exitCode, 0, rm.stderr);
  });

  it('run -it: a terminal, its size, input and the exit status', { timeout: 240_000 }, async () => {
    const args = [...pm.globalFlags, '--runtime', kataTsBin, 'run', '-it', '--rm', '--network', 'none', image, 'sh'];
    await assertInteractiveShell('podman', args, { CONTAINERS_CONF: path.join(pm.dir, 'containers.conf') });
  });
});
