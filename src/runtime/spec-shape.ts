/**
 * The shape of config.json, checked before anything is created: the fields
 * kata-ts reads have the types runtime-spec gives them, no string carries a
 * NUL byte (it would cut a path or an argument short in C), and nothing is
 * absurdly large or deep. Each problem is one line naming the JSON path.
 */

export const specLimits = {
  /** config.json's size in bytes. */
  bytes: 16 * 1024 * 1024,
  /** Nesting of objects and arrays. */
  depth: 64,
  /** Elements of one array. */
  arrayLength: 65_536,
} as const;

type Check = (value: unknown, at: string) => string | undefined;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const str: Check = (v, at) => (typeof v === 'string' ? undefined : `${at} must be a string`);
const bool: Check = (v, at) => (typeof v === 'boolean' ? undefined : `${at} must be true or false`);
const int: Check = (v, at) => (Number.isSafeInteger(v) ? undefined : `${at} must be an integer`);
const uint: Check = (v, at) => (Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : `${at} must be a non-negative integer`);
/** A uint64 as JSON.parse reads it: past 2^53 it is no longer exact, which is fine for limits (RLIM_INFINITY is 2^64 - 1). */
const uint64: Check = (v, at) => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 2 ** 64 ? undefined : `${at} must be a non-negative integer`);
const absPath: Check = (v, at) => (typeof v === 'string' && v.startsWith('/') ? undefined : `${at} must be an absolute path`);
/** A path inside the container that cannot climb out of where it starts: absolute, no ".." component. */
const containedPath: Check = (v, at) => absPath(v, at) ?? ((v as string).split('/').includes('..') ? `${at} must not contain ".." (${JSON.stringify(v)})` : undefined);

