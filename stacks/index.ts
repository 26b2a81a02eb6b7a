export { MailPlatformStack, type MailPlatformStackProps } from './mail-platform-stack.js';
export { addPlatformStacks, addNagChecks, platformApp, retiredLinkContext, RETIRED_LINK_CONTEXT, type PlatformStacks } from './app.js';
