import type { RuntimeConfig } from '../config/runtime-config.js';
import type { CpuInfo } from './host-facts.js';
import { HostFacts } from './host-facts.js';
import { hostChecks, type CheckContext, type CheckNeed, type HostCheck } from './host-checks.js';
import { realQemuProbes, type AcceleratorProbe, type QemuProbes } from './qemu-probe.js';

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
  /** The accelerator `create` will use, or null when kata-ts cannot run here. */
  accelerator: 'kvm' | 'tcg' | null;
  canRun: boolean;
  kvmUsable: boolean;
  vsockUsable: boolean;
  summary: string;
}

export interface CheckHostOptions {
  config: RuntimeConfig;
  facts?: HostFacts;
  qemu?: QemuProbes;
  kvmProbeDeadlineMs?: number;
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
  const kvmProbeDeadlineMs = options.kvmProbeDeadlineMs ?? 3000;
  const ctx: CheckContext = {
    config,
    facts,
    qemu,
    kvmProbeDeadlineMs,
    cpu: memo<CpuInfo>(() => facts.cpuInfo()),
    devices: memo(() => qemu.devices(config.hypervisor.path)),
    kvmProbe: memo<AcceleratorProbe>(() => qemu.accelerator(config.hypervisor.path, 'kvm', kvmProbeDeadlineMs)),
  };

  const results: CheckResult[] = [];
  for (const check of options.checks ?? hostChecks) {
    const need = check.need(config);
    const outcome = await check.run(ctx);
    const status: CheckStatus = outcome.ok ? 'pass' : need === 'always' || need === 'vsock' ? 'fail' : 'warn';
    results.push({ id: check.id, title: check.title, need, status, detail: outcome.detail, ...(outcome.ok ? {} : { fix: outcome.fix }) });
  }

  const failedWith = (need: CheckNeed): boolean => results.some((r) => r.need === need && r.status !== 'pass');
  const kvmUsable = !failedWith('kvm');
  const vsockUsable = results.find((r) => r.id === 'vhost-vsock')?.status === 'pass';
  const basicsOk = !results.some((r) => r.status === 'fail');
  const wanted = config.hypervisor.accelerator;

  let accelerator: 'kvm' | 'tcg' | null;
  if (wanted === 'tcg') accelerator = 'tcg';
  else if (kvmUsable) accelerator = 'kvm';
  else accelerator = wanted === 'auto' ? 'tcg' : null;
  const canRun = basicsOk && accelerator !== null;

  let summary: string;
  if (!canRun) {
    const reasons = results.filter((r) => r.status === 'fail').map((r) => r.title);
    if (accelerator === null) reasons.push('accelerator = "kvm" but KVM is not usable');
    summary = `kata-ts cannot run containers on this host: ${reasons.join('; ')}`;
  } else if (accelerator === 'kvm') {
    summary = 'kata-ts can run containers on this host, with KVM';
  } else if (wanted === 'tcg') {
    summary = 'kata-ts can run containers on this host, with TCG software emulation (accelerator = "tcg")';
  } else {
    summary = 'kata-ts can run containers on this host, with TCG software emulation: KVM is not usable, so VMs will be slow';
  }
  return { results, accelerator, canRun, kvmUsable, vsockUsable, summary };
}
