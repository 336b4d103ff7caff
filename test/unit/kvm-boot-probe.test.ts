import assert from 'node:assert/strict';
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseRuntimeConfig } from '../../src/config/load-config.js';
import { probeKvmBoot } from '../../src/host/kvm-boot-probe.js';
import { probeInitElf, probeInitrd, probeMarker } from '../../src/host/probe-initrd.js';
import { configText, tempDir } from '../helpers/fixtures.js';

/** A stand-in QEMU that replays what real QEMU printed on one host kind, and records its pid. */
async function fakeQemu(dir: string, name: string, body: string): Promise<string> {
  const file = path.join(dir, `${name}.sh`);
  await writeFile(file, `#!/bin/bash\necho $$ > ${path.join(dir, `${name}.pid`)}\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the KVM boot probe runner (fake QEMU processes)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('kata-ts-probe-run-')));
  after(() => cleanup());

  const run = async (name: string, body: string, deadlineMs = 1500) => {
    const qemu = await fakeQemu(dir, name, body);
    const h = { ...parseRuntimeConfig('/tmp/c.toml', configText(), 'flag').hypervisor, path: qemu };
    const probeDirs = async () => (await readdir(os.tmpdir())).filter((n) => n.startsWith('kata-ts-kvm-probe-'));
    const before = await probeDirs();
    const evidence = await probeKvmBoot({ hypervisor: h, deadlineMs, stallMs: 500 });
    assert.deepEqual(await probeDirs(), before, 'the probe removed its temp dir');
    const pid = Number((await readFile(path.join(dir, `${name}.pid`), 'utf8')).trim());
    return { evidence, pid };
  };

  it('stops at the marker, and kills the guest', async () => {
    const { evidence, pid } = await run('works', `printf 'Booting from ROM...\\n[    0.3] Run /init as init process\\n${probeMarker}\\n'; exec sleep 30`);
    assert.deepEqual([evidence.usable, evidence.conclusive, evidence.stage], [true, true, 'user-space']);
    assert.ok(evidence.elapsedMs < 1500);
    assert.equal(alive(pid), false, 'the probe QEMU is gone');
  });

  it('a guest that goes silent after the firmware is a conclusive hang at the deadline, and is killed', async () => {
    const { evidence, pid } = await run('hangs', `printf 'SeaBIOS (version 1.16.2)\\nBooting from ROM...\\n'; exec sleep 30`);
    assert.deepEqual([evidence.usable, evidence.conclusive, evidence.stage], [false, true, 'firmware']);
    assert.ok(evidence.elapsedMs >= 1500);
    assert.deepEqual(evidence.console, ['SeaBIOS (version 1.16.2)', 'Booting from ROM...']);
    assert.equal(alive(pid), false);
  });

  it('QEMU aborting is conclusive, with its assertion as evidence', async () => {
    const { evidence } = await run('aborts', `echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2; kill -ABRT $$`);
    assert.deepEqual([evidence.usable, evidence.conclusive], [false, true]);
    assert.match(evidence.detail, /killed by SIGABRT before the guest printed anything: .*failed to set MSR/);
  });

  it('a QEMU that cannot start is inconclusive', async () => {
    const h = { ...parseRuntimeConfig('/tmp/c.toml', configText(), 'flag').hypervisor, path: path.join(dir, 'no-such-qemu') };
    const evidence = await probeKvmBoot({ hypervisor: h, deadlineMs: 1000, stallMs: 500 });
    assert.deepEqual([evidence.usable, evidence.conclusive], [false, false]);
    assert.match(evidence.detail, /cannot start QEMU: .*ENOENT/);
  });
});

describe('the probe initrd', () => {
  it('is a newc cpio with /dev/console and an x86-64 ELF /init that prints the marker', () => {
    const cpio = probeInitrd();
    const text = cpio.toString('latin1');
    assert.equal(text.slice(0, 6), '070701');
    for (const name of ['dev\0', 'dev/console\0', 'init\0', 'TRAILER!!!\0']) assert.ok(text.includes(name), name);
    assert.equal(cpio.length % 4, 0);
    const elf = probeInitElf();
    assert.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
    assert.equal(elf.readUInt16LE(18), 0x3e, 'x86-64');
    assert.equal(Number(elf.readBigUInt64LE(24)) - 0x400000, 120, 'entry right after the headers');
    assert.ok(elf.toString('latin1').includes(probeMarker));
  });
});
