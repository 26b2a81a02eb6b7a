/**
 * THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3), pure functions of the sort items, and the
 * THREAD response's nesting. Nothing recurses on the tree: a References chain thousands deep (anyone
 * can send one) must not overflow the stack, so walks use explicit stacks.
 */
import { sentDate, type SortItem } from './sort-order.js';

/** A thread node; id 0 is a dummy (a message referenced but not in the set). */
export interface ThreadNode {
  /** Sequence number or UID as the reply names it; 0 for a dummy. */
  id: number;
  date: number;
  subject: string;
  reply: boolean;
  parent?: ThreadNode;
  children: ThreadNode[];
}

/** Every field set, in one order: one object shape for all nodes keeps property access monomorphic. */
function node(i: SortItem | undefined, id: number): ThreadNode {
  const n: ThreadNode = { id: 0, date: 0, subject: '', reply: false, parent: undefined, children: [] };
  if (i) fill(n, i, id);
  return n;
}

function fill(n: ThreadNode, i: SortItem, id: number): void {
  n.id = id;
  n.date = sentDate(i);
  n.subject = i.keys.subject;
  n.reply = i.keys.reply;
}

/** The first real message under a dummy: its date, id and subject stand for the dummy's. */
function first(n: ThreadNode): ThreadNode {
  while (n.id === 0 && n.children.length > 0) n = n.children[0]!;
  return n;
}

/** Sent date, then id (mailbox order); a dummy compares as its first child (RFC 5256 REFERENCES 4, 6). */
function cmpNodes(a: ThreadNode, b: ThreadNode): number {
  const x = first(a);
  const y = first(b);
  return x.date - y.date || x.id - y.id;
}

/** Every node under `roots`, children before their parents (an explicit stack, no tuples). */
function postOrder(roots: readonly ThreadNode[]): ThreadNode[] {
  const out: ThreadNode[] = [];
  const stack: ThreadNode[] = [...roots];
  // Pre-order with children pushed, reversed at the end: every parent lands after its descendants.
  while (stack.length > 0) {
    const n = stack.pop()!;
    out.push(n);
    for (const c of n.children) stack.push(c);
  }
  return out.reverse();
}

/** Sorts every sibling list, children first (a dummy's date is its first child's after sorting). */
function sortTree(roots: ThreadNode[]): ThreadNode[] {
  for (const n of postOrder(roots)) if (n.children.length > 1) n.children.sort(cmpNodes);
  return roots.sort(cmpNodes);
}

/**
 * ORDEREDSUBJECT: messages grouped by base subject; in each group the earliest is the root and the
 * others its children in date order; groups ordered by their root's date.
 */
export function orderedSubject(items: readonly SortItem[], id: (i: SortItem) => number): ThreadNode[] {
  const groups = new Map<string, ThreadNode>();
  const roots: ThreadNode[] = [];
  const sorted = [...items].sort((a, b) => (a.keys.subject < b.keys.subject ? -1 : a.keys.subject > b.keys.subject ? 1 : 0) || sentDate(a) - sentDate(b) || a.seq - b.seq);
  for (const i of sorted) {
    const n = node(i, id(i));
    const root = groups.get(i.keys.subject);
    if (root) {
      n.parent = root;
      root.children.push(n);
    } else {
      groups.set(i.keys.subject, n);
      roots.push(n);
    }
  }
  return roots.sort(cmpNodes);
}

/** Makes `child` a child of `parent` unless it has a parent and `replace` is false, or a loop would form. */
function link(parent: ThreadNode, child: ThreadNode, replace: boolean): void {
  if (child.parent && !replace) return;
  if (child.parent === parent || child === parent) return;
  // Only a child with children of its own can be an ancestor of `parent`: a new message (the usual
  // case, References in arrival order) skips the walk up a chain that may be thousands deep.
  if (child.children.length > 0) for (let p: ThreadNode | undefined = parent; p; p = p.parent) if (p === child) return;
  unlink(child);
  child.parent = parent;
  parent.children.push(child);
}

function unlink(child: ThreadNode): void {
  const p = child.parent;
  if (!p) return;
  p.children.splice(p.children.indexOf(child), 1);
  child.parent = undefined;
}

