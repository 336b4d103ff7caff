import type { OciMount, OciProcess, OciResources, OciSeccomp, OciSpec } from '../agent-protocol/messages.js';
import { invalid } from './agent-error.js';

/** The OCI runtime spec JSON (config.json) that crun reads. */
export type OciConfig = Record<string, unknown>;

/** What runc-driven callers get when their spec sets no PATH (crun would find no executable). */
const defaultPath = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

/**
 * RLIM_INFINITY (2^64 - 1) reaches the agent as a double (protobuf uint64 read as a
 * Number), which JSON.stringify would write as 18446744073709552000: crun refuses
 * that as out of range. Any rlimit past 2^53 can only mean "unlimited".
 */
const rlimInfinityMark = '<RLIM_INFINITY>';
const rlimitValue = (v: number): number | string => (v > Number.MAX_SAFE_INTEGER ? rlimInfinityMark : v);

/** config.json or process.json text for crun: an unlimited rlimit as the exact uint64 it is. */
export function ociJson(value: OciConfig): string {
  return JSON.stringify(value).replaceAll(`"${rlimInfinityMark}"`, '18446744073709551615');
}

export function processToOci(p: OciProcess): Record<string, unknown> {
  const out: Record<string, unknown> = {
    terminal: p.Terminal,
    user: { uid: p.User?.UID ?? 0, gid: p.User?.GID ?? 0, ...(p.User?.AdditionalGids.length ? { additionalGids: p.User.AdditionalGids } : {}) },
    args: p.Args,
    env: p.Env.some((e) => e.startsWith('PATH=')) ? p.Env : [...p.Env, defaultPath],
    cwd: p.Cwd || '/',
    noNewPrivileges: p.NoNewPrivileges,
  };
  if (p.ConsoleSize) out.consoleSize = { height: p.ConsoleSize.Height, width: p.ConsoleSize.Width };
  if (p.Capabilities) {
    out.capabilities = Object.fromEntries(Object.entries(p.Capabilities).map(([k, v]) => [lowerFirst(k), v]));
  }
  if (p.Rlimits.length > 0) out.rlimits = p.Rlimits.map((r) => ({ type: r.Type, hard: rlimitValue(r.Hard), soft: rlimitValue(r.Soft) }));
  if (p.OOMScoreAdj) out.oomScoreAdj = p.OOMScoreAdj;
  if (p.ApparmorProfile) out.apparmorProfile = p.ApparmorProfile;
  return out;
}

function mountToOci(m: OciMount): Record<string, unknown> {
  return { destination: m.destination, type: m.type, source: m.source, options: m.options };
}

export function deviceRulesToOci(rules: OciResources['Devices']): Record<string, unknown>[] {
  return rules.map((d) => ({ allow: d.Allow, type: d.Type || 'a', major: d.Major < 0 ? undefined : d.Major, minor: d.Minor < 0 ? undefined : d.Minor, access: d.Access }));
}

/** Memory, CPU and pids limits in crun's words; zero means "not set" in the protobuf, so it is left out. */
export function limitsToOci(resources: OciResources | null | undefined): Record<string, unknown> {
  const memory = resources?.Memory;
  const cpu = resources?.CPU;
  const set = (entries: Array<[string, number | string | undefined]>): Record<string, number | string> =>
    Object.fromEntries(entries.filter((e): e is [string, number | string] => Boolean(e[1])));
  const out: Record<string, unknown> = {};
  const memoryOut = set([['limit', memory?.Limit], ['reservation', memory?.Reservation], ['swap', memory?.Swap]]);
  if (Object.keys(memoryOut).length > 0) out.memory = memoryOut;
  const cpuOut = set([['shares', cpu?.Shares], ['quota', cpu?.Quota], ['period', cpu?.Period], ['cpus', cpu?.Cpus], ['mems', cpu?.Mems]]);
  if (Object.keys(cpuOut).length > 0) out.cpu = cpuOut;
  if (resources?.Pids?.Limit) out.pids = { limit: resources.Pids.Limit };
  return out;
}

