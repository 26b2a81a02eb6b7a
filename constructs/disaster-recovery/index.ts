export { DisasterRecovery, FIS_DRILLS, type DisasterRecoveryProps } from './disaster-recovery.js';
