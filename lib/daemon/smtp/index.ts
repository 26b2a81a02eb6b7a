export { smtpModule } from './module.js';
export { SmtpFrontEnd } from './front-end.js';
export { formatReply, replyKeyOf, SMTP_REPLIES, SmtpReplyError, type SmtpReply, type SmtpReplyKey } from './replies.js';
export { receivedHeader } from './received.js';
