import { describe, expect, it } from 'vitest';
import {
  ISO_3166_ALPHA2,
  ISO_4217_CODES,
  isIso2Country,
  normalizeCurrency,
  normalizeIso2Country,
  parseMinorUnits,
  sameCurrency,
  sumMinorUnits,
} from '../../src/domain/money.js';

describe('parseMinorUnits (sync-api.md 2.3)', () => {
  it.each([
    [0, 0],
    [1000, 1000],
    [-250, -250],
    ['0', 0],
    ['-0', 0],
    ['1000', 1000],
    ['-1000', -1000],
    ['007', 7],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    [String(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
    [String(Number.MIN_SAFE_INTEGER), Number.MIN_SAFE_INTEGER],
  ])('accepts %j → %j', (input, want) => {
    expect(Object.is(parseMinorUnits(input), want)).toBe(true);
  });

  it.each([
    ['10.00'],
    ['1e3'],
    [''],
    [' 1'],
    ['1 '],
    ['+1'],
    ['-'],
    ['0x10'],
    ['1_000'],
    ['１２'],
    ['9007199254740992'],
    ['-9007199254740992'],
    [10.5],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [Number.MAX_SAFE_INTEGER + 1],
    [null],
    [undefined],
    [true],
    [{}],
    [[1]],
  ])('rejects %j', (input) => {
    expect(parseMinorUnits(input)).toBeNull();
  });

  it('round-trips random integers through strings', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 2000; i++) {
      const n = Math.floor((rnd() - 0.5) * 2 * 1e12);
      expect(parseMinorUnits(String(n))).toBe(n === 0 ? 0 : n);
      expect(parseMinorUnits(n)).toBe(n === 0 ? 0 : n);
      expect(parseMinorUnits(`${n}.0`)).toBeNull();
    }
  });

  it('rejects bigint', () => {
    expect(parseMinorUnits(10n)).toBeNull();
  });

  it('sumMinorUnits refuses to overflow', () => {
    expect(sumMinorUnits([1, 2, 3])).toBe(6);
    expect(() => sumMinorUnits([Number.MAX_SAFE_INTEGER, 1])).toThrow(RangeError);
  });
});

describe('currency codes', () => {
  it('normalises case-insensitively to upper case', () => {
    expect(normalizeCurrency('EUR')).toBe('EUR');
    expect(normalizeCurrency('eur')).toBe('EUR');
    expect(normalizeCurrency('uSd')).toBe('USD');
    expect(normalizeCurrency('chf')).toBe('CHF');
  });

  it.each([['EURO'], ['EU'], [''], ['ABC'], ['QQQ'], [' EUR'], ['EUR '], ['€'], ['E1R'], [null], [978], [undefined], [{}]])('rejects %j', (v) => {
    expect(normalizeCurrency(v)).toBeNull();
  });

  it('the list is complete enough, unique and upper-case', () => {
    expect(new Set(ISO_4217_CODES).size).toBe(ISO_4217_CODES.length);
    expect(ISO_4217_CODES.length).toBeGreaterThanOrEqual(175);
    for (const c of ISO_4217_CODES) {
      expect(c).toMatch(/^[A-Z]{3}$/);
      expect(normalizeCurrency(c.toLowerCase())).toBe(c);
    }
    for (const c of ['EUR', 'USD', 'GBP', 'JPY', 'PLN', 'SEK', 'DKK', 'NOK', 'CZK', 'HUF', 'BRL', 'KWD', 'XCG', 'ZWG', 'VED', 'SLE']) {
      expect(ISO_4217_CODES).toContain(c);
    }
    // withdrawn codes
    for (const c of ['DEM', 'FRF', 'HRK', 'LTL', 'VEF', 'MRO', 'STD']) expect(normalizeCurrency(c)).toBeNull();
  });

  it('sameCurrency compares case-insensitively', () => {
    expect(sameCurrency('eur', 'EUR')).toBe(true);
    expect(sameCurrency('EUR', 'USD')).toBe(false);
  });
});

describe('ISO 3166-1 alpha-2', () => {
  it('has 249 unique upper-case codes', () => {
    expect(ISO_3166_ALPHA2).toHaveLength(249);
    expect(new Set(ISO_3166_ALPHA2).size).toBe(249);
    for (const c of ISO_3166_ALPHA2) expect(c).toMatch(/^[A-Z]{2}$/);
  });

  it('accepts assigned codes case-insensitively', () => {
    for (const c of ['DE', 'AT', 'US', 'GB', 'FR', 'CH', 'de', 'Gb', 'SS', 'AX']) expect(isIso2Country(c)).toBe(true);
    expect(normalizeIso2Country('de')).toBe('DE');
  });

  it.each([['UK'], ['EU'], ['XK'], ['D'], ['DEU'], [''], [' DE'], [null], [49], [undefined]])('rejects %j', (v) => {
    expect(isIso2Country(v)).toBe(false);
  });
});
