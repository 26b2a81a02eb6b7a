export { FlowControlTier, listenerPortRules, ASG_MAX_TARGET_GROUPS, type FlowControlTierProps, type FlowControlShard } from './flow-control-tier.js';
