import type { AcceleratorChoice, HypervisorConfig } from '../config/runtime-config.js';
import { messageOf } from '../util/errors.js';
import { HostFacts } from './host-facts.js';
import { probeKvmBoot, type KvmEvidence, type KvmProbeInput } from './kvm-boot-probe.js';
import { ProbeCache, probeInputs, probeKey } from './probe-cache.js';

/** What is known about KVM on this host, and where it comes from. */
export interface KvmVerdict {
  usable: boolean;
  /** One line: why KVM is or is not usable. */
  detail: string;
  /** `probe`: booted just now; `cache`: an earlier probe with the same inputs; `not-probed`: ruled out before booting. */
  source: 'probe' | 'cache' | 'not-probed';
  evidence?: KvmEvidence;
  cacheFile?: string;
  /** Why the verdict could not be cached, when it could not. */
  cacheProblem?: string;
}

/** The one accelerator decision: check, env and create all print or use this. */
export interface AcceleratorDecision {
  wanted: AcceleratorChoice;
  /** null: accelerator = "kvm" on a host where KVM does not work. */
  accelerator: 'kvm' | 'tcg' | null;
  reason: string;
  kvm: KvmVerdict;
}

/** Pure: the configured choice and what is known about KVM give the accelerator. auto never picks an unproven KVM. */
export function decideAccelerator(wanted: AcceleratorChoice, kvm: KvmVerdict): AcceleratorDecision {
  if (wanted === 'tcg') return { wanted, accelerator: 'tcg', reason: 'accelerator = "tcg" in the configuration', kvm };
  if (kvm.usable) return { wanted, accelerator: 'kvm', reason: `KVM works: ${kvm.detail}`, kvm };
  if (wanted === 'kvm') {
    return {
      wanted,
      accelerator: null,
      reason: `accelerator = "kvm" but KVM cannot run the guest on this host: ${kvm.detail} (set accelerator = "tcg" or "auto")`,
      kvm,
    };
  }
  return { wanted, accelerator: 'tcg', reason: `KVM is not usable, so TCG software emulation: ${kvm.detail}`, kvm };
}

export interface DecisionOptions {
  facts?: HostFacts;
  /** Injected in unit tests; the real one boots QEMU. */
  probe?: (input: KvmProbeInput) => Promise<KvmEvidence>;
  /** null: no cache (always probe). */
  cache?: ProbeCache | null;
  /** Probe again even when a cached verdict exists, and replace it. */
  reprobe?: boolean;
  /** Probe KVM even when the configuration says tcg (check reports on KVM either way). */
  probeWhenTcg?: boolean;
  deadlineMs?: number;
  stallMs?: number;
}

/** Defaults: a working KVM reaches user space in about a second; a hung guest prints nothing for seconds. */
export const kvmProbeDeadlineMs = 10_000;
export const kvmProbeStallMs = 4_000;

/** Decides the accelerator for this host and configuration, probing KVM once per cache key. */
export async function acceleratorDecision(h: HypervisorConfig, options: DecisionOptions = {}): Promise<AcceleratorDecision> {
  const wanted = h.accelerator;
  if (wanted === 'tcg' && !options.probeWhenTcg) {
    return decideAccelerator(wanted, { usable: false, source: 'not-probed', detail: 'not probed: accelerator = "tcg"' });
  }
  return decideAccelerator(wanted, await kvmVerdict(h, options));
}

async function kvmVerdict(h: HypervisorConfig, options: DecisionOptions): Promise<KvmVerdict> {
  const facts = options.facts ?? new HostFacts('/');
  const node = await facts.deviceNode('dev/kvm');
  if (node !== 'char') {
    const why = { missing: 'does not exist', 'not-char': 'is not a character device', 'no-access': 'cannot be opened read-write' }[node];
    return { usable: false, source: 'not-probed', detail: `not probed: /dev/kvm ${why}` };
  }
  if (!(await facts.readable(h.kernel))) {
    return { usable: false, source: 'not-probed', detail: `not probed: the guest kernel ${h.kernel} is missing or unreadable` };
  }
  const cache = options.cache === undefined ? new ProbeCache() : options.cache;
  const inputs = await probeInputs(h, facts.root);
  const key = probeKey(inputs);
  const cacheProblem = cache ? await cache.prepare() : 'caching is off';
  if (cache && !cacheProblem && !options.reprobe) {
    const cached = await cache.read(key);
    if (cached) return { usable: cached.evidence.usable, detail: cached.evidence.detail, source: 'cache', evidence: cached.evidence, cacheFile: cache.fileFor(key) };
  }
  const probe = options.probe ?? probeKvmBoot;
  const evidence = await probe({ hypervisor: h, deadlineMs: options.deadlineMs ?? kvmProbeDeadlineMs, stallMs: options.stallMs ?? kvmProbeStallMs });
  const verdict: KvmVerdict = { usable: evidence.usable && evidence.conclusive, detail: evidence.detail, source: 'probe', evidence };
  if (!evidence.conclusive) return { ...verdict, cacheProblem: 'inconclusive results are not cached' };
  if (!cache || cacheProblem) return { ...verdict, cacheProblem };
  try {
    await cache.write({ key, inputs, evidence });
    return { ...verdict, cacheFile: cache.fileFor(key) };
  } catch (err) {
    return { ...verdict, cacheProblem: `cannot write ${cache.fileFor(key)}: ${messageOf(err)}` };
  }
}
