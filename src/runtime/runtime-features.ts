import { knownCapabilities } from './spec-shape.js';
import { ociVersion } from './describe-container.js';

/**
 * What kata-ts takes of a runtime-spec config, in the spec's features.json
 * shape (runc features; CRI-O asks at every start, containerd 2 for
 * introspection). It says what really reaches the container: hooks that run
 * in the container's namespaces (createContainer, startContainer) do not, the
 * guest's crun applies seccomp, and host-side AppArmor and SELinux do not exist
 * in the VM.
 */
export function runtimeFeatures(version: string): Record<string, unknown> {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: ociVersion,
    hooks: ['prestart', 'createRuntime', 'poststart', 'poststop'],
    mountOptions: [
      'bind', 'rbind', 'ro', 'rw', 'shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate', 'unbindable', 'runbindable',
      'nosuid', 'suid', 'nodev', 'dev', 'noexec', 'exec', 'noatime', 'atime', 'nodiratime', 'diratime', 'relatime', 'strictatime',
      'sync', 'async', 'dirsync', 'mand', 'nomand', 'remount', 'tmpcopyup',
    ],
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'],
      capabilities: [...knownCapabilities],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
      seccomp: {
        enabled: true,
        actions: ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_LOG', 'SCMP_ACT_TRAP', 'SCMP_ACT_TRACE'],
        operators: ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'],
        archs: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: {
      'io.github.kata-ts.version': version,
      'io.github.kata-ts.vm': 'each container runs in a QEMU VM; its processes are the guest\'s',
    },
  };
}
