import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { OciLinuxSpec } from '../../src/runtime/oci-spec-types.js';
import { tempDir } from '../helpers/fixtures.js';
import { makeBundle } from '../helpers/oci-bundle.js';
import { kataTs } from '../helpers/oci-e2e.js';

/** linux.uidMappings / gidMappings with a user namespace: crun maps them in the guest. */
describe('user namespaces', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('kata-ts-userns-')));
  after(() => cleanup());

  it('the container\'s root is the mapped id', { timeout: 120_000 }, async () => {
    const bundle = await makeBundle(path.join(dir, 'b'), { args: ['sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u'] });
    const configFile = path.join(bundle, 'config.json');
    const spec = JSON.parse(await readFile(configFile, 'utf8')) as { linux: OciLinuxSpec };
    spec.linux.namespaces = [...(spec.linux.namespaces ?? []), { type: 'user' }];
    spec.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    spec.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    await writeFile(configFile, JSON.stringify(spec));
    const run = await kataTs(path.join(dir, 'root'))(['run', '--bundle', bundle, 'userns'], { timeoutMs: 120_000 });
    assert.equal(run.exitCode, 0, run.stderr);
    const [uidMap, gidMap, uid] = run.stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    assert.equal(uidMap, '0 100000 65536');
    assert.equal(gidMap, '0 200000 65536');
    assert.equal(uid, '0');
  });
});
