/**
 * Live connections of one daemon, for GET /v1/connections and `mailfleet top`. The listener adds an entry
 * when a session starts and removes it on close; sessions set the user once authenticated.
 */
import type { Protocol, Service } from '../../spec/schema.js';

export interface ConnectionInfo {
  readonly id: string;
  readonly protocol: Protocol;
  readonly service: Service;
  readonly listener: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  readonly secure: boolean;
  /** Authenticated user, once known. */
  user?: string;
  /** ISO-8601 start time. */
  readonly since: string;
}

export class ConnectionRegistry {
  private readonly entries = new Map<string, ConnectionInfo>();

  add(info: ConnectionInfo): void {
    this.entries.set(info.id, info);
  }

  setUser(id: string, user: string): void {
    const e = this.entries.get(id);
    if (e) e.user = user;
  }

  remove(id: string): void {
    this.entries.delete(id);
  }

  get size(): number {
    return this.entries.size;
  }

  list(): ConnectionInfo[] {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }
}
