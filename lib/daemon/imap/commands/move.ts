import { defineCommand, SELECTED } from '../command.js';
import { copyMessages, parseCopy } from './copy.js';

/** MOVE (RFC 6851). */
export const move = defineCommand({
  name: 'MOVE',
  states: SELECTED,
  parse: parseCopy,
  handler: (s, a) => copyMessages(s, a, false, true),
});

export const uidMove = defineCommand({
  name: 'UID MOVE',
  states: SELECTED,
  parse: parseCopy,
  handler: (s, a) => copyMessages(s, a, true, true),
});