function arrayOf(item: Check): Check {
  return (v, at) => {
    if (!Array.isArray(v)) return `${at} must be an array`;
    for (const [i, e] of v.entries()) {
      const problem = item(e, `${at}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  };
}

function mapOf(item: Check): Check {
  return (v, at) => {
    if (!isObject(v)) return `${at} must be an object`;
    for (const [k, e] of Object.entries(v)) {
      const problem = item(e, `${at}.${k}`);
      if (problem) return problem;
    }
    return undefined;
  };
}

/** An object whose listed fields, when present, pass their checks (others pass through). */
function shape(fields: Record<string, Check>): Check {
  return (v, at) => {
    if (!isObject(v)) return `${at} must be an object`;
    for (const [k, check] of Object.entries(fields)) {
      if (v[k] === undefined || v[k] === null) continue;
      const problem = check(v[k], `${at}.${k}`);
      if (problem) return problem;
    }
    return undefined;
  };
}

const namespaceTypes = new Set(['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time']);
const namespace: Check = (v, at) => {
  const problem = shape({ type: str, path: absPath })(v, at);
  if (problem) return problem;
  const type = (v as { type?: unknown }).type;
  return typeof type === 'string' && namespaceTypes.has(type) ? undefined : `${at}.type must be one of ${[...namespaceTypes].join(', ')}`;
};

const idMapping = shape({ containerID: uint, hostID: uint, size: uint });

/** Every capability Linux 6.1 (the guest kernel) knows, 0 to 40: runc and crun refuse any other name. */
export const knownCapabilities: ReadonlySet<string> = new Set([
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT',
  'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE',
  'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ',
  'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
].map((name) => `CAP_${name}`));

/** The rlimits setrlimit(2) takes, by runtime-spec's names: runc and crun refuse any other type. */
export const knownRlimits: ReadonlySet<string> = new Set([
  'AS', 'CORE', 'CPU', 'DATA', 'FSIZE', 'LOCKS', 'MEMLOCK', 'MSGQUEUE', 'NICE', 'NOFILE', 'NPROC', 'RSS', 'RTPRIO', 'RTTIME', 'SIGPENDING', 'STACK',
].map((name) => `RLIMIT_${name}`));

/** A string from a closed set; an unknown one fails the way runc fails it, naming the value. */
function oneOf(known: ReadonlySet<string>, what: string): Check {
  return (v, at) => str(v, at) ?? (known.has(v as string) ? undefined : `${at} ${JSON.stringify(v)} is not a known ${what}`);
}

const capabilityList = arrayOf(oneOf(knownCapabilities, 'capability'));

/** One rlimit: a known type, and a soft value the hard one allows (setrlimit fails otherwise). */
const rlimit: Check = (v, at) => {
  const problem = shape({ type: oneOf(knownRlimits, 'rlimit type'), hard: uint64, soft: uint64 })(v, at);
  if (problem) return problem;
  const { type, hard, soft } = v as { type?: unknown; hard?: number; soft?: number };
  if (type === undefined) return `${at}.type is missing`;
  if (hard !== undefined && soft !== undefined && soft > hard) return `${at}: soft ${soft} is above hard ${hard}`;
  return undefined;
};

const processShape = shape({
  terminal: bool,
  consoleSize: shape({ height: uint, width: uint }),
  user: shape({ uid: uint, gid: uint, additionalGids: arrayOf(uint), umask: uint, username: str }),
  args: arrayOf(str),
  env: arrayOf(str),
  cwd: absPath,
  capabilities: shape({ bounding: capabilityList, effective: capabilityList, inheritable: capabilityList, permitted: capabilityList, ambient: capabilityList }),
  rlimits: arrayOf(rlimit),
  noNewPrivileges: bool,
  apparmorProfile: str,
  oomScoreAdj: int,
  selinuxLabel: str,
});

const specShape = shape({
  ociVersion: str,
  process: processShape,
  root: shape({ path: str, readonly: bool }),
  hostname: str,
  mounts: arrayOf(shape({ destination: containedPath, type: str, source: str, options: arrayOf(str) })),
  annotations: mapOf(str),
  linux: shape({
    namespaces: arrayOf(namespace),
    uidMappings: arrayOf(idMapping),
    gidMappings: arrayOf(idMapping),
    sysctl: mapOf(str),
    cgroupsPath: str,
    maskedPaths: arrayOf(str),
    readonlyPaths: arrayOf(str),
    rootfsPropagation: str,
    resources: shape({
      memory: shape({ limit: int, reservation: int, swap: int }),
      cpu: shape({ shares: uint, quota: int, period: uint, cpus: str, mems: str }),
      pids: shape({ limit: int }),
      devices: arrayOf(shape({ allow: bool, type: str, major: int, minor: int, access: str })),
    }),
    devices: arrayOf(shape({ path: absPath, type: str, major: int, minor: int, fileMode: uint, uid: uint, gid: uint })),
    seccomp: shape({ defaultAction: str, architectures: arrayOf(str), syscalls: arrayOf(shape({ names: arrayOf(str), action: str, errnoRet: uint })) }),
  }),
});

/** NUL bytes, depth and array sizes, anywhere in the document. */
function structureProblem(value: unknown, at: string, depth: number): string | undefined {
  if (typeof value === 'string') return value.includes('\0') ? `${at} contains a NUL byte` : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  if (depth > specLimits.depth) return `${at} is nested more than ${specLimits.depth} levels deep`;
  if (Array.isArray(value)) {
    if (value.length > specLimits.arrayLength) return `${at} has ${value.length} elements (at most ${specLimits.arrayLength})`;
    for (const [i, e] of value.entries()) {
      const problem = structureProblem(e, `${at}[${i}]`, depth + 1);
      if (problem) return problem;
    }
    return undefined;
  }
  for (const [k, e] of Object.entries(value)) {
    if (k.includes('\0')) return `${at} has a key with a NUL byte`;
    const problem = structureProblem(e, `${at}.${k}`, depth + 1);
    if (problem) return problem;
  }
  return undefined;
}

/** What is wrong with a parsed config.json, or undefined. */
export function specShapeProblem(spec: unknown): string | undefined {
  return structureProblem(spec, 'config.json', 0) ?? specShape(spec, 'config.json');
}

/** What is wrong with a process object (an exec --process file), or undefined. */
export function processShapeProblem(value: unknown, where: string): string | undefined {
  return structureProblem(value, where, 0) ?? processShape(value, where);
}
