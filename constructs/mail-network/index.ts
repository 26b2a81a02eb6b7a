export { MailNetwork, NODE_INTERFACE_ENDPOINTS, type MailNetworkProps } from './mail-network.js';
