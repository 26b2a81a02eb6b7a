import type { Command } from 'commander';

/** A CLI command module: one file per command under lib/cli/commands, registered in lib/cli/index.ts. */
export type RegisterCommand = (program: Command) => void;
