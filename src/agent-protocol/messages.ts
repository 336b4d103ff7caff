/** TypeScript shapes of the agent messages we use (as proto-loader decodes them with keepCase). */

export interface Storage {
  driver: string;
  driver_options: string[];
  source: string;
  fstype: string;
  options: string[];
  mount_point: string;
}

export interface Device {
  id: string;
  type: string;
  vm_path: string;
  container_path: string;
  options: string[];
}

export interface OciUser {
  UID: number;
  GID: number;
  AdditionalGids: number[];
  Username: string;
}

export interface OciProcess {
  Terminal: boolean;
  ConsoleSize: { Height: number; Width: number } | null;
  User: OciUser | null;
  Args: string[];
  Env: string[];
  Cwd: string;
  Capabilities: Record<'Bounding' | 'Effective' | 'Inheritable' | 'Permitted' | 'Ambient', string[]> | null;
  Rlimits: Array<{ Type: string; Hard: number; Soft: number }>;
  NoNewPrivileges: boolean;
  ApparmorProfile: string;
  OOMScoreAdj: number;
  SelinuxLabel: string;
}

export interface OciMount {
  destination: string;
  source: string;
  type: string;
  options: string[];
}

export interface OciSpec {
  Version: string;
  Process: OciProcess | null;
  Root: { Path: string; Readonly: boolean } | null;
  Hostname: string;
  Mounts: OciMount[];
  Annotations: Record<string, string>;
  Linux: OciLinux | null;
}

export interface OciLinux {
  UIDMappings: Array<{ HostID: number; ContainerID: number; Size: number }>;
  GIDMappings: Array<{ HostID: number; ContainerID: number; Size: number }>;
  Sysctl: Record<string, string>;
  Resources: OciResources | null;
  CgroupsPath: string;
  Namespaces: Array<{ Type: string; Path: string }>;
  Devices: Array<{ Path: string; Type: string; Major: number; Minor: number; FileMode: number; UID: number; GID: number }>;
  MaskedPaths: string[];
  ReadonlyPaths: string[];
  RootfsPropagation: string;
  Seccomp?: OciSeccomp | null;
}

/** Kata's LinuxSeccomp: the OCI profile without errnoRet, flags or listener (the 1.x protocol has none). */
export interface OciSeccomp {
  DefaultAction: string;
  Architectures: string[];
  Syscalls: Array<{ Names: string[]; Action: string; Args: Array<{ Index: number; Value: number; ValueTwo: number; Op: string }> }>;
}

export interface OciResources {
  Devices: Array<{ Allow: boolean; Type: string; Major: number; Minor: number; Access: string }>;
  Memory: { Limit: number; Reservation: number; Swap: number } | null;
  CPU: { Shares: number; Quota: number; Period: number; Cpus: string; Mems: string } | null;
  Pids: { Limit: number } | null;
}

export interface KernelModule {
  name: string;
  parameters: string[];
}

export interface CreateSandboxRequest {
  hostname: string;
  dns: string[];
  storages: Storage[];
  sandbox_pidns: boolean;
  sandbox_id: string;
  guest_hook_path: string;
  kernel_modules: KernelModule[];
}

export interface CreateContainerRequest {
  container_id: string;
  exec_id: string;
  devices: Device[];
  storages: Storage[];
  OCI: OciSpec | null;
  sandbox_pidns: boolean;
}

export interface ContainerRequest {
  container_id: string;
}

export interface ProcessRequest {
  container_id: string;
  exec_id: string;
}

export interface ExecProcessRequest extends ProcessRequest {
  process: OciProcess | null;
}

export interface SignalProcessRequest extends ProcessRequest {
  signal: number;
}

export interface ReadStreamRequest extends ProcessRequest {
  len: number;
}

export interface WriteStreamRequest extends ProcessRequest {
  data: Buffer;
}

export interface TtyWinResizeRequest extends ProcessRequest {
  row: number;
  column: number;
}

export interface RemoveContainerRequest extends ContainerRequest {
  timeout: number;
}

export interface ListProcessesRequest extends ContainerRequest {
  format: string;
  args: string[];
}

export interface UpdateContainerRequest extends ContainerRequest {
  resources: OciResources | null;
}

export interface AddContainerDeviceRequest extends ContainerRequest {
  device: Device | null;
}

export interface RemoveContainerDeviceRequest extends ContainerRequest {
  container_path: string;
}

export interface ReseedRandomDevRequest {
  data: Uint8Array;
}

export interface SetGuestDateTimeRequest {
  Sec: number;
  Usec: number;
}

export interface GuestDetailsResponse {
  mem_block_size_bytes: number;
  agent_details: {
    version: string;
    init_daemon: boolean;
    device_handlers: string[];
    storage_handlers: string[];
    supports_seccomp: boolean;
  };
  support_mem_hotplug_probe: boolean;
}

export const agentVersion = '0.1.0';

/** Kata 1.x types.IPAddress: mask is the prefix length in decimal. */
export interface IpAddress {
  family: 'v4' | 'v6';
  address: string;
  mask: string;
}

/** Kata 1.x types.Interface: the guest finds the link by hwAddr. */
export interface NetworkInterface {
  device: string;
  name: string;
  IPAddresses: IpAddress[];
  mtu: number;
  hwAddr: string;
  pciAddr: string;
  type: string;
  raw_flags: number;
}

/** Route scopes by the names `ip` prints, as the netlink numbers types.Route carries. */
export const routeScopes: Readonly<Record<string, number>> = { global: 0, universe: 0, site: 200, link: 253, host: 254, nowhere: 255 };

/** Kata 1.x types.Route: dest "" is the default route; scope as netlink numbers it (0 universe, 253 link, 254 host). */
export interface NetworkRoute {
  dest: string;
  gateway: string;
  device: string;
  source: string;
  scope: number;
}

export interface ArpNeighbor {
  toIPAddress: IpAddress | null;
  device: string;
  lladdr: string;
  state: number;
  flags: number;
}

export interface UpdateInterfaceRequest {
  interface: NetworkInterface | null;
}

export interface UpdateRoutesRequest {
  routes: { Routes: NetworkRoute[] } | null;
}

export interface AddArpNeighborsRequest {
  neighbors: { ARPNeighbors: ArpNeighbor[] } | null;
}
