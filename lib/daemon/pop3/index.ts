export { Pop3Session, POP3_LOCK_FILE, type Pop3Connection, type Pop3Deps, type Pop3Settings } from './session.js';
export { busyText } from './replies.js';
