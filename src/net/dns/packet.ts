// The few parts of the DNS wire format (RFC 1035) the embedded resolver needs: the header and
// first question of a query, and answers with A or PTR records pointing back at that question.
// Small enough that a packet library would be more code to trust than to write.

export const TYPE_A = 1;
export const TYPE_PTR = 12;
export const TYPE_AAAA = 28;
export const RCODE_OK = 0;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;

export interface Query {
  id: number;
  /** Recursion desired, echoed back. */
  rd: boolean;
  /** Lower case, without the trailing dot. */
  name: string;
  type: number;
  class: number;
  /** The bytes of the question section (to echo). */
  question: Buffer;
}

/** The first question of a standard query, or undefined for anything else (dropped). */
export function parseQuery(msg: Buffer): Query | undefined {
  if (msg.length < 12) return undefined;
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000 || ((flags >> 11) & 0xf) !== 0 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let i = 12;
  for (;;) {
    if (i >= msg.length) return undefined;
    const len = msg[i];
    if (len === 0) break;
    if (len > 63 || i + 1 + len > msg.length) return undefined; // no compression inside a question
    labels.push(msg.toString('latin1', i + 1, i + 1 + len));
    i += 1 + len;
  }
  i += 1;
  if (i + 4 > msg.length) return undefined;
  return {
    id: msg.readUInt16BE(0),
    rd: !!(flags & 0x0100),
    name: labels.join('.').toLowerCase(),
    type: msg.readUInt16BE(i),
    class: msg.readUInt16BE(i + 2),
    question: msg.subarray(12, i + 4),
  };
}

export type Answer = { type: typeof TYPE_A; ip: string } | { type: typeof TYPE_PTR; name: string };

function encodeName(name: string): Buffer {
  const parts = name.split('.').filter(Boolean).map((l) => {
    const b = Buffer.from(l, 'latin1');
    return Buffer.concat([Buffer.from([b.length]), b]);
  });
  return Buffer.concat([...parts, Buffer.from([0])]);
}

export function buildResponse(q: Query, rcode: number, answers: Answer[] = [], ttl = 600): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, AA (we are the authority for these names), RD echoed, RA
  header.writeUInt16BE(0x8000 | 0x0400 | (q.rd ? 0x0100 : 0) | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const records = answers.map((a) => {
    const data = a.type === TYPE_A ? Buffer.from(a.ip.split('.').map(Number)) : encodeName(a.name);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    rr.writeUInt16BE(a.type, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(ttl, 6);
    rr.writeUInt16BE(data.length, 10);
    return Buffer.concat([rr, data]);
  });
  return Buffer.concat([header, q.question, ...records]);
}
