#!/usr/bin/env node
/**
 * job-robot's single entry point: `job-robot <component|command> [args]`.
 * The container image runs this; the first argument (or JOB_ROBOT_COMPONENT) picks what runs.
 */
import { ConfigError } from './config/error.ts';
import { startupPhase } from './startup-trace.ts';

const COMMANDS: Record<string, { describe: string; load: () => Promise<{ main: (argv: string[]) => Promise<void> }> }> = {
  launcher: { describe: 'HTTP function: one CloudEvent in, one Job out', load: () => import('./launcher/main.ts') },
  reaper: { describe: 'HTTP function: deletes finished Jobs on a PingSource event', load: () => import('./reaper/main.ts') },
  bridge: { describe: 'Redis queue to CloudEvents (Knative ContainerSource)', load: () => import('./bridge/main.ts') },
  'dead-letter': { describe: "HTTP function: the Broker's dead-letter sink, into Redis", load: () => import('./dead-letter/main.ts') },
  results: { describe: "HTTP function: records what became of each item from its Job's events, and announces outcomes", load: () => import('./results/main.ts') },
  reap: { describe: 'one reaper run from the command line (--dry-run)', load: () => import('./reaper/cli.ts') },
  doctor: { describe: 'checks a cluster for what job-robot needs', load: () => import('./doctor/main.ts') },
  status: { describe: 'what became of a queue item: its result, or its Job (--wait)', load: () => import('./status/main.ts') },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.describe}`);
  return `usage: job-robot <command> [args]\n\ncommands:\n${lines.join('\n')}\n`;
}

const [name = process.env['JOB_ROBOT_COMPONENT'] ?? '', ...rest] = process.argv.slice(2);
const command = COMMANDS[name];
if (!command) {
  process.stderr.write(name && name !== '--help' && name !== '-h' ? `unknown command: ${name}\n\n${usage()}` : usage());
  process.exit(name === '--help' || name === '-h' ? 0 : 2);
}
try {
  startupPhase('cli');
  const mod = await command.load();
  startupPhase('modules-loaded');
  await mod.main(rest);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`job-robot ${name}: ${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  throw err;
}
