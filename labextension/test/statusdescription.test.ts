import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { IRelayViewState } from '../src/binding';
import type { IKernelSummary } from '../src/payloads';
import { describeStatus, NOT_ENABLED_TEXT } from '../src/statusdescription';

const summary: IKernelSummary = {
  kernel_id: '0123456789abcdef',
  models: 5,
  state_bytes: 3075,
  buffer_bytes: 9,
  clients: [
    {
      client_id: 'a',
      username: 'alice',
      display_name: 'Alice',
      protocol: 'v1'
    },
    { client_id: 'b', username: '', display_name: '', protocol: 'json' }
  ],
  execution_state: 'idle',
  unsettled: { updates: 0, waiting: 0, traits: 0, state_checks: 0 }
};
const served: IRelayViewState = {
  availability: { kind: 'enabled', version: '0.1.0' },
  kernelId: summary.kernel_id,
  path: 'a.ipynb',
  connection: 'open',
  summary
};

test('before the server answers, and when the relay is not there', () => {
  const checking = describeStatus({ ...served, availability: null });
  assert.equal(checking.kind, 'checking');
  assert.equal(checking.clients, null);
  const missing = describeStatus({
    ...served,
    availability: { kind: 'missing' }
  });
  assert.equal(missing.kind, 'missing');
  assert.equal(missing.label, NOT_ENABLED_TEXT);
  assert.match(missing.tooltip, /404/);
  const off = { kind: 'disabled', version: '0.1.0' } as const;
  const disabled = describeStatus({ ...served, availability: off });
  assert.equal(disabled.kind, 'disabled');
  assert.equal(disabled.label, NOT_ENABLED_TEXT);
  const failing = { kind: 'error', message: 'Network down' } as const;
  const error = describeStatus({ ...served, availability: failing });
  assert.equal(error.kind, 'error');
  assert.match(error.tooltip, /Network down/);
});

test('no kernel, connecting and a kernel the relay does not serve', () => {
  assert.equal(describeStatus({ ...served, kernelId: null }).kind, 'no-kernel');
  for (const connection of ['none', 'connecting'] as const) {
    const d = describeStatus({ ...served, connection });
    assert.equal(d.kind, 'connecting');
    assert.match(d.tooltip, /01234567…/);
  }
  for (const connection of ['unknown-kernel', 'disposed'] as const) {
    const d = describeStatus({ ...served, connection });
    assert.equal(d.kind, 'not-served');
    assert.equal(d.models, null);
  }
  const first = describeStatus({ ...served, summary: null });
  assert.equal(first.kind, 'connecting');
});

test('reconnecting keeps the last counts', () => {
  const d = describeStatus({ ...served, connection: 'reconnecting' });
  assert.equal(d.kind, 'reconnecting');
  assert.equal(d.clients, 2);
  assert.equal(d.models, 5);
  const blind = describeStatus({
    ...served,
    connection: 'reconnecting',
    summary: null
  });
  assert.equal(blind.clients, null);
});

test('connected: counts, clients and sizes in the tooltip', () => {
  const d = describeStatus(served);
  assert.equal(d.kind, 'connected');
  assert.equal(d.label, 'Widget relay');
  assert.equal(d.clients, 2);
  assert.equal(d.models, 5);
  assert.match(d.tooltip, /Connected clients \(2\):/);
  assert.match(d.tooltip, /• Alice \(alice\)/);
  assert.match(d.tooltip, /• anonymous/);
  assert.match(d.tooltip, /state 3\.1 kB, buffers 9 B/);
});
