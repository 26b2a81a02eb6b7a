export { MailPlatformStack, type MailPlatformStackProps, type RegionLinks } from './mail-platform-stack.js';
export { addPlatformStacks, addNagChecks, linksFromContext, type PlatformStacks } from './app.js';
