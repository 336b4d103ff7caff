import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { copyTemplateMemory } from '../../src/hypervisor/clone-memory.js';

describe('a virtio-fs clone\'s copy of the template memory', () => {
  it('copies the data and keeps the holes, unlinked at once and reached through this process\'s fd', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'kata-ts-clone-mem-'));
    try {
      const template = path.join(tmp, 'memory');
      const fh = await open(template, 'w');
      await fh.truncate(64 * 1024 * 1024);
      await fh.write(Buffer.alloc(4096, 7), 0, 4096, 32 * 1024 * 1024);
      await fh.close();
      const dir = path.join(tmp, 'ram');
      const copy = await copyTemplateMemory(template, dir);
      try {
        assert.match(copy.path, new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
        assert.deepEqual(await readdir(dir), [], 'nothing linked: nothing to leak');
        assert.equal((await stat(dir)).mode & 0o777, 0o700);
        const st = await stat(copy.path);
        assert.equal(st.size, 64 * 1024 * 1024);
        assert.ok(st.blocks * 512 < 1024 * 1024, `holes kept (${st.blocks * 512} bytes allocated)`);
        assert.deepEqual((await readFile(copy.path)).subarray(32 * 1024 * 1024, 32 * 1024 * 1024 + 4096), Buffer.alloc(4096, 7));
        const second = await copyTemplateMemory(template, dir);
        assert.notEqual((await stat(second.path)).ino, st.ino, 'each clone has its own copy');
        await second.close();
      } finally {
        await copy.close();
      }
      await assert.rejects(copyTemplateMemory(path.join(tmp, 'missing'), dir), /cannot copy the VM template's memory/);
      assert.deepEqual(await readdir(dir), [], 'a failed copy leaves nothing');
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
