/**
 * Finds the line of a field path (e.g. ["domains", 1, "limits", "imap", "perUser"]) in block-style YAML,
 * so schema errors can say `mailfleet.yaml:14 domains[1].limits.imap.perUser: …`.
 * js-yaml gives no node positions, so we walk the text by indentation. Flow-style collections
 * resolve to the line of their key, which is still the right line for the reader.
 */
export type FieldPath = ReadonlyArray<string | number>;

interface Line {
  no: number; // 1-based
  indent: number;
  text: string; // without indentation and comments
}

function lines(source: string): Line[] {
  const out: Line[] = [];
  source.split(/\r?\n/).forEach((raw, i) => {
    const noComment = raw.replace(/(^|\s)#.*$/, '');
    if (noComment.trim() === '' || /^(---|\.\.\.)\s*$/.test(noComment.trim())) return;
    const indent = noComment.length - noComment.trimStart().length;
    out.push({ no: i + 1, indent, text: noComment.trim() });
  });
  return out;
}

function keyOf(text: string): string | undefined {
  const m = /^(?:"([^"]+)"|'([^']+)'|([^:\s][^:]*?))\s*:(\s|$)/.exec(text);
  return m ? (m[1] ?? m[2] ?? m[3]) : undefined;
}

/** Returns the 1-based line of the deepest part of `path` that exists in the text. */
export function locateField(source: string, path: FieldPath): number | undefined {
  const ls = lines(source);
  let start = 0;
  let end = ls.length;
  let parentIndent = -1;
  let found: number | undefined;
  for (const seg of path) {
    let hit = -1;
    if (typeof seg === 'number') {
      // items of a sequence: "- " at the first indentation deeper than the parent (or equal, YAML allows it)
      let count = -1;
      let itemIndent = -1;
      for (let i = start; i < end; i++) {
        const l = ls[i]!;
        if (!l.text.startsWith('-')) continue;
        if (itemIndent === -1) itemIndent = l.indent;
        if (l.indent !== itemIndent) continue;
        count++;
        if (count === seg) {
          hit = i;
          break;
        }
      }
      if (hit === -1) return found;
      const item = ls[hit]!;
      found = item.no;
      // the item spans until the next line at indent <= item indent
      let j = hit + 1;
      while (j < end && ls[j]!.indent > item.indent) j++;
      // an item's first key shares the dash line: treat the dash line as part of the body with a virtual indent
      const body = item.text.replace(/^-\s*/, '');
      const virtualIndent = item.indent + (item.text.length - body.length);
      ls[hit] = { no: item.no, indent: virtualIndent, text: body };
      parentIndent = item.indent;
      start = hit;
      end = j;
      continue;
    }
    let childIndent = -1;
    for (let i = start; i < end; i++) {
      const l = ls[i]!;
      if (l.indent <= parentIndent) continue;
      if (childIndent === -1) childIndent = l.indent;
      if (l.indent !== childIndent) continue;
      if (keyOf(l.text) === seg) {
        hit = i;
        break;
      }
    }
    if (hit === -1) return found;
    const line = ls[hit]!;
    found = line.no;
    let j = hit + 1;
    while (j < end && ls[j]!.indent > line.indent) j++;
    parentIndent = line.indent;
    start = hit + 1;
    end = j;
  }
  return found;
}

/** `domains[1].limits.imap.perUser` */
export function formatPath(path: FieldPath): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else s += s === '' ? seg : `.${seg}`;
  }
  return s === '' ? '(root)' : s;
}
