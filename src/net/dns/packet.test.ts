import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildResponse, parseQuery, RCODE_NXDOMAIN, RCODE_OK, TYPE_A, TYPE_AAAA } from './packet.ts';

/** A query as resolvers send it: header, one question, recursion desired. */
function query(id: number, name: string, type: number): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const q = Buffer.concat([...labels, Buffer.from([0, type >> 8, type & 255, 0, 1])]);
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(1, 4);
  return Buffer.concat([h, q]);
}

test('a query parses to its name (lower case) and type; answers echo the question and point at it', () => {
  const q = parseQuery(query(0x1234, 'Web.Example', TYPE_A))!;
  assert.deepEqual([q.id, q.name, q.type, q.class, q.rd], [0x1234, 'web.example', TYPE_A, 1, true]);
  const r = buildResponse(q, RCODE_OK, [{ type: TYPE_A, ip: '10.89.0.2' }, { type: TYPE_A, ip: '10.89.0.3' }]);
  assert.equal(r.readUInt16BE(0), 0x1234);
  assert.equal(r.readUInt16BE(2) & 0x800f, 0x8000); // a response, NOERROR
  assert.equal(r.readUInt16BE(6), 2);
  const first = 12 + q.question.length;
  assert.equal(r.readUInt16BE(first), 0xc00c);
  assert.deepEqual([...r.subarray(first + 12, first + 16)], [10, 89, 0, 2]);
  assert.equal(r.length, first + 2 * 16);
});

test('NXDOMAIN and empty answers; responses, truncated and compressed questions are dropped', () => {
  const q = parseQuery(query(7, 'nosuch', TYPE_AAAA))!;
  assert.equal(buildResponse(q, RCODE_NXDOMAIN).readUInt16BE(2) & 0xf, RCODE_NXDOMAIN);
  const reply = query(7, 'x', TYPE_A);
  reply.writeUInt16BE(0x8100, 2);
  assert.equal(parseQuery(reply), undefined);
  assert.equal(parseQuery(query(7, 'abc', TYPE_A).subarray(0, 15)), undefined);
  const compressed = Buffer.concat([query(7, 'a', TYPE_A).subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
  assert.equal(parseQuery(compressed), undefined);
});
