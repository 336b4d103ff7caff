import { readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import { KataError, messageOf } from '../util/errors.js';
import { findConfig, type ConfigSearch } from './find-config.js';
import {
  acceleratorChoices,
  blockDeviceDrivers,
  rootfsTypes,
  internetworkingModels,
  machineTypes,
  sharedFileSystems,
  virtioFsCacheModes,
  type AgentConfig,
  type ComponentConfig,
  type ConfigOrigin,
  type FactoryConfig,
  type HypervisorConfig,
  type RuntimeConfig,
  type RuntimeSection,
} from './runtime-config.js';
import { isTable, tableAt, TableReader } from './table-reader.js';

/** Sections that exist in Kata 1.x files but that kata-ts does not use. */
const ignoredKataSections = new Set(['netmon']);
const knownSections = new Set(['hypervisor', 'proxy', 'shim', 'agent', 'runtime', 'factory']);

function parseToml(file: string, text: string): Record<string, unknown> {
  try {
    return parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      // smol-toml appends a code frame; keep the first line so the error stays one line.
      const reason = err.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'invalid TOML';
      throw new KataError('CONFIG_PARSE', `${file}:${err.line}:${err.column}: ${reason}`, { cause: err });
    }
    throw new KataError('CONFIG_PARSE', `${file}: ${messageOf(err)}`, { cause: err });
  }
}

/**
 * QEMU's seccomp filter, on by default with obsolete syscalls denied. QEMU 7.2
 * installs it before -daemonize forks, so spawn=deny and elevateprivileges=deny
 * kill it with SIGSYS there (measured on Debian 12): they are not in the default.
 */
export const defaultSeccompSandbox = 'on,obsolete=deny';

function readHypervisor(r: TableReader, file: string): HypervisorConfig {
  const config: HypervisorConfig = {
    path: r.path('path', '/usr/bin/qemu-system-x86_64'),
    kernel: r.path('kernel', ''),
    initrd: r.path('initrd', ''),
    image: r.path('image', ''),
    disableImageNvdimm: r.boolean('disable_image_nvdimm', false),
    rootfsType: r.oneOf('rootfs_type', rootfsTypes, 'erofs'),
    freePageReporting: r.boolean('free_page_reporting', true),
    tcgTbSizeMiB: r.integer('tcg_tb_size', 48, { min: 0, max: 4096 }),
    machineType: r.oneOf('machine_type', machineTypes, 'pc'),
    kernelParams: r.string('kernel_params', '').split(/\s+/).filter(Boolean),
    machineAccelerators: r.string('machine_accelerators', ''),
    firmware: r.path('firmware', ''),
    defaultVcpus: r.integer('default_vcpus', 1, { min: 1, max: 255 }),
    defaultMaxVcpus: r.integer('default_maxvcpus', 0, { min: 0, max: 255 }),
    defaultMemoryMiB: r.integer('default_memory', 512, { min: 64, max: 1024 * 1024 }),
    memorySlots: r.integer('memory_slots', 10, { min: 0, max: 255 }),
    defaultBridges: r.integer('default_bridges', 1, { min: 0, max: 5 }),
    blockDeviceDriver: r.oneOf('block_device_driver', blockDeviceDrivers, 'virtio-blk'),
    sharedFs: r.oneOf('shared_fs', sharedFileSystems, 'virtio-9p'),
    msize9p: r.integer('msize_9p', 8192, { min: 4096, max: 1048576 }),
    virtioFsDaemon: r.path('virtio_fs_daemon', '/usr/lib/qemu/virtiofsd'),
    virtioFsCache: r.oneOf('virtio_fs_cache', virtioFsCacheModes, 'auto'),
    virtioFsCacheSizeMiB: r.integer('virtio_fs_cache_size', 0, { min: 0, max: 1024 * 1024 }),
    virtioFsExtraArgs: r.strings('virtio_fs_extra_args', ['--thread-pool-size=0', '-o', 'announce_submounts']),
    useVsock: r.boolean('use_vsock', false),
    disableVhostNet: r.boolean('disable_vhost_net', false),
    seccompSandbox: r.string('seccompsandbox', defaultSeccompSandbox),
    privateMountNamespace: r.boolean('private_mount_namespace', true),
    rootless: r.boolean('rootless', false),
    enableDebug: r.boolean('enable_debug', false),
    entropySource: r.string('entropy_source', '/dev/urandom'),
    accelerator: r.oneOf('accelerator', acceleratorChoices, 'auto'),
  };
  const invalid = (message: string): never => {
    throw new KataError('CONFIG_INVALID', `${file}: hypervisor.qemu.${message}`);
  };
  if (config.kernel === '') invalid('kernel must name the guest kernel');
  if (config.initrd === '' && config.image === '') invalid('initrd or image must be set');
  if (config.defaultMaxVcpus !== 0 && config.defaultVcpus > config.defaultMaxVcpus) {
    invalid(`default_vcpus (${config.defaultVcpus}) is larger than default_maxvcpus (${config.defaultMaxVcpus})`);
  }
  if (config.seccompSandbox !== '' && !/^on(,[a-z]+=(allow|deny|children))*$/.test(config.seccompSandbox)) {
    invalid(`seccompsandbox must be "" or QEMU's -sandbox value ("on,obsolete=deny,..."), got "${config.seccompSandbox}"`);
  }
  if (config.rootless && !config.privateMountNamespace) invalid('rootless = true needs private_mount_namespace = true (the 9p helper serves the share in QEMU\'s mount namespace)');
  if (config.virtioFsCacheSizeMiB > 0) invalid(`virtio_fs_cache_size = ${config.virtioFsCacheSizeMiB}: QEMU 7.2's vhost-user-fs-pci has no DAX window (set 0)`);
  if (config.sharedFs === 'virtio-fs' && config.rootless) invalid('shared_fs = "virtio-fs" does not work with rootless = true yet (QEMU as nobody, virtiofsd as root): use "virtio-9p"');
  if (!config.entropySource.startsWith('/')) invalid(`entropy_source must be an absolute path, got "${config.entropySource}"`);
  return config;
}

