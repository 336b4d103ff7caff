import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRuntimeConfig } from '../../src/config/load-config.js';
import {
  agentChannelArgs, balloonArgs, bootArgs, bridgeArgs, cpuArgs, imageArgs, kernelCommandLine, machineArgs, memoryArgs, needsVirtiofsd, qemuArgs, scsiArgs, sharedFsArgs, sharedFsHotplugged, templateArgs, virtioFsDevice, type VmSpec,
} from '../../src/hypervisor/qemu-args.js';
import { pruneTemplates, templateAt, templateDistrust, templateFits, templateKey, templatesKept, withSavedTemplate } from '../../src/runtime/vm-factory.js';
import { Logger } from '../../src/util/logger.js';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { vmLayout } from '../../src/hypervisor/vm-layout.js';
import { virtiofsdArgs } from '../../src/hypervisor/virtiofsd.js';
import { configText } from '../helpers/fixtures.js';

function spec(extraQemu = '', over: Partial<VmSpec> = {}): VmSpec {
  const config = parseRuntimeConfig('/etc/kata/configuration.toml', configText(extraQemu), 'flag');
  return { sandboxId: 'sb1', hypervisor: config.hypervisor, accelerator: 'tcg', layout: vmLayout('/run/kata-ts/vm/sb1'), hostCpus: 2, hostMemoryMiB: 4096, agentDebug: false, ...over };
}

/** The value following a flag, for each occurrence. */
function valuesOf(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1] as string] : []));
}

