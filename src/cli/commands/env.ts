import type { Command } from 'commander';
import { contextFor } from '../command-context.js';

export function registerEnv(program: Command): void {
  program
    .command('env')
    .alias('kata-env')
    .description('show the effective configuration and the host facts kata-ts works with')
    .option('--json', 'print JSON instead of TOML')
    .action(async (options: { json?: boolean }, command: Command) => {
      const { stringify } = await import('smol-toml');
      const { checkHost } = await import('../../host/check-host.js');
      const { collectEnvironment } = await import('../../host/environment.js');
      const { HostFacts } = await import('../../host/host-facts.js');
      const { realQemuProbes } = await import('../../host/qemu-probe.js');
      const ctx = contextFor(command);
      const config = await ctx.loadConfig();
      const facts = new HostFacts('/');
      const verdict = await checkHost({ config, facts });
      const qemuVersion = await realQemuProbes.version(config.hypervisor.path);
      const env = await collectEnvironment(config, verdict, facts, qemuVersion, process.argv[1] ?? 'kata-ts');
      ctx.print(options.json ? JSON.stringify(env, null, 2) : stringify(env));
    });
}
