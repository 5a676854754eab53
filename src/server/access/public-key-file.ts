/**
 * --auth-public-key: one public key from a PEM file (`-----BEGIN PUBLIC KEY-----`, an RSA
 * `-----BEGIN RSA PUBLIC KEY-----`, or a `-----BEGIN CERTIFICATE-----` whose key is used), read
 * and checked once at start-up so a wrong file is reported as the option and the file to fix.
 * A private key is refused rather than reduced to its public half: it has no business on a server
 * that only checks signatures.
 */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../config.js';
import { importEntry, type ImportKey, type JsonWebKeyLike, type KeyEntry } from './key-set.js';
import { ASYMMETRIC_ALGORITHMS, keyTypeOf, type AsymmetricAlgorithm } from './token-algorithms.js';

/** OpenSSL's reason without its "error:0480006C:PEM routines::" prefix. */
function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/i, '');
}

/** @throws ConfigError naming authPublicKey, the file, and what is wrong with it. */
export async function loadPublicKeyFile(file: string, algorithms: readonly AsymmetricAlgorithm[], importKey: ImportKey): Promise<KeyEntry> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError('authPublicKey', `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? reason(error)}): check the path and permissions`);
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new ConfigError('authPublicKey', `${file} holds a private key; give Plaza only the public key (openssl pkey -in ${file} -pubout -out public.pem)`);
  }
  let key: KeyObject;
  try {
    key = pem.includes('-----BEGIN CERTIFICATE-----') ? new X509Certificate(pem).publicKey : createPublicKey(pem);
  } catch (error) {
    throw new ConfigError('authPublicKey', `${file} is not a PEM public key or certificate (${reason(error)}): it should start with -----BEGIN PUBLIC KEY-----`);
  }
  const jwk = key.export({ format: 'jwk' }) as JsonWebKeyLike;
  const entry = await importEntry(jwk, algorithms, importKey);
  if (typeof entry === 'string') {
    const fitting = ASYMMETRIC_ALGORITHMS.filter((alg) => {
      const { kty, crv } = keyTypeOf(alg);
      return jwk.kty === kty && (crv === undefined || jwk.crv === crv);
    });
    throw new ConfigError('authPublicKey', `the key in ${file} cannot check tokens: ${entry}${fitting.length ? `; allow one of ${fitting.join(', ')} in --auth-algorithms` : ''}`);
  }
  // A file's key has no kid: whatever kid a token names, this is the key (token-verifier.ts).
  return entry;
}
