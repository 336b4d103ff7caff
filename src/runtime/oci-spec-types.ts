/** The parts of the OCI runtime spec (config.json) that kata-ts reads; everything else passes through untouched. */
export interface OciRuntimeSpec {
  ociVersion?: string;
  process?: OciProcessSpec;
  root?: { path: string; readonly?: boolean };
  hostname?: string;
  mounts?: OciMountSpec[];
  annotations?: Record<string, string>;
  linux?: OciLinuxSpec;
  hooks?: OciHooks;
}

/** runtime-spec's lifecycle hooks (config.json `hooks`). */
export interface OciHook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export type OciHookKind = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';
export type OciHooks = Partial<Record<OciHookKind, OciHook[]>>;

export interface OciProcessSpec {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user?: { uid?: number; gid?: number; additionalGids?: number[]; username?: string };
  args?: string[];
  env?: string[];
  cwd?: string;
  capabilities?: Partial<Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>>;
  rlimits?: Array<{ type: string; hard: number; soft: number }>;
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
}

export interface OciMountSpec {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciLinuxResources {
  devices?: Array<{ allow: boolean; type?: string; major?: number; minor?: number; access?: string }>;
  memory?: { limit?: number; reservation?: number; swap?: number };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  pids?: { limit?: number };
}

export interface OciLinuxSpec {
  namespaces?: Array<{ type: string; path?: string }>;
  resources?: OciLinuxResources;
  cgroupsPath?: string;
  devices?: Array<{ path: string; type: string; major: number; minor: number; fileMode?: number; uid?: number; gid?: number }>;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  sysctl?: Record<string, string>;
  rootfsPropagation?: string;
  seccomp?: OciSeccompSpec;
  uidMappings?: OciIdMapping[];
  gidMappings?: OciIdMapping[];
}

export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface OciSeccompSpec {
  defaultAction: string;
  architectures?: string[];
  syscalls?: Array<{ names: string[]; action: string; errnoRet?: number; args?: Array<{ index: number; value: number; valueTwo?: number; op: string }> }>;
}
