#!/usr/bin/env -S node --import tsx
import { buildCli } from '../lib/cli/index.js';

await buildCli().parseAsync(process.argv);
