import chalk from 'chalk';
import type { Command } from 'commander';
import { checkHost, type CheckResult, type HostVerdict } from '../../host/check-host.js';
import { contextFor, setExitCode } from '../command-context.js';

const labels: Record<CheckResult['status'], string> = {
  pass: chalk.green('[ok]  '),
  warn: chalk.yellow('[warn]'),
  fail: chalk.red('[FAIL]'),
};

const needLabels: Record<CheckResult['need'], string> = {
  always: 'required',
  kvm: 'required for KVM',
  vsock: 'required for use_vsock',
  optional: 'optional',
};

export function renderVerdict(configPath: string, verdict: HostVerdict, verbose: boolean): string {
  const lines: string[] = [`configuration: ${configPath}`];
  for (const result of verdict.results) {
    const showDetail = verbose || result.status !== 'pass';
    const need = verbose ? ` (${needLabels[result.need]})` : '';
    lines.push(`${labels[result.status]} ${result.title}${need}${showDetail ? `: ${result.detail}` : ''}`);
    if (result.status !== 'pass' && result.fix) lines.push(`       fix: ${result.fix}`);
  }
  lines.push('', verdict.summary);
  return lines.join('\n');
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .alias('kata-check')
    .description('tell whether this host can run kata-ts containers, and with which accelerator')
    .option('--json', 'print the results as JSON')
    .option('--verbose', 'show the details of passing checks too')
    .action(async (options: { json?: boolean; verbose?: boolean }, command: Command) => {
      const ctx = contextFor(command);
      const config = await ctx.loadConfig();
      const verdict = await checkHost({ config });
      ctx.print(options.json ? JSON.stringify({ config: config.source.path, ...verdict }, null, 2) : renderVerdict(config.source.path, verdict, Boolean(options.verbose)));
      if (verdict.canRun && verdict.accelerator === 'tcg' && config.hypervisor.accelerator === 'auto') {
        ctx.logger.warn('KVM is not usable on this host; VMs will run under TCG software emulation');
      }
      setExitCode(verdict.canRun ? 0 : 1);
    });
}
