import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage } from '../../src/image/build-image.js';
import { isSameProcessAlive } from '../../src/util/process-identity.js';
import { tempDir } from '../helpers/fixtures.js';
import { joinSandbox, makeBundle } from '../helpers/oci-bundle.js';
import { assertSandboxGone, kataTs, sandboxProcesses, type SandboxLeftovers } from '../helpers/oci-e2e.js';

const forever = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];

/**
 * A pod whose sandbox container was deleted while a member still runs keeps
 * its VM. A new create with the sandbox's id must then fail, and its cleanup
 * must leave the live sandbox (its VM dir, shares, QEMU) alone.
 */
describe('create with the id of a live sandbox whose sandbox container is gone', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let kata: ReturnType<typeof kataTs>;
  let pod: SandboxLeftovers;
  const bundle = (name: string): string => path.join(dir, 'bundles', name);

  before(async () => {
    ({ dir, cleanup } = await tempDir('kata-ts-reuse-'));
    kata = kataTs(path.join(dir, 'root'));
    await buildImage();
    await makeBundle(bundle('p'), { args: forever, annotations: { 'io.kubernetes.cri.container-type': 'sandbox' } });
    await makeBundle(bundle('m'), { args: forever, annotations: joinSandbox('p') });
    for (const id of ['p', 'm']) {
      const created = await kata(['create', id, '--bundle', bundle(id)], { outputFile: path.join(dir, `${id}.out`) });
      assert.equal(created.exitCode, 0, await readFile(path.join(dir, `${id}.out`), 'utf8'));
      assert.equal((await kata(['start', id])).exitCode, 0);
    }
    pod = await sandboxProcesses(path.join(dir, 'root'), 'p');
  });

  after(async () => {
    for (const id of ['p', 'm']) await kata(['delete', '--force', id]);
    await cleanup();
  });

  it('fails with "already exists" and the member container and its VM live on', { timeout: 120_000 }, async () => {
    assert.equal((await kata(['delete', '--force', 'p'])).exitCode, 0);
    await makeBundle(bundle('p2'), { args: ['true'], annotations: { 'io.kubernetes.cri.container-type': 'sandbox' } });
    const again = await kata(['create', 'p', '--bundle', bundle('p2')]);
    assert.equal(again.exitCode, 1);
    assert.match(again.stderr, /sandbox p already exists/);
    assert.ok(pod.qemu && (await isSameProcessAlive(pod.qemu)), 'QEMU still runs');
    const alive = await kata(['exec', 'm', 'sh', '-c', 'ls /bin/busybox && echo alive']);
    assert.equal(alive.exitCode, 0, alive.stderr);
    assert.equal(alive.stdout, '/bin/busybox\nalive', 'the member\'s rootfs share is still mounted');
    assert.equal((await kata(['delete', '--force', 'm'])).exitCode, 0);
    await assertSandboxGone(pod);
  });
});
