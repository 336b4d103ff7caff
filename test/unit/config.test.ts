import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findConfig } from '../../src/config/find-config.js';
import { loadRuntimeConfig, parseRuntimeConfig } from '../../src/config/load-config.js';
import { templateUnusableBy, type RuntimeConfig } from '../../src/config/runtime-config.js';
import { KataError } from '../../src/util/errors.js';
import { configText, repoRoot, tempDir, writeConfig } from '../helpers/fixtures.js';

const file = '/etc/kata/configuration.toml';

function parseError(text: string): KataError {
  try {
    parseRuntimeConfig(file, text, 'flag');
  } catch (err) {
    assert.ok(err instanceof KataError, `expected KataError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the configuration to be rejected');
}

describe('configuration.toml parsing', () => {
  it('reads the bundled default with every documented key', async () => {
    const config = await loadRuntimeConfig({ explicitPath: path.join(repoRoot, 'configuration.toml') });
    assert.deepEqual(config.warnings, []);
    assert.equal(config.hypervisor.path, '/usr/bin/qemu-system-x86_64');
    assert.equal(config.hypervisor.kernel, path.join(repoRoot, 'guest', 'vmlinux'));
    assert.equal(config.hypervisor.image, path.join(repoRoot, 'guest', 'kata-ts-rootfs.img'));
    assert.equal(config.hypervisor.initrd, '', 'the kata-ts kernel mounts the image itself');
    assert.deepEqual([config.hypervisor.rootfsType, config.hypervisor.disableImageNvdimm, config.hypervisor.tcgTbSizeMiB, config.hypervisor.freePageReporting], ['erofs', false, 48, true]);
    assert.equal(config.hypervisor.accelerator, 'auto');
    assert.equal(config.hypervisor.useVsock, false);
    assert.equal(config.agent.dialTimeoutSeconds, 60);
    assert.deepEqual(config.factory, { enableTemplate: true, templatePath: '/run/kata-ts-template' });
    assert.equal(config.source.origin, 'flag');
  });

  it('reads [factory] as Kata 1.x does, and says which VMs cannot use a template', () => {
    const factory = (text: string, qemu = ''): RuntimeConfig => parseRuntimeConfig(file, configText(qemu, `[factory]\n${text}`), 'flag');
    assert.deepEqual(factory('enable_template = true\ntemplate_path = "templates"').factory, { enableTemplate: true, templatePath: '/etc/kata/templates' });
    assert.deepEqual(factory('enable_template = true').warnings, []);
    assert.throws(() => factory('vm_cache_number = 2'), /factory\.vm_cache_number: kata-ts has no VM cache/);
    assert.equal(factory('').factory.enableTemplate, false, 'off without the key, as in Kata');
    // VMs these keys rule out boot instead; the configuration still loads.
    assert.equal(templateUnusableBy(factory('enable_template = true', 'use_vsock = true').hypervisor), "use_vsock = true (a restored guest would keep the template's CID)");
    assert.match(templateUnusableBy(factory('enable_template = true', 'rootless = true').hypervisor) ?? '', /^rootless = true/);
    assert.equal(templateUnusableBy(factory('enable_template = true').hypervisor), undefined);
    assert.throws(() => factory('enable_template = "yes"'), /factory\.enable_template/);
  });

  it('types every supported key and resolves relative paths against the file', () => {
    const config = parseRuntimeConfig(file, `
[hypervisor.qemu]
path = "/opt/qemu/bin/qemu-system-x86_64"
kernel = "vmlinuz"
image = "../images/kata.img"
machine_type = "q35"
kernel_params = " quiet  agent.log=debug "
machine_accelerators = "kernel_irqchip=on"
firmware = "/usr/share/ovmf/OVMF.fd"
default_vcpus = 2
default_maxvcpus = 4
default_memory = 1024
default_bridges = 2
block_device_driver = "virtio-scsi"
shared_fs = "virtio-9p"
msize_9p = 65536
use_vsock = true
enable_debug = true
entropy_source = "/dev/random"
accelerator = "tcg"
private_mount_namespace = false
[proxy.kata]
path = "/usr/libexec/proxy"
enable_debug = true
[shim.kata]
enable_debug = true
[agent.kata]
enable_debug = true
kernel_modules = ["e1000e InterruptThrottleRate=3000"]
dial_timeout = 10
[runtime]
enable_debug = true
internetworking_model = "none"
disable_new_netns = true
sandbox_cgroup_only = true
disable_guest_seccomp = true
experimental = ["newstore"]
`, 'flag');
    // Kata's proxy path is read but has no use here: the one warning says so.
    // Kata keys parsed but not in effect are said, and read back as what is in effect (env shows that).
    assert.deepEqual(config.warnings, [
      '/etc/kata/configuration.toml: runtime.experimental ["newstore"]: kata-ts has no experimental features (ignored)',
      '/etc/kata/configuration.toml: [proxy.kata] path /usr/libexec/proxy is ignored (kata-ts runs its pod process and carriers instead)',
    ]);
    const h = config.hypervisor;
    assert.equal(h.kernel, '/etc/kata/vmlinuz');
    assert.equal(h.image, '/etc/images/kata.img');
    assert.equal(h.initrd, '');
    assert.equal(h.machineType, 'q35');
    assert.deepEqual(h.kernelParams, ['quiet', 'agent.log=debug']);
    assert.equal(h.machineAccelerators, 'kernel_irqchip=on');
    assert.equal(h.firmware, '/usr/share/ovmf/OVMF.fd');
    assert.deepEqual([h.defaultVcpus, h.defaultMaxVcpus, h.defaultMemoryMiB, h.defaultBridges], [2, 4, 1024, 2]);
    assert.equal(h.blockDeviceDriver, 'virtio-scsi');
    assert.equal(h.msize9p, 65536);
    assert.equal(h.useVsock, true);
    assert.equal(h.enableDebug, true);
    assert.equal(h.entropySource, '/dev/random');
    assert.equal(h.accelerator, 'tcg');
    assert.equal(h.privateMountNamespace, false);
    assert.deepEqual(config.proxy, { path: '/usr/libexec/proxy', enableDebug: true });
    assert.deepEqual(config.shim, { path: '', enableDebug: true });
    assert.deepEqual(config.agent, { enableDebug: true, kernelModules: ['e1000e InterruptThrottleRate=3000'], dialTimeoutSeconds: 10 });
    assert.deepEqual(config.runtime, {
      enableDebug: true, internetworkingModel: 'none', disableNewNetns: true, sandboxCgroupOnly: true, disableGuestSeccomp: true, experimental: [],
    });
  });

  it('names file, line and column on a syntax error', () => {
    const err = parseError('[hypervisor.qemu]\nkernel = "k"\ninitrd = "i"\ndefault_vcpus = = 2\n');
    assert.equal(err.code, 'CONFIG_PARSE');
    assert.match(err.message, /^\/etc\/kata\/configuration\.toml:4:\d+: /);
    assert.ok(!err.message.includes('\n'), 'one line');
  });

  it('rejects a wrong type naming the key', () => {
    const err = parseError(configText('default_vcpus = "two"'));
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, /hypervisor\.qemu\.default_vcpus must be an integer from 1 to 255, got "two"/);
  });

  it('rejects out-of-range values naming the key', () => {
    assert.match(parseError(configText('default_memory = 0')).message, /hypervisor\.qemu\.default_memory must be an integer from 64/);
    assert.match(parseError(configText('default_bridges = 6')).message, /default_bridges/);
    assert.match(parseError(configText('msize_9p = 12')).message, /msize_9p/);
    assert.match(parseError(configText('', '[agent.kata]\ndial_timeout = 0')).message, /agent\.kata\.dial_timeout/);
    assert.match(parseError(configText('default_vcpus = 1.5')).message, /default_vcpus/);
  });

  it('rejects unknown enum values and wrong booleans', () => {
    assert.match(parseError(configText('machine_type = "microvm"')).message, /machine_type must be one of "pc", "q35"/);
    assert.match(parseError(configText('block_device_driver = "nvdimm"')).message, /block_device_driver/);
    assert.match(parseError(configText('accelerator = "hvf"')).message, /accelerator/);
    assert.match(parseError(configText('use_vsock = "yes"')).message, /use_vsock must be true or false/);
    assert.match(parseError(configText('rootless = true\nprivate_mount_namespace = false')).message, /rootless = true needs private_mount_namespace = true/);
    assert.equal(parseRuntimeConfig(file, configText('rootless = true'), 'flag').hypervisor.rootless, true);
    assert.match(parseError(configText('', '[agent.kata]\nkernel_modules = "e1000"')).message, /kernel_modules must be an array of strings/);
  });

  it('takes initrd and image together (the boot initrd mounts the image), and rejects neither', () => {
    const both = parseRuntimeConfig(file, configText('image = "/img"'), 'flag').hypervisor;
    assert.deepEqual([both.image, both.initrd.endsWith('initrd.img')], ['/img', true]);
    assert.match(parseError(configText('rootfs_type = "xfs"')).message, /rootfs_type/);
    assert.match(parseError('[hypervisor.qemu]\nkernel = "/k"\n').message, /initrd or image must be set/);
    assert.match(parseError('[proxy.kata]\npath = ""\n').message, /missing section \[hypervisor\.qemu\]/);
    assert.match(parseError(configText('default_vcpus = 4\ndefault_maxvcpus = 2')).message, /larger than default_maxvcpus/);
  });

  it('warns about unknown keys and sections but keeps going', () => {
    const config = parseRuntimeConfig(file, configText('enable_iothreads = true', '[hypervisor.firecracker]\npath = "/fc"\n[netmon]\nenable_netmon = false\n[mystery]\n'), 'flag');
    assert.ok(config.warnings.some((w) => w.includes('unknown key hypervisor.qemu.enable_iothreads')));
    assert.ok(config.warnings.some((w) => w.includes('[hypervisor.firecracker] is not supported')));
    assert.ok(config.warnings.some((w) => w.includes('[netmon] is not used')));
    assert.ok(config.warnings.some((w) => w.includes('unknown section "mystery"')));
  });
});

describe('configuration search order', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let paths: Record<'flag' | 'env' | 'etc' | 'share' | 'bundled', string>;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    await mkdir(path.join(dir, 'etc'));
    await mkdir(path.join(dir, 'share'));
    paths = {
      flag: await writeConfig(dir, configText(), 'flag.toml'),
      env: await writeConfig(dir, configText(), 'env.toml'),
      etc: await writeConfig(path.join(dir, 'etc'), configText()),
      share: await writeConfig(path.join(dir, 'share'), configText()),
      bundled: await writeConfig(dir, configText(), 'bundled.toml'),
    };
  });
  after(() => cleanup());

  const search = (over: { explicitPath?: string; envPath?: string; system?: string[] }) => ({
    explicitPath: over.explicitPath,
    envPath: over.envPath,
    systemPaths: over.system ?? [paths.etc, paths.share],
    bundledPath: paths.bundled,
  });

  it('takes --kata-config first, then KATA_CONF_FILE, then the system files, then the bundled file', async () => {
    assert.deepEqual(await findConfig(search({ explicitPath: paths.flag, envPath: paths.env })), { path: paths.flag, origin: 'flag' });
    assert.deepEqual(await findConfig(search({ envPath: paths.env })), { path: paths.env, origin: 'env' });
    assert.deepEqual(await findConfig(search({})), { path: paths.etc, origin: 'system' });
    assert.deepEqual(await findConfig(search({ system: [path.join(dir, 'nope.toml'), paths.share] })), { path: paths.share, origin: 'system' });
    assert.deepEqual(await findConfig(search({ system: [path.join(dir, 'nope.toml')] })), { path: paths.bundled, origin: 'bundled' });
  });

  it('fails when an explicitly named file is missing instead of falling back', async () => {
    await assert.rejects(findConfig(search({ explicitPath: path.join(dir, 'typo.toml') })), /typo\.toml \(from --kata-config\) does not exist/);
    await assert.rejects(findConfig(search({ envPath: path.join(dir, 'typo.toml') })), /from KATA_CONF_FILE/);
  });
});
