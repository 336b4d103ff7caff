import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRuntimeConfig } from '../../src/config/load-config.js';
import { renderEvidence, renderVerdict } from '../../src/cli/commands/check.js';
import { checkHost, type HostVerdict } from '../../src/host/check-host.js';
import { HostFacts } from '../../src/host/host-facts.js';
import { parseDeviceHelp, parseQemuVersion } from '../../src/host/qemu-probe.js';
import { configText, fakeKvmProbe, fakeQemu, hostFixture, kvmHostOutcomes } from '../helpers/fixtures.js';

const config = (extra = '') => parseRuntimeConfig('/tmp/configuration.toml', configText(extra), 'flag');

async function verdictFor(host: string, options: { kvm: keyof typeof kvmHostOutcomes; extra?: string; devices?: string[] }): Promise<HostVerdict> {
  return checkHost({
    config: config(options.extra),
    facts: new HostFacts(hostFixture(host)),
    qemu: fakeQemu({ devices: options.devices }),
    decision: { probe: fakeKvmProbe(options.kvm), cache: null },
  });
}

const statusOf = (verdict: HostVerdict, id: string) => verdict.results.find((r) => r.id === id)?.status;

describe('kata-ts check against fixture hosts', () => {
  it('an Intel host with working KVM and vsock uses KVM', async () => {
    const verdict = await verdictFor('intel-kvm', { kvm: 'works', extra: 'use_vsock = true' });
    assert.deepEqual(verdict.results.filter((r) => r.status !== 'pass').map((r) => r.id), []);
    assert.equal(verdict.accelerator, 'kvm');
    assert.equal(verdict.canRun, true);
    assert.equal(verdict.vsockUsable, true);
    assert.match(verdict.results.find((r) => r.id === 'cpu-virtualization')?.detail ?? '', /vmx/);
  });

  it('an AMD host finds svm and kvm_amd; without vhost_vsock, use_vsock = true cannot run', async () => {
    const plain = await verdictFor('amd-kvm', { kvm: 'works' });
    assert.equal(plain.accelerator, 'kvm');
    assert.equal(plain.canRun, true);
    assert.match(plain.results.find((r) => r.id === 'module-kvm-vendor')?.detail ?? '', /kvm_amd/);
    assert.equal(statusOf(plain, 'vhost-vsock'), 'warn');

    const vsock = await verdictFor('amd-kvm', { kvm: 'works', extra: 'use_vsock = true' });
    assert.equal(statusOf(vsock, 'vhost-vsock'), 'fail');
    assert.equal(vsock.canRun, false);
    assert.match(vsock.summary, /cannot run/);
    assert.match(vsock.results.find((r) => r.id === 'vhost-vsock')?.fix ?? '', /modprobe vhost_vsock/);
  });

  it('a host without vmx falls back to TCG, and fails with accelerator = "kvm"', async () => {
    const auto = await verdictFor('no-vmx', { kvm: 'kernel-hangs' });
    assert.equal(statusOf(auto, 'cpu-virtualization'), 'warn');
    assert.equal(statusOf(auto, 'dev-kvm'), 'warn');
    assert.equal(statusOf(auto, 'kvm-usable'), 'warn');
    assert.match(auto.results.find((r) => r.id === 'kvm-usable')?.detail ?? '', /not probed/);
    assert.equal(auto.accelerator, 'tcg');
    assert.equal(auto.canRun, true);
    assert.match(auto.summary, /TCG/);

    const forced = await verdictFor('no-vmx', { kvm: 'kernel-hangs', extra: 'accelerator = "kvm"' });
    assert.equal(forced.accelerator, null);
    assert.equal(forced.canRun, false);
    assert.match(forced.summary, /accelerator = "kvm" but KVM is not usable/);
  });

  it('a host with no /dev/kvm at all (kernel 6.18 fc, AMD without svm) is never probed: TCG, and check says why', async () => {
    const probe = fakeKvmProbe('works');
    const verdict = await checkHost({ config: config(), facts: new HostFacts(hostFixture('no-dev-kvm')), qemu: fakeQemu(), decision: { probe, cache: null } });
    assert.equal(probe.boots, 0, 'nothing to probe without /dev/kvm');
    assert.equal(statusOf(verdict, 'dev-kvm'), 'warn');
    assert.equal(statusOf(verdict, 'kvm-usable'), 'warn');
    assert.match(verdict.results.find((r) => r.id === 'kvm-usable')?.detail ?? '', /not probed: \/dev\/kvm does not exist/);
    assert.deepEqual([verdict.kvmUsable, verdict.accelerator, verdict.canRun, verdict.decision.kvm.source], [false, 'tcg', true, 'not-probed']);
    // What check --verbose prints for it: the probe line says so, and there is no evidence to show.
    const evidence = renderEvidence(verdict.decision);
    assert.deepEqual(evidence, ['KVM probe: not probed']);
    assert.match(renderVerdict('/tmp/configuration.toml', verdict, true), /^accelerator: tcg \(KVM is not usable, so TCG software emulation: not probed: \/dev\/kvm does not exist\)$/m);

    const forced = await checkHost({ config: config('accelerator = "kvm"'), facts: new HostFacts(hostFixture('no-dev-kvm')), qemu: fakeQemu(), decision: { probe, cache: null } });
    assert.equal(forced.canRun, false);
    assert.match(forced.summary, /accelerator = "kvm" but KVM is not usable/);
  });

  for (const kind of ['kernel-hangs', 'qemu-aborts'] as const) {
    it(`/dev/kvm opens but the guest kernel cannot boot under KVM (${kind}): auto uses TCG, kvm cannot run`, async () => {
      const probe = fakeKvmProbe(kind);
      const verdict = await checkHost({
        config: config(), facts: new HostFacts(hostFixture('pvm-no-vsock')), qemu: fakeQemu(), decision: { probe, cache: null },
      });
      assert.equal(statusOf(verdict, 'dev-kvm'), 'pass');
      assert.equal(statusOf(verdict, 'kvm-usable'), 'warn');
      assert.equal(probe.boots, 1, 'the KVM probe boots once even though several checks need it');
      const detail = verdict.results.find((r) => r.id === 'kvm-usable')?.detail ?? '';
      assert.match(detail, kind === 'kernel-hangs' ? /\/dev\/kvm opens, but the guest hung under accel=kvm/ : /\/dev\/kvm opens, but QEMU with accel=kvm was killed by SIGABRT.*kvm_buf_set_msrs/);
      assert.equal(statusOf(verdict, 'vhost-vsock'), 'warn');
      assert.deepEqual([verdict.kvmUsable, verdict.vsockUsable, verdict.accelerator, verdict.canRun], [false, false, 'tcg', true]);
      assert.equal(verdict.decision.accelerator, verdict.accelerator, 'check prints the decision create uses');
      assert.match(verdict.decision.reason, /KVM is not usable, so TCG/);

      const forced = await checkHost({
        config: config('accelerator = "kvm"'), facts: new HostFacts(hostFixture('pvm-no-vsock')), qemu: fakeQemu(), decision: { probe: fakeKvmProbe(kind), cache: null },
      });
      assert.equal(forced.accelerator, null);
      assert.equal(forced.canRun, false);
      assert.match(forced.summary, /accelerator = "kvm" but KVM is not usable/);
    });
  }

  it('the static KVM checks do not decide: a host without vmx whose KVM boots the guest uses KVM', async () => {
    const verdict = await checkHost({
      config: config(), facts: new HostFacts(hostFixture('pvm-no-vsock')), qemu: fakeQemu(), decision: { probe: fakeKvmProbe('works'), cache: null },
    });
    assert.equal(verdict.accelerator, 'kvm');
    assert.equal(verdict.kvmUsable, true);
    assert.ok(!verdict.results.some((r) => r.id === 'module-vhost' || r.id === 'module-vhost_net'), 'vhost and vhost_net are not checked: kata-ts uses neither');
  });

  it('missing QEMU devices or guest assets stop kata-ts whatever the accelerator', async () => {
    const noBridge = await verdictFor('intel-kvm', { kvm: 'works', devices: ['virtio-9p-pci'] });
    assert.equal(statusOf(noBridge, 'qemu-devices'), 'fail');
    assert.match(noBridge.results.find((r) => r.id === 'qemu-devices')?.detail ?? '', /missing .*pci-bridge/);
    assert.equal(noBridge.canRun, false);

    const noKernel = await checkHost({
      config: parseRuntimeConfig('/tmp/c.toml', '[hypervisor.qemu]\nkernel = "/nonexistent/vmlinuz"\ninitrd = "/nonexistent/initrd"\n', 'flag'),
      facts: new HostFacts(hostFixture('intel-kvm')),
      qemu: fakeQemu(),
      decision: { probe: fakeKvmProbe('works'), cache: null },
    });
    assert.equal(statusOf(noKernel, 'guest-kernel'), 'fail');
    assert.equal(statusOf(noKernel, 'guest-rootfs'), 'fail');
    assert.match(noKernel.results.find((r) => r.id === 'guest-kernel')?.fix ?? '', /kata-ts image build/);
    assert.equal(noKernel.canRun, false);
  });

  it('parses QEMU version and device lists', () => {
    assert.equal(parseQemuVersion('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright'), '7.2.22');
    assert.equal(parseQemuVersion('something else'), undefined);
    const devices = parseDeviceHelp('Controller/Bridge/Hub devices:\nname "pci-bridge", bus PCI, desc "Standard PCI Bridge"\nname "virtio-9p-pci", bus PCI, alias "virtio-9p"\n');
    assert.deepEqual([...devices], ['pci-bridge', 'virtio-9p-pci']);
  });
});
