export { GlusterStorageCluster, GEO_REPLICATION_PORT, type GlusterStorageClusterProps } from './gluster-storage-cluster.js';
