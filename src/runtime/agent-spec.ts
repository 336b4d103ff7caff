import type { OciMount, OciProcess, OciSpec } from '../agent-protocol/messages.js';
import type { OciProcessSpec, OciRuntimeSpec } from './oci-spec-types.js';


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
export function specToAgent(spec: OciRuntimeSpec, guestRootfs: string, mounts: OciMount[]): OciSpec {
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
      UIDMappings: [],
      GIDMappings: [],
      Sysctl: linux?.sysctl ?? {},
      Resources: resources
        ? {
            Devices: (resources.devices ?? []).map((d) => ({ Allow: d.allow, Type: d.type ?? 'a', Major: d.major ?? -1, Minor: d.minor ?? -1, Access: d.access ?? 'rwm' })),
            Memory: resources.memory?.limit ? { Limit: resources.memory.limit, Reservation: 0, Swap: 0 } : null,
            CPU: resources.cpu ? { Shares: resources.cpu.shares ?? 0, Quota: resources.cpu.quota ?? 0, Period: resources.cpu.period ?? 0, Cpus: '', Mems: '' } : null,
            Pids: resources.pids?.limit ? { Limit: resources.pids.limit } : null,
          }
        : null,
      CgroupsPath: linux?.cgroupsPath ?? '',
      Namespaces: (linux?.namespaces ?? []).map((ns) => ({ Type: ns.type, Path: '' })),
      Devices: (linux?.devices ?? []).map((d) => ({ Path: d.path, Type: d.type, Major: d.major, Minor: d.minor, FileMode: d.fileMode ?? 0o666, UID: d.uid ?? 0, GID: d.gid ?? 0 })),
      MaskedPaths: linux?.maskedPaths ?? [],
      ReadonlyPaths: linux?.readonlyPaths ?? [],
      RootfsPropagation: linux?.rootfsPropagation ?? '',
    },
  };
}

