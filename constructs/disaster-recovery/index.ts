export { DisasterRecovery, publicRecordName, FIS_DRILLS, type DisasterRecoveryProps } from './disaster-recovery.js';
