import { styleText } from 'node:util';
import type { Command } from 'commander';
import type { AcceleratorDecision } from '../../host/accelerator.js';
import type { CheckResult, HostVerdict } from '../../host/check-host.js';
import { contextFor, setExitCode } from '../command-context.js';

/** Colours only on a terminal, and never with NO_COLOR set. */
const paint = (color: 'green' | 'yellow' | 'red', text: string): string => (process.stdout.isTTY && !process.env.NO_COLOR ? styleText(color, text) : text);

const labels: Record<CheckResult['status'], string> = {
  pass: paint('green', '[ok]  '),
  warn: paint('yellow', '[warn]'),
  fail: paint('red', '[FAIL]'),
};

const needLabels: Record<CheckResult['need'], string> = {
  always: 'required',
  kvm: 'required for KVM',
  vsock: 'required for use_vsock',
  optional: 'optional',
};

/** The KVM probe's evidence: what the guest printed, how far it got, how long it took, where the verdict is kept. */
export function renderEvidence(decision: AcceleratorDecision): string[] {
  const { kvm } = decision;
  const lines = [`KVM probe: ${kvm.source === 'cache' ? `cached verdict, ${kvm.cacheFile}` : kvm.source === 'probe' ? 'probed now' : 'not probed'}`];
  const e = kvm.evidence;
  if (e) {
    lines.push(`  probed at ${e.probedAt}: reached ${e.stage} in ${e.elapsedMs} ms; ${e.usable ? 'usable' : 'not usable'}${e.conclusive ? '' : ' (inconclusive)'}`);
    for (const line of e.console) lines.push(`  guest: ${line}`);
    for (const line of e.qemuStderr) lines.push(`  qemu: ${line}`);
  }
  if (kvm.source === 'probe') lines.push(`  ${kvm.cacheFile ? `cached in ${kvm.cacheFile}` : `not cached: ${kvm.cacheProblem ?? 'no cache'}`}`);
  return lines;
}

export function renderVerdict(configPath: string, verdict: HostVerdict, verbose: boolean): string {
  const lines: string[] = [`configuration: ${configPath}`];
  for (const result of verdict.results) {
    const showDetail = verbose || result.status !== 'pass';
    const need = verbose ? ` (${needLabels[result.need]})` : '';
    lines.push(`${labels[result.status]} ${result.title}${need}${showDetail ? `: ${result.detail}` : ''}`);
    if (result.status !== 'pass' && result.fix) lines.push(`       fix: ${result.fix}`);
  }
  lines.push('', `accelerator: ${verdict.decision.accelerator ?? 'none'} (${verdict.decision.reason})`);
  if (verbose) lines.push(...renderEvidence(verdict.decision));
  lines.push('', verdict.summary);
  return lines.join('\n');
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .alias('kata-check')
    .description('tell whether this host can run kata-ts containers, and with which accelerator')
    .option('--json', 'print the results as JSON')
    .option('--verbose', 'show the details of passing checks and the KVM probe\'s evidence')
    .option('--reprobe', 'boot the KVM probe again instead of using the verdict cached for this boot')
    .action(async (options: { json?: boolean; verbose?: boolean; reprobe?: boolean }, command: Command) => {
      const { checkHost } = await import('../../host/check-host.js');
      const ctx = contextFor(command);
      const config = await ctx.loadConfig();
      const verdict = await checkHost({ config, decision: { reprobe: Boolean(options.reprobe) } });
      ctx.print(options.json ? JSON.stringify({ config: config.source.path, ...verdict }, null, 2) : renderVerdict(config.source.path, verdict, Boolean(options.verbose)));
      if (verdict.canRun && verdict.accelerator === 'tcg' && config.hypervisor.accelerator === 'auto') {
        ctx.logger.warn('KVM is not usable on this host; VMs will run under TCG software emulation');
      }
      setExitCode(verdict.canRun ? 0 : 1);
    });
}
