/**
 * The few declarations the unit tests need from Node's built-in test runner
 * and assert module, so that the tests need no @types/node.
 */
declare module 'node:test' {
  export function test(name: string, fn: () => void | Promise<void>): void;
}

declare module 'node:assert/strict' {
  function ok(value: unknown, message?: string): asserts value;
  namespace ok {
    function equal<T>(actual: unknown, expected: T, message?: string): void;
    function deepEqual<T>(actual: unknown, expected: T, message?: string): void;
    function match(actual: string, expected: RegExp, message?: string): void;
  }
  export default ok;
}
