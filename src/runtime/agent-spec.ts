import type { OciMount, OciProcess, OciResources, OciSeccomp, OciSpec } from '../agent-protocol/messages.js';
import type { OciIdMapping, OciLinuxResources, OciProcessSpec, OciRuntimeSpec, OciSeccompSpec } from './oci-spec-types.js';

/** config.json's process as the agent's protobuf Process (Kata's oci.proto field names). */
export function processToAgent(p: OciProcessSpec): OciProcess {
  return {
    Terminal: p.terminal ?? false,
    ConsoleSize: p.consoleSize ? { Height: p.consoleSize.height, Width: p.consoleSize.width } : null,
    User: { UID: p.user?.uid ?? 0, GID: p.user?.gid ?? 0, AdditionalGids: p.user?.additionalGids ?? [], Username: p.user?.username ?? '' },
    Args: p.args ?? [],
    Env: p.env ?? [],
    Cwd: p.cwd ?? '/',
    Capabilities: p.capabilities
      ? {
          Bounding: p.capabilities.bounding ?? [],
          Effective: p.capabilities.effective ?? [],
          Inheritable: p.capabilities.inheritable ?? [],
          Permitted: p.capabilities.permitted ?? [],
          Ambient: p.capabilities.ambient ?? [],
        }
      : null,
    Rlimits: (p.rlimits ?? []).map((r) => ({ Type: r.type, Hard: r.hard, Soft: r.soft })),
    NoNewPrivileges: p.noNewPrivileges ?? false,
    ApparmorProfile: p.apparmorProfile ?? '',
    OOMScoreAdj: p.oomScoreAdj ?? 0,
    SelinuxLabel: p.selinuxLabel ?? '',
  };
}

/**
 * The OCI spec as CreateContainer sends it: the rootfs and shared mounts
 * already rewritten to their paths in the guest.
 */
/**
 * OCI linux.resources -> the protobuf LinuxResources (0 / '' = not set, as the agent reads it).
 * cpusets name host CPUs and memory nodes, which the VM does not have: they stay out.
 */
export function resourcesToAgent(resources: OciLinuxResources): OciResources {
  const { memory, cpu, pids } = resources;
  return {
    Devices: (resources.devices ?? []).map((d) => ({ Allow: d.allow, Type: d.type ?? 'a', Major: d.major ?? -1, Minor: d.minor ?? -1, Access: d.access ?? 'rwm' })),
    Memory: memory ? { Limit: memory.limit ?? 0, Reservation: memory.reservation ?? 0, Swap: memory.swap ?? 0 } : null,
    CPU: cpu ? { Shares: cpu.shares ?? 0, Quota: cpu.quota ?? 0, Period: cpu.period ?? 0, Cpus: '', Mems: '' } : null,
    Pids: pids?.limit ? { Limit: pids.limit } : null,
  };
}

/** The spec's seccomp profile as Kata's protocol carries it (no errnoRet: the guest then answers EPERM). */
export function seccompToAgent(seccomp: OciSeccompSpec): OciSeccomp {
  return {
    DefaultAction: seccomp.defaultAction,
    Architectures: seccomp.architectures ?? [],
    Syscalls: (seccomp.syscalls ?? []).map((s) => ({
      Names: s.names,
      Action: s.action,
      Args: (s.args ?? []).map((a) => ({ Index: a.index, Value: a.value, ValueTwo: a.valueTwo ?? 0, Op: a.op })),
    })),
  };
}

function idMappingToAgent(m: OciIdMapping): { HostID: number; ContainerID: number; Size: number } {
  return { HostID: m.hostID, ContainerID: m.containerID, Size: m.size };
}

export function specToAgent(spec: OciRuntimeSpec, guestRootfs: string, mounts: OciMount[], options: { seccomp: boolean } = { seccomp: true }): OciSpec {
  const linux = spec.linux;
  const resources = linux?.resources;
  return {
    Version: spec.ociVersion ?? '1.0.2',
    Process: spec.process ? processToAgent(spec.process) : null,
    Root: { Path: guestRootfs, Readonly: spec.root?.readonly ?? false },
    Hostname: spec.hostname ?? '',
    Mounts: mounts,
    Annotations: spec.annotations ?? {},
    Linux: {
      // In the guest, "host" ids are the VM's: crun maps them in the container's user namespace.
      UIDMappings: (linux?.uidMappings ?? []).map(idMappingToAgent),
      GIDMappings: (linux?.gidMappings ?? []).map(idMappingToAgent),
      Sysctl: linux?.sysctl ?? {},
      Resources: resources ? resourcesToAgent(resources) : null,
      CgroupsPath: linux?.cgroupsPath ?? '',
      Namespaces: (linux?.namespaces ?? []).map((ns) => ({ Type: ns.type, Path: '' })),
      Devices: (linux?.devices ?? []).map((d) => ({ Path: d.path, Type: d.type, Major: d.major, Minor: d.minor, FileMode: d.fileMode ?? 0o666, UID: d.uid ?? 0, GID: d.gid ?? 0 })),
      MaskedPaths: linux?.maskedPaths ?? [],
      ReadonlyPaths: linux?.readonlyPaths ?? [],
      RootfsPropagation: linux?.rootfsPropagation ?? '',
      Seccomp: options.seccomp && linux?.seccomp ? seccompToAgent(linux.seccomp) : null,
    },
  };
}