describe('QEMU command line', () => {
  it('puts machine type and extra machine options in -machine, the accelerator and its TCG buffer in -accel', () => {
    assert.deepEqual(machineArgs(spec()), ['-machine', 'pc', '-accel', 'tcg,thread=single,tb-size=48']);
    assert.deepEqual(machineArgs(spec('tcg_tb_size = 0')), ['-machine', 'pc', '-accel', 'tcg,thread=single']);
    assert.deepEqual(machineArgs(spec('machine_type = "q35"\nmachine_accelerators = "kernel_irqchip=on"', { accelerator: 'kvm' })), ['-machine', 'q35,kernel_irqchip=on', '-accel', 'kvm']);
  });

  it('uses -cpu host only with KVM and sizes -smp from vcpus and maxvcpus', () => {
    assert.deepEqual(cpuArgs(spec()), ['-cpu', 'max', '-smp', '1,cores=1,threads=1,sockets=2,maxcpus=2']);
    assert.deepEqual(cpuArgs(spec('default_vcpus = 2\ndefault_maxvcpus = 4', { accelerator: 'kvm' })), ['-cpu', 'host', '-smp', '2,cores=1,threads=1,sockets=4,maxcpus=4']);
  });

  it('wires the serial agent channel to a chardev socket in the VM dir', () => {
    assert.deepEqual(agentChannelArgs(spec()), [
      '-device', 'virtio-serial-pci,id=serial0',
      '-chardev', 'socket,id=agent-channel,path=/run/kata-ts/vm/sb1/agent-channel.sock,server=on,wait=off',
      '-device', 'virtserialport,bus=serial0.0,chardev=agent-channel,name=agent.channel.0',
    ]);
  });

  it('uses vhost-vsock with the given CID when use_vsock = true, and refuses without one', () => {
    assert.deepEqual(agentChannelArgs(spec('use_vsock = true', { vsockCid: 7 })), ['-device', 'vhost-vsock-pci,id=vsock0,guest-cid=7']);
    assert.throws(() => agentChannelArgs(spec('use_vsock = true')), /CID/);
  });

  it('exports the shared dir over 9p with the kataShared tag', () => {
    assert.deepEqual(sharedFsArgs(spec()), [
      '-fsdev', 'local,id=fsdev-kataShared,path=/run/kata-ts/vm/sb1/shared,security_model=none,multidevs=remap',
      '-device', 'virtio-9p-pci,fsdev=fsdev-kataShared,mount_tag=kataShared',
    ]);
  });

  it('with shared_fs = "virtio-fs": vhost-user-fs-pci on virtiofsd\'s socket, and guest RAM in a shared memfd', () => {
    const virtioFs = spec('shared_fs = "virtio-fs"');
    assert.deepEqual(sharedFsArgs(virtioFs), [
      '-chardev', 'socket,id=virtiofs,path=/run/kata-ts/vm/sb1/virtiofsd.sock',
      '-device', 'vhost-user-fs-pci,chardev=virtiofs,tag=kataShared,queue-size=1024',
      '-machine', 'memory-backend=pc.ram', '-object', 'memory-backend-memfd,id=pc.ram,size=512M,share=on',
    ]);
    assert.deepEqual(virtiofsdArgs(virtioFs.hypervisor, virtioFs.layout), [
      '--socket-path=/run/kata-ts/vm/sb1/virtiofsd.sock', '-o', 'source=/run/kata-ts/vm/sb1/shared', '-o', 'cache=auto', '-o', 'sandbox=namespace', '-o', 'no_posix_lock',
      '-o', 'modcaps=-mknod', '--thread-pool-size=0', '-o', 'announce_submounts',
    ], 'the default extra arguments: no thread pool (measured), submounts announced');
    const tuned = spec('shared_fs = "virtio-fs"\nvirtio_fs_cache = "always"\nvirtio_fs_extra_args = ["-o", "xattr"]');
    assert.deepEqual(virtiofsdArgs(tuned.hypervisor, tuned.layout).slice(4), ['cache=always', '-o', 'sandbox=namespace', '-o', 'no_posix_lock', '-o', 'modcaps=-mknod', '-o', 'xattr']);
    assert.equal(templateFits(virtioFs), undefined, 'a clone gets its own shared copy of the RAM and the device hot-plugged');
    assert.match(templateFits(spec('shared_fs = "virtio-fs"\nmachine_type = "q35"')) ?? '', /^shared_fs = "virtio-fs" with machine_type = "q35"/);
    assert.throws(() => spec('shared_fs = "virtio-fs"\nvirtio_fs_cache_size = 1024'), /virtio_fs_cache_size = 1024: QEMU 7\.2's vhost-user-fs-pci has no DAX window/);
    assert.throws(() => spec('shared_fs = "virtio-fs"\nvirtio_fs_cache = "sometimes"'), /virtio_fs_cache must be one of "none", "auto", "always"/);
  });

  it('adds default_bridges pci-bridges at fixed slots from 2, on the machine root bus', () => {
    assert.deepEqual(bridgeArgs(spec('default_bridges = 2')), [
      '-device', 'pci-bridge,bus=pci.0,id=pci-bridge-0,chassis_nr=1,shpc=on,addr=2',
      '-device', 'pci-bridge,bus=pci.0,id=pci-bridge-1,chassis_nr=2,shpc=on,addr=3',
    ]);
    assert.deepEqual(bridgeArgs(spec('default_bridges = 0')), []);
    assert.match(bridgeArgs(spec('machine_type = "q35"'))[1] ?? '', /bus=pcie\.0/);
  });

  it('adds a virtio-scsi controller and scsi_mod.scan=none only for virtio-scsi', () => {
    assert.deepEqual(scsiArgs(spec()), []);
    assert.deepEqual(scsiArgs(spec('block_device_driver = "virtio-scsi"')), ['-device', 'virtio-scsi-pci,id=scsi0']);
    assert.match(kernelCommandLine(spec('block_device_driver = "virtio-scsi"')), / scsi_mod\.scan=none /);
    assert.doesNotMatch(kernelCommandLine(spec()), /scsi_mod/);
  });

  it("puts the user's kernel_params last and agent options on the kernel command line", () => {
    const line = kernelCommandLine(spec('kernel_params = "agent.hotplug_timeout=5 quiet=0"', { agentDebug: true }));
    assert.match(line, /console=ttyS0/);
    assert.match(line, /agent\.use_vsock=false agent\.log=debug agent\.hotplug_timeout=5 quiet=0$/);
    assert.match(kernelCommandLine(spec()), / quiet /);
    assert.doesNotMatch(kernelCommandLine(spec('enable_debug = true')), /quiet/);
  });

  it('boots the kernel with the initrd alone, or mounts a read-only image from an nvdimm (DAX) or a disk', () => {
    const initrd = spec();
    assert.equal(valuesOf(bootArgs(initrd), '-kernel')[0]?.endsWith('guest/vmlinuz'), true);
    assert.equal(valuesOf(bootArgs(initrd), '-initrd')[0]?.endsWith('guest/initrd.img'), true);
    assert.deepEqual(imageArgs(initrd), []);
    assert.doesNotMatch(kernelCommandLine(initrd), /root=/);

    const withImage = (extra: string): VmSpec => ({
      ...spec(), imageBytes: 5 * 1024 * 1024 + 1,
      hypervisor: parseRuntimeConfig('/c.toml', `[hypervisor.qemu]\nkernel = "/k"\nimage = "/img/kata.img"\ninitrd = "/img/boot.img"\n${extra}`, 'flag').hypervisor,
    });
    const nvdimm = withImage('');
    assert.deepEqual(machineArgs(nvdimm).slice(0, 2), ['-machine', 'pc,nvdimm=on']);
    assert.deepEqual(memoryArgs(nvdimm), ['-m', '512M,slots=11,maxmem=4614M'], 'a slot and room for the image rounded up to 2 MiB, and memory_slots DIMMs of up to the host\'s memory');
    assert.deepEqual(imageArgs(nvdimm), [
      '-object', 'memory-backend-file,id=image-mem,mem-path=/img/kata.img,size=6M,share=on,readonly=on',
      '-device', 'nvdimm,id=image,memdev=image-mem,unarmed=on',
    ]);
    assert.match(kernelCommandLine(nvdimm), / root=\/dev\/pmem0 rootfstype=erofs ro init=\/init rootflags=dax=always /);
    assert.deepEqual(valuesOf(bootArgs(nvdimm), '-initrd'), ['/img/boot.img'], 'the boot initrd mounts the image');

    const disk = withImage('disable_image_nvdimm = true\nrootfs_type = "ext4"');
    assert.deepEqual(machineArgs(disk).slice(0, 2), ['-machine', 'pc']);
    assert.deepEqual(memoryArgs(disk), ['-m', '512M,slots=10,maxmem=4608M']);
    assert.deepEqual(imageArgs(disk), ['-drive', 'file=/img/kata.img,if=none,id=image,format=raw,readonly=on', '-device', 'virtio-blk-pci,drive=image']);
    assert.match(kernelCommandLine(disk), / root=\/dev\/vda1 rootfstype=ext4 ro init=\/init /);
    assert.doesNotMatch(kernelCommandLine(disk), /dax/);
  });

  it('adds a free-page-reporting balloon unless free_page_reporting = false', () => {
    assert.deepEqual(balloonArgs(spec()), ['-device', 'virtio-balloon-pci,id=balloon0,free-page-reporting=on']);
    assert.deepEqual(balloonArgs(spec('free_page_reporting = false')), []);
  });

  it('assembles a full command line that daemonizes with a pid file, QMP and a console log', () => {
    const args = qemuArgs(spec());
    for (const flag of ['-nodefaults', '-nographic', '-no-user-config', '-no-reboot', '-daemonize']) assert.ok(args.includes(flag), flag);
    assert.deepEqual(valuesOf(args, '-pidfile'), ['/run/kata-ts/vm/sb1/qemu.pid']);
    assert.deepEqual(valuesOf(args, '-qmp'), ['unix:/run/kata-ts/vm/sb1/qmp.sock,server=on,wait=off']);
    assert.ok(valuesOf(args, '-chardev').includes('file,id=console,path=/run/kata-ts/vm/sb1/console.log'));
    assert.deepEqual(valuesOf(args, '-serial'), ['chardev:console']);
    assert.deepEqual(valuesOf(args, '-m'), ['512M,slots=10,maxmem=4608M']);
    assert.ok(valuesOf(args, '-device').includes('virtio-rng-pci,rng=rng0'));
    assert.ok(valuesOf(args, '-object').includes('rng-random,id=rng0,filename=/dev/urandom'));
  });
});

describe('VM templates on the QEMU command line', () => {
  it('puts a template VM\'s RAM in its memory file (shared), a clone\'s in a private mapping of it, waiting for the state', () => {
    const save = qemuArgs(spec('', { template: { memoryFile: '/run/t/k/memory', role: 'save' } }));
    const restore = qemuArgs(spec('', { template: { memoryFile: '/run/t/k/memory', role: 'restore' } }));
    assert.ok(valuesOf(save, '-machine').includes('memory-backend=pc.ram'));
    assert.ok(valuesOf(save, '-object').includes('memory-backend-file,id=pc.ram,size=512M,mem-path=/run/t/k/memory,share=on'));
    assert.deepEqual(valuesOf(save, '-incoming'), []);
    assert.ok(valuesOf(restore, '-object').includes('memory-backend-file,id=pc.ram,size=512M,mem-path=/run/t/k/memory,share=off'));
    assert.deepEqual(valuesOf(restore, '-incoming'), ['defer']);
    assert.deepEqual(templateArgs(spec()), [], 'no template, plain RAM');
  });

  it('with virtio-fs: no share device in the template or a clone (it is hot-plugged), and a clone maps its own copy shared', () => {
    const save = spec('shared_fs = "virtio-fs"', { template: { memoryFile: '/run/t/k/memory', role: 'save' } });
    const restore = spec('shared_fs = "virtio-fs"', { template: { memoryFile: '/dev/shm/kata-ts-ram/abc', role: 'restore' } });
    for (const vm of [save, restore]) {
      const args = qemuArgs(vm);
      assert.ok(!args.some((a) => a.includes('vhost-user-fs') || a.includes('memory-backend-memfd')), args.join(' '));
      assert.ok(!args.some((a) => a.includes('virtio-9p')));
      assert.equal(valuesOf(args, '-object').filter((o) => o.includes('id=pc.ram')).length, 1, 'one RAM backend');
    }
    assert.ok(valuesOf(qemuArgs(restore), '-object').includes('memory-backend-file,id=pc.ram,size=512M,mem-path=/dev/shm/kata-ts-ram/abc,share=on'));
    assert.equal(needsVirtiofsd(save), false, 'the template VM has no share device');
    assert.equal(needsVirtiofsd(restore), true);
    assert.equal(sharedFsHotplugged(restore.hypervisor, true), true);
    assert.equal(sharedFsHotplugged(spec('shared_fs = "virtio-fs"').hypervisor, false), false, 'a booted VM has the device from the start');
    assert.equal(sharedFsHotplugged(spec().hypervisor, true), false, 'a 9p clone keeps its device');
    assert.deepEqual(virtioFsDevice(restore), {
      chardev: { id: 'virtiofs', backend: { type: 'socket', data: { addr: { type: 'unix', data: { path: '/run/kata-ts/vm/sb1/virtiofsd.sock' } }, server: false } } },
      device: { driver: 'vhost-user-fs-pci', id: 'virtiofs0', chardev: 'virtiofs', tag: 'kataShared', 'queue-size': 1024, bus: 'pci.0', addr: '0x1f' },
    });
  });

  it('keys a template by the device set and the files QEMU loads, not by the sandbox\'s paths', async () => {
    const a = await templateKey(spec());
    assert.equal(await templateKey(spec('', { sandboxId: 'other', layout: vmLayout('/run/kata-ts/vm/other') })), a);
    assert.notEqual(await templateKey(spec('default_memory = 1024')), a);
    assert.notEqual(await templateKey(spec('', { accelerator: 'kvm' })), a);
    assert.equal(templateFits(spec()), undefined);
    assert.match(templateFits(spec('', { network: { nics: [{ tap: 'tap0', mac: '02:00:00:00:00:01', vhost: false }] } })) ?? '', /network devices/);
    assert.match(templateFits(spec('use_vsock = true')) ?? '', /^use_vsock = true/);
    assert.match(templateFits(spec('rootless = true')) ?? '', /^rootless = true/);
  });

  it('keeps the most recently used templates and removes the others', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'kata-ts-templates-'));
    try {
      const keys = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'];
      for (const [i, key] of keys.entries()) {
        await mkdir(path.join(root, key));
        await writeFile(path.join(root, key, 'memory'), 'm');
        await writeFile(path.join(root, key, 'state'), 's');
        // a1 is the oldest use, a6 the newest.
        const used = new Date(Date.now() - (keys.length - i) * 60_000);
        await utimes(path.join(root, key), used, used);
      }
      await mkdir(path.join(root, 'unsaved'));
      const logged: string[] = [];
      const logger = new Logger({ format: 'text', debug: false, sink: (line) => logged.push(line) });
      await pruneTemplates(root, 'a1', logger);
      assert.deepEqual((await readdir(root)).sort(), ['a1', 'a4', 'a5', 'a6', 'unsaved'], `the template just made and the ${templatesKept - 1} most recently used others stay`);
      assert.equal(logged.length, 2);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('VM templates in use, and templates that others could write', () => {
  const makeSaved = async (root: string, key: string, minutesAgo: number): Promise<void> => {
    await mkdir(path.join(root, key), { mode: 0o700 });
    await writeFile(path.join(root, key, 'memory'), 'm', { mode: 0o600 });
    await writeFile(path.join(root, key, 'state'), 's', { mode: 0o600 });
    const used = new Date(Date.now() - minutesAgo * 60_000);
    await utimes(path.join(root, key), used, used);
  };
  const quiet = new Logger({ format: 'text', debug: false, sink: () => undefined });

  it('a prune racing a restore leaves the template being restored; once let go, the next prune removes it', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'kata-ts-templates-'));
    try {
      const keys = ['old', 'b', 'c', 'd', 'new'];
      for (const [i, key] of keys.entries()) await makeSaved(root, key, 100 - i * 10);
      let seen: string[] = [];
      const restored = await withSavedTemplate(templateAt(root, 'old'), async (template) => {
        // markUsed made it the most recent: age it again, so that it is the one a prune would pick.
        const old = new Date(Date.now() - 1000 * 60_000);
        await utimes(template.dir, old, old);
        await pruneTemplates(root, 'new', quiet);
        seen = (await readdir(root)).filter((f) => !f.endsWith('.lock')).sort();
        return readFile(template.stateFile, 'utf8');
      });
      assert.deepEqual(restored, { value: 's' }, 'the restore read the state it was given');
      assert.ok(seen.includes('old'), `the template in use stayed: ${seen.join(' ')}`);
      await pruneTemplates(root, 'new', quiet);
      assert.ok(!(await readdir(root)).includes('old'), 'removed once nobody used it');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('a template whose directory or files others can write, or that is a symlink, is refused', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'kata-ts-templates-'));
    try {
      await makeSaved(root, 'k', 0);
      const template = templateAt(root, 'k');
      assert.equal(await templateDistrust(template), undefined);
      await chmod(template.dir, 0o777);
      await assert.rejects(withSavedTemplate(template, async () => 'restored'), /the VM template .*\/k cannot be used: .*\/k is writable by others \(mode 777\)/);
      await chmod(template.dir, 0o700);
      await chmod(template.stateFile, 0o666);
      assert.match(await templateDistrust(template) ?? '', /state is writable by others/);
      await chmod(template.stateFile, 0o600);
      await rm(template.memoryFile);
      await symlink('/etc/passwd', template.memoryFile);
      assert.match(await templateDistrust(template) ?? '', /memory is not a file/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('QEMU option strings', () => {
  it('doubles commas in paths, so a path cannot add options', () => {
    const layout = vmLayout('/run/x,y/sb1');
    const config = parseRuntimeConfig('/etc/kata/configuration.toml', configText('image = "/img/a,readonly=off.img"\nentropy_source = "/dev/u,random"'), 'flag');
    const args = qemuArgs({ sandboxId: 'sb1', hypervisor: config.hypervisor, accelerator: 'tcg', layout, hostCpus: 2, hostMemoryMiB: 4096, agentDebug: false, imageBytes: 4 << 20 });
    const joined = args.join(' ');
    assert.match(joined, /mem-path=\/img\/a,,readonly=off\.img,size=/);
    assert.match(joined, /filename=\/dev\/u,,random /);
    assert.match(joined, /path=\/run\/x,,y\/sb1\/shared,/);
    assert.match(joined, /unix:\/run\/x,,y\/sb1\/qmp\.sock,server=on/);
  });
});

describe('QEMU confinement', () => {
  it('runs QEMU under its seccomp filter by default; seccompsandbox = "" turns it off; a bad value is refused', () => {
    const args = (extra: string): string[] => {
      const config = parseRuntimeConfig('/etc/kata/configuration.toml', configText(extra), 'flag');
      return qemuArgs({ sandboxId: 'sb1', hypervisor: config.hypervisor, accelerator: 'tcg', layout: vmLayout('/run/x/sb1'), hostCpus: 2, hostMemoryMiB: 4096, agentDebug: false });
    };
    assert.deepEqual(valuesOf(args(''), '-sandbox'), ['on,obsolete=deny']);
    assert.deepEqual(valuesOf(args('seccompsandbox = "on,obsolete=deny,resourcecontrol=deny"'), '-sandbox'), ['on,obsolete=deny,resourcecontrol=deny']);
    assert.deepEqual(valuesOf(args('seccompsandbox = ""'), '-sandbox'), []);
    assert.throws(() => args('seccompsandbox = "on,spawn=deny -device evil"'), /seccompsandbox must be/);
  });
});
