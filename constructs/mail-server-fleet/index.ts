export { MailServerFleet, type MailServerFleetProps } from './mail-server-fleet.js';
