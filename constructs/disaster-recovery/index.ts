export { DisasterRecovery, FIS_DRILLS, type DisasterRecoveryProps } from './disaster-recovery.js';
export { LinkFacts, PeerLink, linkFactKey, type LinkFactsProps, type PeerLinkProps } from './region-link.js';
