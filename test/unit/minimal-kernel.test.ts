import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { BuildProgress, kernelConfigFragment, kernelProgressEveryMs, missingOptions, wantedOptions } from '../../src/image/minimal-kernel.js';

describe('the kata-ts guest kernel config', () => {
  it('finds the options olddefconfig dropped', () => {
    const fragment = '# comment\nCONFIG_A=y\nCONFIG_B=n\nCONFIG_NR=64\nCONFIG_S="x"\n';
    assert.deepEqual(wantedOptions(fragment), ['CONFIG_A=y', 'CONFIG_NR=64']);
    assert.deepEqual(missingOptions(fragment, 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_NR=32\n'), ['CONFIG_NR=64']);
    assert.deepEqual(missingOptions(fragment, 'CONFIG_NR=64\nCONFIG_A=y\n'), []);
  });

  it('builds in what a sandbox needs: PVH boot, virtio, the nvdimm root with DAX, 9p, virtio-fs, vsock, cgroups, seccomp', async () => {
    const wanted = new Set(wantedOptions(await readFile(kernelConfigFragment, 'utf8')));
    for (const option of ['PVH', 'VIRTIO_PCI', 'VIRTIO_CONSOLE', 'VIRTIO_BLK', 'SCSI_VIRTIO', 'BLK_DEV_PMEM', 'ACPI_NFIT', 'FS_DAX', 'EROFS_FS', '9P_FS', 'NET_9P_VIRTIO',
      'VSOCKETS_LOOPBACK', 'VIRTIO_VSOCKETS', 'FUSE_FS', 'VIRTIO_FS', 'HOTPLUG_PCI_ACPI', 'MEMCG', 'CGROUP_PIDS', 'CGROUP_BPF', 'SECCOMP_FILTER', 'PID_NS', 'NET_NS', 'EXT4_FS', 'VIRTIO_BALLOON', 'PAGE_REPORTING']) {
      assert.ok(wanted.has(`CONFIG_${option}=y`), option);
    }
  });
});

describe('the guest kernel build\'s progress lines', () => {
  it('counts kbuild\'s steps across chunk boundaries and names the latest, with the time so far', () => {
    const progress = new BuildProgress();
    progress.take('  SYNC    include/config/auto.conf\n  CC      kernel/fo');
    progress.take('rk.o\n  AS      arch/x86/entry/entry_64.o\nIn file included from x.c:1:\n  LD [M]  fs/x.ko\n');
    assert.equal(progress.steps, 4);
    assert.equal(progress.line(452_000), 'compiling the guest kernel: 7 min 32 s so far, 4 build steps, now LD [M] fs/x.ko');
    assert.equal(new BuildProgress().line(0), 'compiling the guest kernel: 0 min 0 s so far, 0 build steps');
    assert.ok(kernelProgressEveryMs <= 30_000, 'at least every 30 s');
  });
});
