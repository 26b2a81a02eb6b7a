import { jsonSchema } from '../../spec/index.js';
import type { RegisterCommand } from '../types.js';

export const registerSchema: RegisterCommand = (program) => {
  program
    .command('schema')
    .description('print the JSON Schema (draft 2020-12) of mailfleet.yaml')
    .action(() => {
      process.stdout.write(JSON.stringify(jsonSchema(), null, 2) + '\n');
    });
};
