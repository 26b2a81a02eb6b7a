import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import yaml from 'js-yaml';
import type { z } from 'zod';
import { MailfleetError } from '../errors.js';
import { formatPath, locateField, type FieldPath } from './locate.js';
import { specSchema, type Spec } from './schema.js';
import { checkSpec } from './check.js';

export interface SpecIssue {
  file: string;
  line?: number;
  path: string;
  message: string;
}

/** A spec that failed to load: every issue names file, line and field. */
export class SpecError extends MailfleetError {
  readonly issues: SpecIssue[];
  constructor(unsorted: SpecIssue[]) {
    const issues = [...unsorted].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
    super('SPEC_INVALID', issues.map(formatIssue).join('\n'), { status: 400, details: { issues } });
    this.name = 'SpecError';
    this.issues = issues;
  }
}

export function formatIssue(i: SpecIssue): string {
  return `${i.file}${i.line !== undefined ? `:${i.line}` : ''} ${i.path}: ${i.message}`;
}

/** A loaded spec plus where it came from (relative paths in it resolve against `dir`). */
export interface LoadedSpec {
  spec: Spec;
  file: string;
  dir: string;
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

function valueAt(doc: unknown, path: FieldPath): unknown {
  let cur: unknown = doc;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

function zodMessage(issue: z.core.$ZodIssue, doc: unknown): { path: FieldPath; message: string } {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const got = valueAt(doc, path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return {
        path: [...path, issue.keys[0]!],
        message: `unknown field${issue.keys.length > 1 ? `s ${issue.keys.join(', ')}` : ''}`,
      };
    case 'invalid_type': {
      if (got === undefined) return { path, message: `required field missing (expected ${issue.expected})` };
      const expected =
        issue.expected === 'number' && path.length > 0 ? 'a number' : `${issue.expected}`;
      return { path, message: `expected ${expected}, got ${describeValue(got)}` };
    }
    case 'too_small':
      if (issue.origin === 'number' && ((Number(issue.minimum) === 1 && issue.inclusive) || (Number(issue.minimum) === 0 && !issue.inclusive)))
        return { path, message: `expected a positive integer, got ${describeValue(got)}` };
      return { path, message: `${issue.message}, got ${describeValue(got)}` };
    default:
      return { path, message: got === undefined ? issue.message : `${issue.message}, got ${describeValue(got)}` };
  }
}

/** Parses and validates spec text. `file` is used in messages only. */
export function parseSpec(text: string, file = 'mailfleet.yaml'): Spec {
  const name = basename(file);
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: name, schema: yaml.CORE_SCHEMA });
  } catch (e) {
    if (e instanceof yaml.YAMLException) {
      throw new SpecError([
        { file: name, line: e.mark ? e.mark.line + 1 : undefined, path: '(yaml)', message: e.reason },
      ]);
    }
    throw e;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new SpecError([{ file: name, line: 1, path: '(root)', message: 'expected a mapping at the top level' }]);
  }
  // Non-integers where integers belong read better as "expected a positive integer, got "ten"".
  const parsed = specSchema.safeParse(doc);
  if (!parsed.success) {
    throw new SpecError(
      parsed.error.issues.map((issue) => {
        const { path, message } = zodMessage(issue, doc);
        const fixedMessage =
          issue.code === 'invalid_type' && issue.expected === 'number' && valueAt(doc, path) !== undefined
            ? `expected a positive integer, got ${describeValue(valueAt(doc, path))}`
            : message;
        return { file: name, line: locateField(text, path), path: formatPath(path), message: fixedMessage };
      }),
    );
  }
  const semantic = checkSpec(parsed.data);
  if (semantic.length > 0) {
    throw new SpecError(
      semantic.map((s) => ({
        file: name,
        line: locateField(text, s.path),
        path: formatPath(s.path),
        message: s.message,
      })),
    );
  }
  return parsed.data;
}

/** Reads and validates a spec file. */
export function loadSpec(file: string): LoadedSpec {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    throw new MailfleetError('SPEC_IO', `${file}: cannot read spec: ${(e as Error).message}`, { cause: e, status: 400 });
  }
  return { spec: parseSpec(text, abs), file: abs, dir: dirname(abs) };
}