/** THREAD=REFERENCES (RFC 5256 §3 steps 1-6). */
export function referencesThreads(items: readonly SortItem[], id: (i: SortItem) => number): ThreadNode[] {
  const byMsgId = new Map<string, ThreadNode>();
  const all: ThreadNode[] = [];
  const container = (msgid: string): ThreadNode => {
    let n = byMsgId.get(msgid);
    if (!n) {
      byMsgId.set(msgid, (n = node(undefined, 0)));
      all.push(n);
    }
    return n;
  };
  // (1) Link messages by their references, in mailbox order.
  let inOrder = true;
  for (let k = 1; k < items.length && inOrder; k++) inOrder = items[k - 1]!.seq < items[k]!.seq;
  for (const i of inOrder ? items : [...items].sort((a, b) => a.seq - b.seq)) {
    const mid = i.keys.messageId;
    let n = mid === undefined ? undefined : byMsgId.get(mid);
    if (mid !== undefined && n === undefined) n = container(mid);
    if (n !== undefined && n.id === 0) {
      // A container seen only in references so far, or new: the message takes it.
      fill(n, i, id(i));
    } else {
      // No Message-ID, or a duplicate one: a container of its own.
      all.push((n = node(i, id(i))));
    }
    const refs = i.keys.refs;
    if (refs.length > 0) {
      // (1A) Each reference the parent of the next; existing links are kept.
      for (let k = 0; k + 1 < refs.length; k++) link(container(refs[k]!), container(refs[k + 1]!), false);
      // (1B) The last reference is the parent of this message, replacing a parent a truncated
      // References elsewhere gave it.
      link(container(refs[refs.length - 1]!), n, true);
    } else unlink(n);
  }
  // (2) The root set; (3) dummies pruned: one without children goes, one with children gives them to
  // its parent (at the root only when there is a single child).
  const root = node(undefined, 0);
  for (const n of all) if (!n.parent) root.children.push(n);
  for (const p of postOrder([root])) {
    if (p.children.length === 0) continue;
    const kids: ThreadNode[] = [];
    for (const c of p.children) {
      if (c.id !== 0) kids.push(c);
      else if (c.children.length === 0) continue;
      else if (p !== root || c.children.length === 1) {
        for (const g of c.children) {
          g.parent = p === root ? undefined : p;
          kids.push(g);
        }
      } else kids.push(c);
    }
    p.children = kids;
  }
  // (4) Root set by date; (5) threads with the same base subject gathered.
  const roots = sortTree(root.children);
  for (const r of roots) r.parent = undefined;
  const subjectOf = (r: ThreadNode) => first(r);
  const table = new Map<string, ThreadNode>();
  for (const r of roots) {
    const s = subjectOf(r);
    if (s.subject === '') continue;
    const t = table.get(s.subject);
    if (!t || (t.id !== 0 && (r.id === 0 || (subjectOf(t).reply && !s.reply)))) table.set(s.subject, r);
  }
  const out: Array<ThreadNode | undefined> = [...roots];
  const at = new Map<ThreadNode, number>(roots.map((r, k) => [r, k]));
  for (let k = 0; k < out.length; k++) {
    const r = out[k];
    if (!r) continue;
    const s = subjectOf(r);
    if (s.subject === '') continue;
    const t = table.get(s.subject)!;
    if (t === r) continue;
    out[k] = undefined;
    if (t.id === 0 && r.id === 0) {
      // Both dummies: the children of both become siblings.
      for (const c of r.children) {
        c.parent = t;
        t.children.push(c);
      }
    } else if (t.id === 0 || (s.reply && !subjectOf(t).reply)) {
      r.parent = t;
      t.children.push(r);
    } else {
      // Neither a reply of the other: both under a new dummy, which takes the table's place.
      const d = node(undefined, 0);
      d.children = [r, t];
      r.parent = t.parent = d;
      out[at.get(t)!] = d;
      at.set(d, at.get(t)!);
      table.set(s.subject, d);
    }
  }
  // (6) Every sibling list by date.
  return sortTree(out.filter((r): r is ThreadNode => r !== undefined));
}

/** The THREAD response data: "(1 2 (3)(4 5))(6)" (RFC 5256 §4), written without recursion. */
export function formatThreads(roots: readonly ThreadNode[]): string {
  const parts: string[] = [];
  const stack: Array<ThreadNode | string> = [];
  for (let k = roots.length - 1; k >= 0; k--) stack.push(')', roots[k]!, '(');
  while (stack.length > 0) {
    const x = stack.pop()!;
    if (typeof x === 'string') {
      parts.push(x);
      continue;
    }
    // A single child continues the line (followed without the stack); several each get parentheses.
    for (let n = x; ; ) {
      if (n.id !== 0) parts.push(n.children.length > 0 ? `${n.id} ` : String(n.id));
      if (n.children.length === 1) {
        n = n.children[0]!;
        continue;
      }
      for (let k = n.children.length - 1; k >= 0; k--) stack.push(')', n.children[k]!, '(');
      break;
    }
  }
  return parts.join('');
}