function readComponent(r: TableReader): ComponentConfig {
  return { path: r.path('path', ''), enableDebug: r.boolean('enable_debug', false) };
}

function readAgent(r: TableReader): AgentConfig {
  return {
    enableDebug: r.boolean('enable_debug', false),
    kernelModules: r.strings('kernel_modules', []),
    dialTimeoutSeconds: r.integer('dial_timeout', 60, { min: 1, max: 600 }),
  };
}

function readRuntime(r: TableReader): RuntimeSection {
  return {
    enableDebug: r.boolean('enable_debug', false),
    internetworkingModel: r.oneOf('internetworking_model', internetworkingModels, 'tcfilter'),
    disableNewNetns: r.boolean('disable_new_netns', false),
    sandboxCgroupOnly: r.boolean('sandbox_cgroup_only', false),
    disableGuestSeccomp: r.boolean('disable_guest_seccomp', false),
    experimental: r.strings('experimental', []),
  };
}

/** Kata's default template_path is /run/vc/vm/template; kata-ts keeps its own under /run. */
export const defaultTemplatePath = '/run/kata-ts-template';

function readFactory(r: TableReader, file: string): FactoryConfig {
  const config: FactoryConfig = {
    enableTemplate: r.boolean('enable_template', false),
    templatePath: r.path('template_path', defaultTemplatePath),
  };
  // Kata 1.x's VM cache (a factory daemon serving booted VMs) is not built: refused, never silent.
  if (r.integer('vm_cache_number', 0, { min: 0, max: 1024 }) > 0) {
    throw new KataError('CONFIG_INVALID', `${file}: factory.vm_cache_number: kata-ts has no VM cache (set 0, and enable_template for fast starts)`);
  }
  r.string('vm_cache_endpoint', '');
  return config;
}

