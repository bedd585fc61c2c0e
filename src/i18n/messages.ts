/**
 * The server's own message catalog (catalog.md 4.2: configure and disconnect error messages are not taken
 * from translation.json). Two locales: en_US (default) and de_DE, chosen from Accept-Language (sync-api.md 2.1).
 */

export const LOCALES = ['en_US', 'de_DE'] as const;
export type Locale = (typeof LOCALES)[number];

type Texts = Record<Locale, string>;

export const MESSAGES = {
  // configure (sync-api.md 4.1)
  wrong_request_format: { en_US: 'Wrong request format.', de_DE: 'Falsches Anfrageformat.' },
  tenant_identifier_required: { en_US: 'X-Tenant-Identifier in header is required.', de_DE: 'X-Tenant-Identifier im Header ist erforderlich.' },
  psp_unreachable: {
    en_US: 'The payment provider could not be reached to check the credentials. Please try again.',
    de_DE: 'Der Zahlungsdienstleister war zur Prüfung der Zugangsdaten nicht erreichbar. Bitte versuchen Sie es erneut.',
  },
  field_required: { en_US: 'This field is required.', de_DE: 'Dieses Feld ist erforderlich.' },
  field_type_string: { en_US: 'The value must be a text.', de_DE: 'Der Wert muss ein Text sein.' },
  field_type_string_array: { en_US: 'The value must be a list of texts.', de_DE: 'Der Wert muss eine Liste von Texten sein.' },
  field_type_boolean: { en_US: 'The value must be true or false.', de_DE: 'Der Wert muss wahr oder falsch sein.' },
  field_type_number: { en_US: 'The value must be a number.', de_DE: 'Der Wert muss eine Zahl sein.' },
  field_type_array: { en_US: 'The value must be a list of entries.', de_DE: 'Der Wert muss eine Liste von Einträgen sein.' },
  field_type_object: { en_US: 'The value must be an object.', de_DE: 'Der Wert muss ein Objekt sein.' },
  field_enum: { en_US: 'The value must be one of: {values}.', de_DE: 'Der Wert muss einer der folgenden sein: {values}.' },
  field_invalid_entry: { en_US: 'Entry {index} is invalid: {message}', de_DE: 'Eintrag {index} ist ungültig: {message}' },
  field_format: { en_US: 'The value has an invalid format.', de_DE: 'Der Wert hat ein ungültiges Format.' },
  credentials_refused: {
    en_US: 'The payment provider refused these credentials.',
    de_DE: 'Der Zahlungsdienstleister hat diese Zugangsdaten abgelehnt.',
  },
  // connector format keys (the sandbox connector's, sandbox-psp.md "Tenant configuration")
  invalid_secret_key_format: {
    en_US: 'The secret key must start with "sk_sandbox_" followed by at least 8 letters or digits.',
    de_DE: 'Der geheime Schlüssel muss mit "sk_sandbox_" beginnen, gefolgt von mindestens 8 Buchstaben oder Ziffern.',
  },
  invalid_webhook_secret_format: {
    en_US: 'The webhook signing secret must start with "whsec_" followed by at least 16 letters or digits.',
    de_DE: 'Der Webhook-Signaturschlüssel muss mit "whsec_" beginnen, gefolgt von mindestens 16 Buchstaben oder Ziffern.',
  },
  // connector format and credential keys (the Stripe connector's, connectors/stripe.md 1.1)
  stripe_invalid_secret_key_format: {
    en_US: 'The secret key must start with "sk_test_", "sk_live_", "rk_test_" or "rk_live_" followed by at least 10 letters or digits.',
    de_DE: 'Der geheime Schlüssel muss mit "sk_test_", "sk_live_", "rk_test_" oder "rk_live_" beginnen, gefolgt von mindestens 10 Buchstaben oder Ziffern.',
  },
  stripe_invalid_publishable_key_format: {
    en_US: 'The publishable key must start with "pk_test_" or "pk_live_" followed by at least 10 letters or digits.',
    de_DE: 'Der veröffentlichbare Schlüssel muss mit "pk_test_" oder "pk_live_" beginnen, gefolgt von mindestens 10 Buchstaben oder Ziffern.',
  },
  stripe_key_mode_mismatch: {
    en_US: 'The publishable key and the secret key must both be test keys or both be live keys.',
    de_DE: 'Der veröffentlichbare und der geheime Schlüssel müssen beide Test- oder beide Live-Schlüssel sein.',
  },
  stripe_invalid_webhook_secret_format: {
    en_US: 'The webhook signing secret must start with "whsec_" followed by at least 16 letters or digits.',
    de_DE: 'Der Webhook-Signaturschlüssel muss mit "whsec_" beginnen, gefolgt von mindestens 16 Buchstaben oder Ziffern.',
  },
  stripe_invalid_pay_button_color: { en_US: 'The colour must look like #RRGGBB.', de_DE: 'Die Farbe muss die Form #RRGGBB haben.' },
  stripe_invalid_onboarding_country: { en_US: 'The country must be a two-letter code such as DE.', de_DE: 'Das Land muss ein zweistelliger Code wie DE sein.' },
  stripe_onboarding_country_required: { en_US: 'A marketplace needs the country of its merchants.', de_DE: 'Ein Marktplatz benötigt das Land seiner Händler.' },
  stripe_invalid_statement_descriptor_suffix: {
    en_US: 'The suffix may have up to 22 characters and no < > \\ \' " *.',
    de_DE: 'Der Zusatz darf bis zu 22 Zeichen haben und keine < > \\ \' " * enthalten.',
  },
  stripe_invalid_favicon_url: { en_US: 'The favicon must be an https URL.', de_DE: 'Das Favicon muss eine https-URL sein.' },
  stripe_key_refused: { en_US: 'Stripe refused this key.', de_DE: 'Stripe hat diesen Schlüssel abgelehnt.' },
  stripe_key_lacks_permission: {
    en_US: 'This key lacks PaymentIntent permission. Give the restricted key write access to PaymentIntents, Refunds and Webhook Endpoints.',
    de_DE: 'Diesem Schlüssel fehlt die Berechtigung für PaymentIntents. Geben Sie dem eingeschränkten Schlüssel Schreibzugriff auf PaymentIntents, Refunds und Webhook Endpoints.',
  },
  stripe_connect_not_enabled: {
    en_US: 'Stripe Connect is not available for this key. Enable Connect in the Stripe Dashboard or choose the direct business model.',
    de_DE: 'Stripe Connect ist für diesen Schlüssel nicht verfügbar. Aktivieren Sie Connect im Stripe-Dashboard oder wählen Sie das direkte Geschäftsmodell.',
  },
  // disconnect (sync-api.md 4.2)
  disconnect_tenant_missing: { en_US: 'Tenant identifier is missing.', de_DE: 'Die Mandantenkennung fehlt.' },
  disconnect_open_orders: {
    en_US:
      'The app cannot be disconnected while orders paid with it are still open. Those orders will not be processed any further after disconnecting. Close the open orders first, or confirm to disconnect anyway.',
    de_DE:
      'Die App kann nicht getrennt werden, solange mit ihr bezahlte Bestellungen noch offen sind. Diese Bestellungen werden nach dem Trennen nicht weiter bearbeitet. Schließen Sie zuerst die offenen Bestellungen oder bestätigen Sie, um trotzdem zu trennen.',
  },
  disconnect_open_orders_declined: { en_US: 'Please close any open orders and try again.', de_DE: 'Bitte schließen Sie alle offenen Bestellungen und versuchen Sie es erneut.' },
  disconnect_merchants: {
    en_US:
      'The app cannot be disconnected while merchants are connected through it. Those merchants may not receive payouts after disconnecting. Disconnect the merchants first, or confirm to disconnect anyway.',
    de_DE:
      'Die App kann nicht getrennt werden, solange Händler über sie verbunden sind. Diese Händler erhalten nach dem Trennen möglicherweise keine Auszahlungen mehr. Trennen Sie zuerst die Händler oder bestätigen Sie, um trotzdem zu trennen.',
  },
  disconnect_merchants_declined: { en_US: 'Please disconnect the merchants and try again.', de_DE: 'Bitte trennen Sie die Händler und versuchen Sie es erneut.' },
  confirm_label_ok: { en_US: 'Ignore & Disconnect', de_DE: 'Ignorieren & trennen' },
  confirm_label_cancel: { en_US: 'Cancel', de_DE: 'Abbrechen' },
} satisfies Record<string, Texts>;

