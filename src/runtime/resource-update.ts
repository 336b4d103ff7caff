import { readFile } from 'node:fs/promises';
import { KataError, messageOf } from '../util/errors.js';
import type { OciLinuxResources } from './oci-spec-types.js';

/** The flags of `update`, as runc names them. */
export interface UpdateFlags {
  resources?: string;
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  cpuShares?: string;
  cpuQuota?: string;
  cpuPeriod?: string;
  pidsLimit?: string;
}

const units: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "64m", "1g", "1048576" -> bytes (binary units, as runc reads them). */
export function parseByteSize(text: string, flag: string): number {
  const m = /^(\d+)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  const multiplier = units[m?.[2]?.toLowerCase() ?? ''];
  if (!m?.[1] || multiplier === undefined) throw new KataError('USAGE', `--${flag} ${text}: expected a size such as 67108864, 64m or 1g`);
  return Number(m[1]) * multiplier;
}

function parseInteger(text: string, flag: string): number {
  if (!/^-?\d+$/.test(text.trim())) throw new KataError('USAGE', `--${flag} ${text}: expected an integer`);
  return Number(text);
}

/** Reads `--resources FILE` (or - for stdin, as containerd's shim passes it): an OCI linux.resources object. */
async function readResourcesFile(file: string, stdin: () => Promise<string>): Promise<OciLinuxResources> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(file === '-' ? await stdin() : await readFile(file, 'utf8'));
  } catch (err) {
    throw new KataError('USAGE', `cannot read resources ${file === '-' ? 'from stdin' : `file ${file}`}: ${messageOf(err)}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new KataError('USAGE', 'resources must be a JSON object (OCI linux.resources)');
  return parsed as OciLinuxResources;
}

/** The limits `update` asks for: the resources file first, then each flag on top of it (possibly none). */
export async function resourcesFromFlags(flags: UpdateFlags, stdin: () => Promise<string>): Promise<OciLinuxResources> {
  const r: OciLinuxResources = flags.resources ? await readResourcesFile(flags.resources, stdin) : {};
  const memory = { ...r.memory };
  if (flags.memory !== undefined) memory.limit = parseByteSize(flags.memory, 'memory');
  if (flags.memoryReservation !== undefined) memory.reservation = parseByteSize(flags.memoryReservation, 'memory-reservation');
  if (flags.memorySwap !== undefined) memory.swap = parseByteSize(flags.memorySwap, 'memory-swap');
  const cpu = { ...r.cpu };
  if (flags.cpuShares !== undefined) cpu.shares = parseInteger(flags.cpuShares, 'cpu-shares');
  if (flags.cpuQuota !== undefined) cpu.quota = parseInteger(flags.cpuQuota, 'cpu-quota');
  if (flags.cpuPeriod !== undefined) cpu.period = parseInteger(flags.cpuPeriod, 'cpu-period');
  const pids = flags.pidsLimit !== undefined ? { limit: parseInteger(flags.pidsLimit, 'pids-limit') } : r.pids;
  const out: OciLinuxResources = {
    ...(Object.keys(memory).length > 0 ? { memory } : {}),
    ...(Object.keys(cpu).length > 0 ? { cpu } : {}),
    ...(pids ? { pids } : {}),
  };
  return out;
}

/** Whether an update sets anything: zero and absent both mean "unchanged", as in runc (docker update --restart sends all zeros). */
export function setsAnyLimit(r: OciLinuxResources): boolean {
  return Boolean(r.memory?.limit || r.memory?.reservation || r.memory?.swap || r.cpu?.shares || r.cpu?.quota || r.cpu?.period || r.pids?.limit);
}
