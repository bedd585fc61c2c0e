import { v5 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { derivedUuid, uuidNamespace } from '../src/domain/derived-id.js';

describe('derivedUuid (UUIDv5)', () => {
  it('matches the RFC 9562 example and the uuid package for ASCII and non-ASCII names', () => {
    expect(derivedUuid('www.example.com', uuidNamespace('6ba7b810-9dad-11d1-80b4-00c04fd430c8'))).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
    const ns = 'b3f1c2a4-5d6e-4f70-8a91-0c2d3e4f5a6b';
    for (const name of ['initialize-payment:shop-1:DE--1', 'initialize-payment:bäckerei:Bestellung–№7', 'emoji 💳 order', '', 'x'.repeat(5000)]) {
      expect(derivedUuid(name, uuidNamespace(ns))).toBe(v5(name, ns));
    }
  });

  it('different names or namespaces give different ids', () => {
    const a = uuidNamespace('6ba7b811-9dad-11d1-80b4-00c04fd430c8');
    const b = uuidNamespace('b3f1c2a4-5d6e-4f70-8a91-0c2d3e4f5a6b');
    expect(derivedUuid('order-1', a)).not.toBe(derivedUuid('order-2', a));
    expect(derivedUuid('order-1', a)).not.toBe(derivedUuid('order-1', b));
  });
});
