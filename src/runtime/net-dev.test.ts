// Parsing network counters: /proc/<pid>/net/dev text, and a pod VM's (untrusted) StatsJSON.networks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networksFrom, parseNetDev } from './net-dev.ts';

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     120       2    0    0    0     0          0         0      120       2    0    0    0     0       0          0
  eth0:    1534      17    1    2    0     0          0         0      866      11    3    4    0     0       0          0
kraud0:      90       1    0    0    0     0          0         0       90       1    0    0    0     0       0          0
`;

test('parseNetDev: every interface but lo and the skipped ones, with docker\'s counter names', () => {
  assert.deepEqual(parseNetDev(NET_DEV, ['kraud0']), {
    eth0: { rx_bytes: 1534, rx_packets: 17, rx_errors: 1, rx_dropped: 2, tx_bytes: 866, tx_packets: 11, tx_errors: 3, tx_dropped: 4 },
  });
  assert.equal(parseNetDev(NET_DEV.split('\n').slice(0, 3).join('\n')), undefined, 'lo only: no networks, as dockerd for --network none');
  assert.equal(parseNetDev(''), undefined);
});

test('networksFrom: keeps well-formed entries of an untrusted answer, zeroes bad numbers, drops the skipped and odd names', () => {
  const got = networksFrom({ eth0: { rx_bytes: 5, tx_bytes: -1, rx_packets: 'x' }, kraud0: { rx_bytes: 1 }, '../evil name': { rx_bytes: 1 }, eth1: null }, ['kraud0']);
  assert.deepEqual(got, { eth0: { rx_bytes: 5, rx_packets: 0, rx_errors: 0, rx_dropped: 0, tx_bytes: 0, tx_packets: 0, tx_errors: 0, tx_dropped: 0 } });
  assert.equal(networksFrom([]), undefined);
  assert.equal(networksFrom('eth0'), undefined);
  assert.equal(networksFrom({ kraud0: { rx_bytes: 1 } }, ['kraud0']), undefined);
});
