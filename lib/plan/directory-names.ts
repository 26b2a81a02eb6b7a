/** Names a directory's base DN implies: one home (lib/spec/directory-names.ts), shared by the spec checks, the plan and the engines. */
export * from '../spec/directory-names.js';
