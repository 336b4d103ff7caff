import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseRuntimeConfig } from '../../src/config/load-config.js';
import { acceleratorDecision, decideAccelerator } from '../../src/host/accelerator.js';
import { HostFacts } from '../../src/host/host-facts.js';
import { judgeProbe } from '../../src/host/kvm-boot-probe.js';
import { ProbeCache } from '../../src/host/probe-cache.js';
import { configText, fakeKvmProbe, hostFixture, kvmHostOutcomes, tempDir } from '../helpers/fixtures.js';

const limits = { deadlineMs: 10_000, stallMs: 4_000 };
const hypervisor = (extra = '') => parseRuntimeConfig('/tmp/configuration.toml', configText(extra), 'flag').hypervisor;
const pvmHost = () => new HostFacts(hostFixture('pvm-no-vsock'));

describe('KVM probe outcomes, judged', () => {
  it('KVM works: the guest reached user space', () => {
    const e = judgeProbe(kvmHostOutcomes.works, limits);
    assert.deepEqual([e.usable, e.conclusive, e.stage], [true, true, 'user-space']);
    assert.match(e.detail, /booted the guest kernel to user space in 640 ms/);
  });

  it('firmware completes under KVM, then the kernel hangs (host kernel v595): not usable, conclusive', () => {
    const e = judgeProbe(kvmHostOutcomes['kernel-hangs'], limits);
    assert.deepEqual([e.usable, e.conclusive, e.stage], [false, true, 'firmware']);
    assert.match(e.detail, /the guest hung under accel=kvm: no user space within 10000 ms, silent for 8100 ms after reaching firmware \(last output: "Booting from c000:0054"\)/);
  });

  it('QEMU aborts under KVM (MSR assertion): not usable, conclusive, the assertion is the evidence', () => {
    const e = judgeProbe(kvmHostOutcomes['qemu-aborts'], limits);
    assert.deepEqual([e.usable, e.conclusive, e.stage], [false, true, 'none']);
    assert.match(e.detail, /was killed by SIGABRT before the guest printed anything: .*kvm_buf_set_msrs/);
    assert.match(e.qemuStderr.join('\n'), /failed to set MSR 0x10a/);
  });

  it('results that say nothing about KVM are inconclusive: an unloadable kernel, a slow guest still printing', () => {
    const unloadable = judgeProbe(kvmHostOutcomes['kernel-unloadable'], limits);
    assert.deepEqual([unloadable.usable, unloadable.conclusive], [false, false]);
    const slow = judgeProbe(kvmHostOutcomes['slow-but-booting'], limits);
    assert.deepEqual([slow.usable, slow.conclusive, slow.stage], [false, false, 'kernel']);
    assert.match(slow.detail, /still printing/);
  });
});

describe('the accelerator decision', () => {
  const verdictOf = (kind: keyof typeof kvmHostOutcomes) => {
    const e = judgeProbe(kvmHostOutcomes[kind], limits);
    return { usable: e.usable && e.conclusive, detail: e.detail, source: 'probe' as const };
  };

  it('auto uses KVM only when the probe proved it; kvm fails otherwise; tcg is always tcg', () => {
    const table = [
      ['works', 'auto', 'kvm'], ['works', 'kvm', 'kvm'], ['works', 'tcg', 'tcg'],
      ['kernel-hangs', 'auto', 'tcg'], ['kernel-hangs', 'kvm', null], ['kernel-hangs', 'tcg', 'tcg'],
      ['qemu-aborts', 'auto', 'tcg'], ['qemu-aborts', 'kvm', null], ['qemu-aborts', 'tcg', 'tcg'],
      ['slow-but-booting', 'auto', 'tcg'], ['slow-but-booting', 'kvm', null],
    ] as const;
    for (const [kind, wanted, expected] of table) {
      const d = decideAccelerator(wanted, verdictOf(kind));
      assert.equal(d.accelerator, expected, `${kind} with accelerator = "${wanted}"`);
      if (expected === null) assert.match(d.reason, /^accelerator = "kvm" but KVM cannot run the guest on this host: .*\(set accelerator = "tcg" or "auto"\)$/);
    }
  });

  it('no /dev/kvm: nothing is booted; auto uses TCG, kvm is refused with the reason', async () => {
    for (const wanted of ['auto', 'kvm'] as const) {
      const probe = fakeKvmProbe('works');
      const d = await acceleratorDecision(hypervisor(`accelerator = "${wanted}"`), { facts: new HostFacts(hostFixture('no-vmx')), probe, cache: null });
      assert.equal(probe.boots, 0);
      assert.equal(d.kvm.source, 'not-probed');
      assert.match(d.kvm.detail, /\/dev\/kvm does not exist/);
      assert.equal(d.accelerator, wanted === 'auto' ? 'tcg' : null);
    }
  });

  it('accelerator = "kvm" forced on each host kind', async () => {
    for (const kind of ['works', 'kernel-hangs', 'qemu-aborts'] as const) {
      const d = await acceleratorDecision(hypervisor('accelerator = "kvm"'), { facts: pvmHost(), probe: fakeKvmProbe(kind), cache: null });
      assert.equal(d.accelerator, kind === 'works' ? 'kvm' : null, kind);
    }
  });

  it('accelerator = "tcg" boots no probe unless check asks for the KVM facts', async () => {
    const probe = fakeKvmProbe('works');
    const d = await acceleratorDecision(hypervisor('accelerator = "tcg"'), { facts: pvmHost(), probe, cache: null });
    assert.deepEqual([d.accelerator, probe.boots], ['tcg', 0]);
    const informed = await acceleratorDecision(hypervisor('accelerator = "tcg"'), { facts: pvmHost(), probe, cache: null, probeWhenTcg: true });
    assert.deepEqual([informed.accelerator, informed.kvm.usable, probe.boots], ['tcg', true, 1]);
  });
});

