import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cgroupRelativePath, sandboxCgroupRelative, parseCgroupMounts } from '../../src/cgroups/host-cgroups.js';

describe('host cgroups', () => {
  it('reads v1, v2 and hybrid layouts from mountinfo', () => {
    const hybrid = [
      '30 27 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755',
      '31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate',
      '33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct',
      '34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory',
      '35 30 0:31 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd',
    ].join('\n');
    assert.deepEqual(parseCgroupMounts(hybrid), [
      { mountPoint: '/sys/fs/cgroup/unified', version: 2, controllers: [] },
      { mountPoint: '/sys/fs/cgroup/cpu,cpuacct', version: 1, controllers: ['cpu', 'cpuacct'] },
      { mountPoint: '/sys/fs/cgroup/memory', version: 1, controllers: ['memory'] },
      { mountPoint: '/sys/fs/cgroup/systemd', version: 1, controllers: ['xattr', 'name=systemd'] },
    ]);
    assert.deepEqual(parseCgroupMounts('24 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw'), [{ mountPoint: '/sys/fs/cgroup', version: 2, controllers: [] }]);
  });

  it('takes cgroupfs paths as they are and expands the systemd driver\'s slice:prefix:name as runc does', () => {
    assert.equal(cgroupRelativePath('/kubepods/burstable/pod1/abc'), '/kubepods/burstable/pod1/abc');
    assert.equal(cgroupRelativePath('libpod_parent/libpod-1'), '/libpod_parent/libpod-1');
    assert.equal(cgroupRelativePath('kubepods-burstable-pod1.slice:cri-containerd:abc'), '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope');
    assert.equal(cgroupRelativePath('system.slice:docker:abc'), '/system.slice/docker-abc.scope');
  });

  it('places the sandbox as Kata does: kata-sandbox-<id> under the parent with sandbox_cgroup_only, kata_<name> without', () => {
    assert.equal(sandboxCgroupRelative('/kubepods/burstable/pod1/abc', 'sb1', true), '/kubepods/burstable/pod1/kata-sandbox-sb1');
    assert.equal(sandboxCgroupRelative('/kubepods/burstable/pod1/abc', 'sb1', false), '/kubepods/burstable/pod1/kata_abc');
    assert.equal(sandboxCgroupRelative('kubepods-pod1.slice:cri-containerd:abc', 'sb1', false), '/kubepods.slice/kubepods-pod1.slice/kata_cri-containerd-abc.scope');
  });
});
