/**
 * Money and code validation (sync-api.md 2.3). Pure functions, no I/O.
 * Money is always an integer in minor units.
 */

const INTEGER_STRING = /^-?[0-9]+$/;

/**
 * Strict minor-unit parsing: a safe integer, or a string matching `^-?[0-9]+$` whose value is a safe integer.
 * Everything else (`"10.00"`, `"1e3"`, `""`, `" 1"`, `"+1"`, floats, NaN, Infinity, booleans, null) → null.
 */
export function parseMinorUnits(value: unknown): number | null {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) return null;
    return value === 0 ? 0 : value; // normalise -0
  }
  if (typeof value === 'string') {
    if (!INTEGER_STRING.test(value)) return null;
    const n = Number(value);
    if (!Number.isSafeInteger(n)) return null;
    return n === 0 ? 0 : n;
  }
  return null;
}

/** Sum of minor-unit amounts; throws on overflow beyond the safe integer range (programming error). */
export function sumMinorUnits(values: Iterable<number>): number {
  let total = 0;
  for (const v of values) total += v;
  if (!Number.isSafeInteger(total)) throw new RangeError('Amount sum exceeds the safe integer range.');
  return total;
}

/** ISO 4217 alphabetic codes currently listed by the maintenance agency (List One), incl. funds and X-codes. */
export const ISO_4217_CODES: readonly string[] = Object.freeze([
  'AED', 'AFN', 'ALL', 'AMD', 'ANG', 'AOA', 'ARS', 'AUD', 'AWG', 'AZN',
  'BAM', 'BBD', 'BDT', 'BGN', 'BHD', 'BIF', 'BMD', 'BND', 'BOB', 'BOV', 'BRL', 'BSD', 'BTN', 'BWP', 'BYN', 'BZD',
  'CAD', 'CDF', 'CHE', 'CHF', 'CHW', 'CLF', 'CLP', 'CNY', 'COP', 'COU', 'CRC', 'CUC', 'CUP', 'CVE', 'CZK',
  'DJF', 'DKK', 'DOP', 'DZD',
  'EGP', 'ERN', 'ETB', 'EUR',
  'FJD', 'FKP',
  'GBP', 'GEL', 'GHS', 'GIP', 'GMD', 'GNF', 'GTQ', 'GYD',
  'HKD', 'HNL', 'HTG', 'HUF',
  'IDR', 'ILS', 'INR', 'IQD', 'IRR', 'ISK',
  'JMD', 'JOD', 'JPY',
  'KES', 'KGS', 'KHR', 'KMF', 'KPW', 'KRW', 'KWD', 'KYD', 'KZT',
  'LAK', 'LBP', 'LKR', 'LRD', 'LSL', 'LYD',
  'MAD', 'MDL', 'MGA', 'MKD', 'MMK', 'MNT', 'MOP', 'MRU', 'MUR', 'MVR', 'MWK', 'MXN', 'MXV', 'MYR', 'MZN',
  'NAD', 'NGN', 'NIO', 'NOK', 'NPR', 'NZD',
  'OMR',
  'PAB', 'PEN', 'PGK', 'PHP', 'PKR', 'PLN', 'PYG',
  'QAR',
  'RON', 'RSD', 'RUB', 'RWF',
  'SAR', 'SBD', 'SCR', 'SDG', 'SEK', 'SGD', 'SHP', 'SLE', 'SLL', 'SOS', 'SRD', 'SSP', 'STN', 'SVC', 'SYP', 'SZL',
  'THB', 'TJS', 'TMT', 'TND', 'TOP', 'TRY', 'TTD', 'TWD', 'TZS',
  'UAH', 'UGX', 'USD', 'USN', 'UYI', 'UYU', 'UYW', 'UZS',
  'VED', 'VES', 'VND', 'VUV',
  'WST',
  'XAF', 'XAG', 'XAU', 'XBA', 'XBB', 'XBC', 'XBD', 'XCD', 'XCG', 'XDR', 'XOF', 'XPD', 'XPF', 'XPT', 'XSU', 'XTS', 'XUA', 'XXX',
  'YER',
  'ZAR', 'ZMW', 'ZWG', 'ZWL',
]);

const CURRENCY_SET: ReadonlySet<string> = new Set(ISO_4217_CODES);

/** 3 letters, case-insensitive, listed in ISO 4217 → upper-case code; anything else → null. */
export function normalizeCurrency(value: unknown): string | null {
  if (typeof value !== 'string' || !/^[A-Za-z]{3}$/.test(value)) return null;
  const upper = value.toUpperCase();
  return CURRENCY_SET.has(upper) ? upper : null;
}

/** Case-insensitive comparison of two currency codes (sync-api.md 2.3). */
export function sameCurrency(a: string, b: string): boolean {
  return a.toUpperCase() === b.toUpperCase();
}

/** ISO 3166-1 alpha-2 officially assigned codes (249). */
export const ISO_3166_ALPHA2: readonly string[] = Object.freeze(
  (
    'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ ' +
    'BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ ' +
    'CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ ' +
    'DE DJ DK DM DO DZ ' +
    'EC EE EG EH ER ES ET ' +
    'FI FJ FK FM FO FR ' +
    'GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY ' +
    'HK HM HN HR HT HU ' +
    'ID IE IL IM IN IO IQ IR IS IT ' +
    'JE JM JO JP ' +
    'KE KG KH KI KM KN KP KR KW KY KZ ' +
    'LA LB LC LI LK LR LS LT LU LV LY ' +
    'MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ ' +
    'NA NC NE NF NG NI NL NO NP NR NU NZ ' +
    'OM ' +
    'PA PE PF PG PH PK PL PM PN PR PS PT PW PY ' +
    'QA ' +
    'RE RO RS RU RW ' +
    'SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ ' +
    'TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ ' +
    'UA UG UM US UY UZ ' +
    'VA VC VE VG VI VN VU ' +
    'WF WS ' +
    'YE YT ' +
    'ZA ZM ZW'
  ).split(' '),
);

const COUNTRY_SET: ReadonlySet<string> = new Set(ISO_3166_ALPHA2);

/** Upper-case ISO 3166-1 alpha-2 code for a 2-letter string (case-insensitive), else null. */
export function normalizeIso2Country(value: unknown): string | null {
  if (typeof value !== 'string' || !/^[A-Za-z]{2}$/.test(value)) return null;
  const upper = value.toUpperCase();
  return COUNTRY_SET.has(upper) ? upper : null;
}

/** True for an assigned ISO 3166-1 alpha-2 code (compared case-insensitively, like currency codes). */
export function isIso2Country(value: unknown): boolean {
  return normalizeIso2Country(value) !== null;
}

/** Minor units → display string using the currency's exponent (EUR 2, JPY 0, KWD 3). */
export function formatAmount(amount: number, currency: string, locale: string): string {
  const tag = locale.replace('_', '-');
  try {
    const digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    const major = amount / 10 ** digits;
    let fmt: Intl.NumberFormat;
    try {
      fmt = new Intl.NumberFormat(tag, { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits });
    } catch {
      fmt = new Intl.NumberFormat('en', { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits });
    }
    return fmt.format(major);
  } catch {
    return `${(amount / 100).toFixed(2)} ${currency}`;
  }
}
