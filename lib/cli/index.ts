/** The `mailfleet` CLI: each command lives in lib/cli/commands/<name>.ts and is registered here. */
import { Command } from 'commander';
import { registerArchive } from './commands/archive.js';
import { registerDkim } from './commands/dkim.js';
import { registerDr } from './commands/dr.js';
import { registerEdge } from './commands/edge.js';
import { registerGovernor } from './commands/governor.js';
import { registerLdap } from './commands/ldap.js';
import { registerLimit } from './commands/limit.js';
import { registerQuota } from './commands/quota.js';
import { registerPlan } from './commands/plan.js';
import { registerRender } from './commands/render.js';
import { registerSchema } from './commands/schema.js';
import { registerServe } from './commands/serve.js';
import { registerSynth } from './commands/synth.js';
import { registerTop } from './commands/top.js';
import { registerUp } from './commands/up.js';
import { registerUsers } from './commands/users.js';
import type { RegisterCommand } from './types.js';

const COMMANDS: RegisterCommand[] = [
  registerSchema,
  registerPlan,
  registerRender,
  registerDr,
  registerLdap,
  registerSynth,
  registerServe,
  registerUp,
  registerUsers,
  registerTop,
  registerLimit,
  registerEdge,
  registerArchive,
  registerDkim,
  registerQuota,
  registerGovernor,
];

export function buildCli(): Command {
  const program = new Command('mailfleet')
    .description('flow-controlled mail platform: spec → plan → engines, and the mailfleetd daemon')
    .version('0.1.0');
  for (const register of COMMANDS) register(program);
  return program;
}