/**
 * Splits a spec's sysctls into those crun sets in the container and the `net.*`
 * ones. The container joins the VM's network namespace (the pod's network), so
 * crun refuses `net.*` sysctls there; they belong to the VM, which is the
 * namespace they were meant for.
 */
export function splitNetworkSysctls(sysctl: Record<string, string>): { container: Record<string, string>; network: Record<string, string> } {
  const container: Record<string, string> = {};
  const network: Record<string, string> = {};
  for (const [key, value] of Object.entries(sysctl)) (key.startsWith('net.') ? network : container)[key] = value;
  return { container, network };
}

/**
 * Turns the protobuf Spec into crun's config.json for a container that lives
 * in this guest: host namespace paths, host hooks and host cgroup paths mean
 * nothing here, and the container shares the VM's network namespace.
 */
export function specToOciConfig(spec: OciSpec, containerId: string, rootfs: string): OciConfig {
  if (!spec.Process || spec.Process.Args.length === 0) throw invalid('OCI spec has no process args');
  const linux = spec.Linux;
  // The pod's containers share the VM's network; a user namespace needs the spec's id mappings.
  const mapped = (linux?.UIDMappings?.length ?? 0) > 0 && (linux?.GIDMappings?.length ?? 0) > 0;
  const namespaces = (linux?.Namespaces ?? [])
    .filter((ns) => ns.Type !== 'network' && (ns.Type !== 'user' || mapped))
    .map((ns) => ({ type: ns.Type }));
  const resources = linux?.Resources;
  const config: OciConfig = {
    ociVersion: spec.Version || '1.0.2',
    process: processToOci(spec.Process),
    root: { path: rootfs, readonly: spec.Root?.Readonly ?? false },
    // Without a UTS namespace the container has the VM's hostname, set by CreateSandbox
    // (containerd's host-network pods); crun refuses a hostname there.
    ...(namespaces.some((ns) => ns.type === 'uts') ? { hostname: spec.Hostname } : {}),
    mounts: spec.Mounts.map(mountToOci),
    annotations: spec.Annotations,
    linux: {
      namespaces,
      cgroupsPath: `/kata-ts/${containerId}`,
      maskedPaths: linux?.MaskedPaths ?? [],
      readonlyPaths: linux?.ReadonlyPaths ?? [],
      devices: (linux?.Devices ?? []).map((d) => ({ path: d.Path, type: d.Type, major: d.Major, minor: d.Minor, fileMode: d.FileMode, uid: d.UID, gid: d.GID })),
      sysctl: splitNetworkSysctls(linux?.Sysctl ?? {}).container,
      resources: { devices: deviceRulesToOci(resources?.Devices ?? []), ...limitsToOci(resources) },
    },
  };
  if (linux?.RootfsPropagation) (config.linux as Record<string, unknown>).rootfsPropagation = linux.RootfsPropagation;
  if (mapped && namespaces.some((ns) => ns.type === 'user')) {
    const toOci = (m: { HostID: number; ContainerID: number; Size: number }): Record<string, number> => ({ containerID: m.ContainerID, hostID: m.HostID, size: m.Size });
    Object.assign(config.linux as Record<string, unknown>, { uidMappings: linux!.UIDMappings.map(toOci), gidMappings: linux!.GIDMappings.map(toOci) });
  }
  if (linux?.Seccomp?.DefaultAction) (config.linux as Record<string, unknown>).seccomp = seccompToOci(linux.Seccomp);
  return config;
}

/** The profile for crun, which applies it with libseccomp when the container starts. */
function seccompToOci(seccomp: OciSeccomp): Record<string, unknown> {
  return {
    defaultAction: seccomp.DefaultAction,
    architectures: seccomp.Architectures ?? [],
    syscalls: (seccomp.Syscalls ?? []).map((s) => ({
      names: s.Names,
      action: s.Action,
      args: (s.Args ?? []).map((a) => ({ index: Number(a.Index), value: Number(a.Value), valueTwo: Number(a.ValueTwo), op: a.Op })),
    })),
  };
}
