import type { Command } from 'commander';
import { Option } from 'commander';
import type { OciState } from '../../runtime/describe-container.js';
import { formatTable } from '../../util/text-table.js';
import { contextFor } from '../command-context.js';

function table(rows: OciState[]): string {
  const header = ['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'];
  return formatTable([header, ...rows.map((r) => [r.id, String(r.pid), r.status, r.bundle, r.created, r.owner])]);
}

export function registerList(program: Command): void {
  program
    .command('list')
    .alias('ls')
    .description('list the containers kata-ts knows under --root')
    .addOption(new Option('-f, --format <format>', 'table or json').choices(['table', 'json']).default('table'))
    .option('-q, --quiet', 'print only the container ids')
    .action(async (options: { format: 'table' | 'json'; quiet?: boolean }, command: Command) => {
      const { describeContainer } = await import('../../runtime/describe-container.js');
      const ctx = contextFor(command);
      const rows: OciState[] = [];
      for (const entry of await ctx.store.list()) {
        if (entry.state) rows.push(await describeContainer(ctx.store, entry.state));
        else ctx.logger.warn(`skipping ${entry.id}: ${entry.error ?? 'unreadable state'}`);
      }
      if (options.quiet) {
        if (rows.length > 0) ctx.print(rows.map((r) => r.id).join('\n'));
      } else if (options.format === 'json') {
        ctx.print(JSON.stringify(rows));
      } else {
        ctx.print(table(rows));
      }
    });
}
