import { InvalidArgumentError, type Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { contextFor } from '../command-context.js';

/** Go's duration form, as runc takes --interval ("5s", "500ms", "1m"). */
function parseInterval(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('a duration such as 5s, 500ms or 1m is expected.');
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  if (ms <= 0) throw new InvalidArgumentError('the interval must be positive.');
  return ms;
}

export function registerEvents(program: Command): void {
  program
    .command('events')
    .description('print the container\'s stats as JSON lines (runc events): once with --stats, else every --interval until it stops')
    .argument('<container-id>')
    .option('--stats', 'print the stats once and exit')
    .option('--interval <duration>', 'time between stats lines', parseInterval, 5000)
    .action(async (id: string, flags: { stats?: boolean; interval: number }, command: Command) => {
      const { containerStats, runcStatsEvent } = await import('../../runtime/container-stats.js');
      const { loadContainer } = await import('../../runtime/container-record.js');
      const ctx = contextFor(command);
      for (;;) {
        ctx.print(JSON.stringify(runcStatsEvent(id, await containerStats(ctx.runtime, id))));
        if (flags.stats) return;
        await sleep(flags.interval);
        // Streaming ends with the container's process, as runc's does with the container.
        if ((await loadContainer(ctx.runtime.store, id)).status === 'stopped') return;
      }
    });
}