describe('the KVM verdict cache', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('kata-ts-probe-cache-')));
  after(() => cleanup());

  it('probes once per key, reuses the verdict, and probes again on --reprobe or when the kernel changes', async () => {
    const cache = new ProbeCache(path.join(dir, 'ok'));
    const kernelDir = path.join(dir, 'assets');
    await mkdir(kernelDir);
    const kernel = path.join(kernelDir, 'vmlinuz');
    await writeFile(kernel, 'kernel one');
    const h = { ...hypervisor(), kernel };
    const probe = fakeKvmProbe('kernel-hangs');
    const first = await acceleratorDecision(h, { facts: pvmHost(), probe, cache });
    assert.equal(first.kvm.source, 'probe');
    assert.ok(first.kvm.cacheFile?.startsWith(cache.dir));
    const second = await acceleratorDecision(h, { facts: pvmHost(), probe, cache });
    assert.deepEqual([second.kvm.source, second.kvm.detail, second.accelerator, probe.boots], ['cache', first.kvm.detail, 'tcg', 1]);
    assert.equal((await acceleratorDecision(h, { facts: pvmHost(), probe, cache, reprobe: true })).kvm.source, 'probe');
    assert.equal(probe.boots, 2);
    await utimes(kernel, new Date(), new Date(Date.now() + 5000));
    assert.equal((await acceleratorDecision(h, { facts: pvmHost(), probe, cache })).kvm.source, 'probe', 'a new kernel file is probed');
    assert.equal(probe.boots, 3);
    assert.equal(((await stat(cache.dir)).mode & 0o777).toString(8), '700');
  });

  it('an inconclusive result is never cached', async () => {
    const cache = new ProbeCache(path.join(dir, 'inconclusive'));
    const probe = fakeKvmProbe('slow-but-booting');
    for (let i = 0; i < 2; i++) {
      const d = await acceleratorDecision(hypervisor(), { facts: pvmHost(), probe, cache });
      assert.deepEqual([d.accelerator, d.kvm.source], ['tcg', 'probe']);
      assert.match(d.kvm.cacheProblem ?? '', /inconclusive/);
    }
    assert.equal(probe.boots, 2);
    assert.deepEqual(await readdir(cache.dir), []);
  });

  it('refuses a cache dir others can write, and cache files that are symlinks or for another key', async () => {
    const open = path.join(dir, 'world-writable');
    await mkdir(open);
    await chmod(open, 0o777);
    const probe = fakeKvmProbe('works');
    const d = await acceleratorDecision(hypervisor(), { facts: pvmHost(), probe, cache: new ProbeCache(open) });
    assert.match(d.kvm.cacheProblem ?? '', /writable by others/);
    assert.deepEqual(await readdir(open), []);

    const cache = new ProbeCache(path.join(dir, 'planted'));
    const real = await acceleratorDecision(hypervisor(), { facts: pvmHost(), probe: fakeKvmProbe('kernel-hangs'), cache });
    const file = real.kvm.cacheFile ?? '';
    const planted = path.join(dir, 'planted-verdict.json');
    const entry = JSON.parse(await readFile(file, 'utf8')) as { evidence: { usable: boolean } };
    entry.evidence.usable = true;
    await writeFile(planted, JSON.stringify(entry));
    await rm(file);
    await symlink(planted, file);
    const again = fakeKvmProbe('kernel-hangs');
    assert.equal((await acceleratorDecision(hypervisor(), { facts: pvmHost(), probe: again, cache })).accelerator, 'tcg', 'a symlinked verdict is not read');
    assert.equal(again.boots, 1);

    await rm(file, { force: true });
    await writeFile(file, JSON.stringify({ ...entry, key: 'another' }), { mode: 0o600 });
    const third = fakeKvmProbe('kernel-hangs');
    assert.equal((await acceleratorDecision(hypervisor(), { facts: pvmHost(), probe: third, cache })).kvm.source, 'probe');
    assert.equal(third.boots, 1);
  });
});
