import type { RuntimeConfig } from '../config/runtime-config.js';
import { acceleratorDecision, type AcceleratorDecision, type DecisionOptions } from './accelerator.js';
import type { CpuInfo } from './host-facts.js';
import { HostFacts } from './host-facts.js';
import { hostChecks, type CheckContext, type CheckNeed, type HostCheck } from './host-checks.js';
import { realQemuProbes, type QemuProbes } from './qemu-probe.js';

export type CheckStatus = 'pass' | 'fail' | 'warn';

export interface CheckResult {
  id: string;
  title: string;
  need: CheckNeed;
  /** `fail` stops kata-ts; `warn` is a failure it can live with (KVM missing, an optional feature). */
  status: CheckStatus;
  detail: string;
  fix?: string;
}

export interface HostVerdict {
  results: CheckResult[];
  /** The accelerator `create` will use; null when accelerator = "kvm" and KVM does not work. */
  accelerator: 'kvm' | 'tcg' | null;
  /** Why that accelerator: the decision create makes, with its KVM evidence. */
  decision: AcceleratorDecision;
  canRun: boolean;
  kvmUsable: boolean;
  vsockUsable: boolean;
  summary: string;
}

export interface CheckHostOptions {
  config: RuntimeConfig;
  facts?: HostFacts;
  qemu?: QemuProbes;
  /** How the accelerator is decided (probe, cache, reprobe); the facts above are passed on. */
  decision?: Omit<DecisionOptions, 'facts'>;
  checks?: readonly HostCheck[];
}

function memo<T>(fn: () => Promise<T>): () => Promise<T> {
  let cached: Promise<T> | undefined;
  return () => (cached ??= fn());
}

/** Runs every check in order and decides which accelerator kata-ts would use. */
export async function checkHost(options: CheckHostOptions): Promise<HostVerdict> {
  const { config } = options;
  const facts = options.facts ?? new HostFacts('/');
  const qemu = options.qemu ?? realQemuProbes;
  const decision = memo(() => acceleratorDecision(config.hypervisor, { probeWhenTcg: true, ...options.decision, facts }));
  const ctx: CheckContext = {
    config,
    facts,
    qemu,
    cpu: memo<CpuInfo>(() => facts.cpuInfo()),
    devices: memo(() => qemu.devices(config.hypervisor.path)),
    decision,
  };

  const results: CheckResult[] = [];
  for (const check of options.checks ?? hostChecks) {
    const need = check.need(config);
    const outcome = await check.run(ctx);
    const status: CheckStatus = outcome.ok ? 'pass' : need === 'always' || need === 'vsock' ? 'fail' : 'warn';
    results.push({ id: check.id, title: check.title, need, status, detail: outcome.detail, ...(outcome.ok ? {} : { fix: outcome.fix }) });
  }

  // KVM is usable when the probe says so, whatever the static checks above guessed
  // (kvm_pvm has no vmx; a host with vmx may still fail to run a guest).
  const chosen = await decision();
  const kvmUsable = chosen.kvm.usable;
  const vsockUsable = results.find((r) => r.id === 'vhost-vsock')?.status === 'pass';
  const basicsOk = !results.some((r) => r.status === 'fail');
  const { accelerator } = chosen;
  const canRun = basicsOk && accelerator !== null;

  let summary: string;
  if (!canRun) {
    const reasons = results.filter((r) => r.status === 'fail').map((r) => r.title);
    if (accelerator === null) reasons.push('accelerator = "kvm" but KVM is not usable');
    summary = `kata-ts cannot run containers on this host: ${reasons.join('; ')}`;
  } else if (accelerator === 'kvm') {
    summary = 'kata-ts can run containers on this host, with KVM';
  } else if (chosen.wanted === 'tcg') {
    summary = 'kata-ts can run containers on this host, with TCG software emulation (accelerator = "tcg")';
  } else {
    summary = 'kata-ts can run containers on this host, with TCG software emulation: KVM is not usable, so VMs will be slow';
  }
  return { results, accelerator, decision: chosen, canRun, kvmUsable, vsockUsable, summary };
}