/** Warnings for top-level sections and [hypervisor.X] / [proxy.X] ... subtables we do not read. */
function sectionWarnings(doc: Record<string, unknown>): string[] {
  const warnings: string[] = [];
  for (const [name, value] of Object.entries(doc)) {
    if (ignoredKataSections.has(name)) {
      warnings.push(`section [${name}] is not used by kata-ts and is ignored`);
    } else if (!knownSections.has(name)) {
      warnings.push(`unknown ${isTable(value) ? 'section' : 'key'} "${name}" is ignored`);
    } else if (name !== 'runtime' && name !== 'factory' && isTable(value)) {
      const expected = name === 'hypervisor' ? 'qemu' : 'kata';
      for (const sub of Object.keys(value).filter((k) => k !== expected)) {
        warnings.push(`section [${name}.${sub}] is not supported (kata-ts reads [${name}.${expected}]) and is ignored`);
      }
    }
  }
  return warnings;
}

/** Parses and validates one configuration file's text. Exported for unit tests. */
export function parseRuntimeConfig(file: string, text: string, origin: ConfigOrigin): RuntimeConfig {
  const doc = parseToml(file, text);
  const qemu = tableAt(doc, 'hypervisor.qemu');
  if (!qemu) throw new KataError('CONFIG_INVALID', `${file}: missing section [hypervisor.qemu]`);
  const readers = {
    hypervisor: new TableReader(file, 'hypervisor.qemu', qemu),
    proxy: new TableReader(file, 'proxy.kata', tableAt(doc, 'proxy.kata') ?? {}),
    shim: new TableReader(file, 'shim.kata', tableAt(doc, 'shim.kata') ?? {}),
    agent: new TableReader(file, 'agent.kata', tableAt(doc, 'agent.kata') ?? {}),
    runtime: new TableReader(file, 'runtime', tableAt(doc, 'runtime') ?? {}),
    factory: new TableReader(file, 'factory', tableAt(doc, 'factory') ?? {}),
  };
  const hypervisor = readHypervisor(readers.hypervisor, file);
  const config: RuntimeConfig = {
    source: { path: file, origin },
    hypervisor,
    proxy: readComponent(readers.proxy),
    shim: readComponent(readers.shim),
    agent: readAgent(readers.agent),
    runtime: readRuntime(readers.runtime),
    factory: readFactory(readers.factory, file),
    warnings: sectionWarnings(doc),
  };
  if (config.runtime.disableNewNetns && config.runtime.internetworkingModel !== 'none') {
    // As in Kata: without the pod's namespace there is no veth to connect a tap to.
    throw new KataError('CONFIG_INVALID', `${file}: runtime.disable_new_netns = true works only with internetworking_model = "none" (got "${config.runtime.internetworkingModel}")`);
  }
  // Parsed as Kata's, not in effect: said, and env shows what is in effect.
  if (config.runtime.experimental.length > 0) {
    config.warnings.push(`${file}: runtime.experimental ${JSON.stringify(config.runtime.experimental)}: kata-ts has no experimental features (ignored)`);
    config.runtime.experimental = [];
  }
  for (const [section, component] of [['proxy.kata', config.proxy], ['shim.kata', config.shim]] as const) {
    if (component.path) config.warnings.push(`${file}: [${section}] path ${component.path} is ignored (kata-ts runs its pod process and carriers instead)`);
  }
  for (const reader of Object.values(readers)) {
    for (const key of reader.unknownKeys()) config.warnings.push(`${file}: unknown key ${key} is ignored`);
  }
  return config;
}

/** Finds the configuration file along Kata's search order and loads it. */
export async function loadRuntimeConfig(search: ConfigSearch): Promise<RuntimeConfig> {
  const found = await findConfig(search);
  let text: string;
  try {
    text = await readFile(found.path, 'utf8');
  } catch (err) {
    throw new KataError('CONFIG_NOT_FOUND', `cannot read configuration file ${found.path}: ${messageOf(err)}`, { cause: err });
  }
  return parseRuntimeConfig(found.path, text, found.origin);
}
