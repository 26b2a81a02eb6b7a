export { ImapSession, type ImapConnection, type ImapDeps, type ImapSettings } from './session.js';
export { ImapParser, type ParserEvent, type ParserLimits, type Token } from './parser.js';
export { COMMANDS } from './commands/index.js';
export { busyText } from './replies.js';