export type MessageKey = keyof typeof MESSAGES;

export function isMessageKey(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(MESSAGES, key);
}

/** Resolves `Accept-Language` (sync-api.md 2.1): the first language range `de`, `de-DE` or `de_DE` selects de_DE; anything else en_US. */
export function resolveLocale(header: string | string[] | undefined): Locale {
  const raw = Array.isArray(header) ? header[0] : header;
  if (!raw) return 'en_US';
  const first = raw.split(',')[0]!.split(';')[0]!.trim().toLowerCase();
  return first === 'de' || first === 'de-de' || first === 'de_de' ? 'de_DE' : 'en_US';
}

/** The text of `key` in `locale` with `{name}` placeholders filled. */
export function t(locale: Locale, key: MessageKey, params: Record<string, string | number> = {}): string {
  const text = MESSAGES[key][locale] ?? MESSAGES[key].en_US;
  return text.replace(/\{([A-Za-z0-9_]+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m));
}

/**
 * A message a connector returned (a catalog key, or already a sentence): the catalog text when it is a key,
 * the sentence itself when it contains a space, else the generic `fallback`.
 */
export function connectorMessage(locale: Locale, keyOrText: string | undefined, fallback: MessageKey): string {
  if (keyOrText && isMessageKey(keyOrText)) return t(locale, keyOrText);
  if (keyOrText && /\s/.test(keyOrText.trim())) return keyOrText.trim();
  return t(locale, fallback);
}
