import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  clientLabel,
  clientName,
  formatAge,
  formatBytes,
  formatTimestamp,
  noun,
  plural,
  shortId
} from '../src/format';

test('bytes in powers of 1000', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1000), '1.0 kB');
  assert.equal(formatBytes(1234), '1.2 kB');
  assert.equal(formatBytes(123_456), '123 kB');
  assert.equal(formatBytes(5_000_000), '5.0 MB');
  assert.equal(formatBytes(2e15), '2000 TB');
  assert.equal(formatBytes(-1), '?');
  assert.equal(formatBytes(Number.NaN), '?');
  assert.equal(formatBytes(Number.POSITIVE_INFINITY), '?');
});

test('singular and plural nouns', () => {
  assert.equal(noun(1, 'model'), 'model');
  assert.equal(noun(0, 'model'), 'models');
  assert.equal(noun(2, 'box', 'boxes'), 'boxes');
  assert.equal(plural(1, 'client'), '1 client');
  assert.equal(plural(3, 'client'), '3 clients');
});

test('ages relative to now, and unparsable times as given', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  assert.equal(formatAge('2026-01-01T11:59:30Z', now), '30 s ago');
  assert.equal(formatAge('2026-01-01T12:00:05Z', now), '0 s ago');
  assert.equal(formatAge('2026-01-01T11:55:00Z', now), '5 min ago');
  assert.equal(formatAge('2026-01-01T09:00:00Z', now), '3 h ago');
  const old = formatAge('2025-12-01T12:00:00Z', now);
  assert(!old.endsWith('ago'), old);
  assert.equal(formatAge('not a time', now), 'not a time');
  assert.equal(formatTimestamp('not a time'), 'not a time');
});

test('short ids', () => {
  assert.equal(shortId('0123456789abcdef'), '01234567…');
  assert.equal(shortId('0123'), '0123');
  assert.equal(shortId('0123456789', 4), '0123…');
});

test('client names and labels', () => {
  const base = { client_id: 'c', protocol: 'v1' };
  const alice = { ...base, username: 'alice', display_name: 'Alice' };
  assert.equal(clientName(alice), 'Alice');
  assert.equal(clientLabel(alice), 'Alice (alice)');
  const same = { ...base, username: 'bob', display_name: 'bob' };
  assert.equal(clientLabel(same), 'bob');
  const anonymous = {
    ...base,
    username: '81f9893a954d4a2887016ae040b623fb',
    display_name: 'Anonymous Sinope'
  };
  assert.equal(clientLabel(anonymous), 'Anonymous Sinope');
  const nameless = { ...base, username: '', display_name: '' };
  assert.equal(clientName(nameless), 'anonymous');
  assert.equal(clientLabel(nameless), 'anonymous');
  const userOnly = { ...base, username: 'carol', display_name: '' };
  assert.equal(clientLabel(userOnly), 'carol');
});
