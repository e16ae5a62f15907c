import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  asBufferRef,
  CLOSE_UNKNOWN_KERNEL,
  describeError,
  isClientInfo,
  isKernelSummary,
  isModelDetail,
  isModelSummary,
  isSummaryEvent,
  isUnsettled,
  parseSummaryEvent
} from '../src/payloads';

const client = {
  client_id: 'c1',
  username: 'alice',
  display_name: 'Alice',
  protocol: 'v1'
};
const summary = {
  kernel_id: 'k1',
  models: 2,
  state_bytes: 100,
  buffer_bytes: 9,
  clients: [client],
  execution_state: 'idle',
  unsettled: { updates: 0, waiting: 0, traits: 1, state_checks: 0 }
};
const model = {
  model_id: 'm1',
  model_name: 'IntSliderModel',
  model_module: '@jupyter-widgets/controls',
  model_module_version: '2.0.0',
  state_bytes: 50,
  buffer_bytes: 0,
  version: 3,
  last_change: '2026-11-23T12:18:05.765760+00:00'
};

test('a client entry needs every field as a string', () => {
  assert(isClientInfo(client));
  assert(isClientInfo({ ...client, username: '' }));
  assert(!isClientInfo({ ...client, protocol: 1 }));
  const unnamed = { client_id: 'c1', username: 'alice', protocol: 'v1' };
  assert(!isClientInfo(unnamed));
  assert(!isClientInfo(null));
  assert(!isClientInfo([client]));
});

test('a kernel summary needs its counts, clients and unsettled bookkeeping', () => {
  assert(isKernelSummary(summary));
  assert(isKernelSummary({ ...summary, clients: [] }));
  assert(!isKernelSummary({ ...summary, models: '2' }));
  assert(!isKernelSummary({ ...summary, models: Number.NaN }));
  assert(!isKernelSummary({ ...summary, clients: [{}] }));
  assert(!isKernelSummary({ ...summary, unsettled: undefined }));
  assert(!isUnsettled({ updates: 0, waiting: 0, traits: 0 }));
});

test('a model summary and a model with its state', () => {
  assert(isModelSummary(model));
  assert(!isModelSummary({ ...model, version: null }));
  assert(!isModelDetail(model), 'a detail has a state');
  assert(isModelDetail({ ...model, state: { value: 1 } }));
  assert(!isModelDetail({ ...model, state: [1] }));
});

test('events frames: summaries parse, anything else is null', () => {
  const frame = { type: 'summary', kernel: summary, changed_models: ['m1'] };
  assert(isSummaryEvent(frame));
  assert.deepEqual(parseSummaryEvent(JSON.stringify(frame)), frame);
  assert.equal(parseSummaryEvent(frame), null, 'only text frames');
  assert.equal(parseSummaryEvent('{not json'), null);
  assert.equal(
    parseSummaryEvent(JSON.stringify({ ...frame, type: 'x' })),
    null
  );
  const stopped = { type: 'summary', kernel: null, changed_models: [] };
  assert.equal(parseSummaryEvent(JSON.stringify(stopped)), null);
  const badIds = { ...frame, changed_models: [1] };
  assert.equal(parseSummaryEvent(JSON.stringify(badIds)), null);
});

test('a $buffer placeholder and nothing else is a buffer reference', () => {
  const digest = 'ab'.repeat(32);
  assert.deepEqual(asBufferRef({ $buffer: { bytes: 9, sha256: digest } }), {
    bytes: 9,
    sha256: digest
  });
  assert.deepEqual(asBufferRef({ $buffer: { bytes: 9 } }), {
    bytes: 9,
    sha256: ''
  });
  assert.equal(asBufferRef({ $buffer: { bytes: 9 }, other: 1 }), null);
  assert.equal(asBufferRef({ $buffer: { bytes: '9' } }), null);
  assert.equal(asBufferRef({ bytes: 9 }), null);
  assert.equal(asBufferRef([{ $buffer: { bytes: 9 } }]), null);
  assert.equal(asBufferRef('$buffer'), null);
  assert.equal(asBufferRef(null), null);
});

test('close codes and error descriptions', () => {
  assert.equal(CLOSE_UNKNOWN_KERNEL, 4004);
  assert.equal(describeError(new Error('boom')), 'boom');
  assert.equal(describeError('plain'), 'plain');
  assert.equal(describeError(404), '404');
});
